package emitter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
)

// watch prints what reaches the queue (a stand-in for the servers).
func watch(bus queue.Bus, d interface {
	Decode(queue.Message) (op.Op, error)
}, channels ...string) (queue.Subscriber, chan string) {
	out := make(chan string, 16)
	s, _ := bus.Subscribe(context.Background(), queue.Subscription{Channels: channels}, func(m queue.Message) {
		o, err := d.Decode(m)
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		switch x := o.(type) {
		case *op.Emit:
			out <- fmt.Sprintf("%s emit %q %v to %v except %v", m.Channel, x.Event, x.Args, x.Rooms, x.Except)
		default:
			out <- fmt.Sprintf("%s %s", m.Channel, o.Kind())
		}
	})
	return s, out
}

// A worker emits to the clients of a Flask-SocketIO cluster. In production
// the bus comes from queue.Open(ctx, "redis://...") with adapter/redis
// imported; the in-memory bus keeps this example self-contained.
func Example() {
	bus := memory.New() // or: queue.Open(ctx, "redis://127.0.0.1:6379/0")
	defer bus.Close()
	d := python.NewPickle(python.Options{}) // Flask-SocketIO 5.3 / python-socketio < 5.14
	sub, seen := watch(bus, d, python.DefaultChannel)
	defer sub.Close()

	em := emitter.New(bus, d)
	defer em.Close()
	ctx := context.Background()
	if err := em.Of("/chat").To("room1").Except("sid9").Emit(ctx, "news", map[string]any{"n": 1}, []byte{1, 2}); err != nil {
		fmt.Println(err)
	}
	em.Of("/chat").CloseRoom(ctx, "room1")
	fmt.Println(<-seen)
	fmt.Println(<-seen)
	// Output:
	// flask-socketio emit "news" [map[n:1] [1 2]] to [room1] except [sid9]
	// flask-socketio close-room
}

// Node clusters: the same calls speak @socket.io/redis-emitter's protocol.
func ExampleEmitter_Of() {
	bus := memory.New()
	defer bus.Close()
	d := node.New(node.Options{})
	sub, seen := watch(bus, d, "socket.io#/admin#room1#", "socket.io-request#/admin#")
	defer sub.Close()

	em := emitter.New(bus, d)
	defer em.Close()
	admin := em.Of("/admin")
	admin.To("room1").Volatile().Emit(context.Background(), "hello", "world")
	admin.In("room1").SocketsJoin(context.Background(), "room2")
	fmt.Println(<-seen)
	fmt.Println(<-seen)
	// Output:
	// socket.io#/admin#room1# emit "hello" [world] to [room1] except []
	// socket.io-request#/admin# join
}

// Acknowledgements come back through the queue. Here a goroutine plays the
// python server that owns the client.
func ExampleOperator_EmitWithAck() {
	bus := memory.New()
	defer bus.Close()
	d := python.New(python.Options{})
	server := python.New(python.Options{})
	s, _ := bus.Subscribe(context.Background(), queue.Subscription{Channels: []string{python.DefaultChannel}}, func(m queue.Message) {
		o, err := server.Decode(m)
		if e, ok := o.(*op.Emit); err == nil && ok && e.Ack != nil {
			msgs, _ := server.Encode(&op.AckReply{Namespace: e.Namespace, Host: e.Origin, Sid: e.Rooms[0], ID: e.Ack.ID, Args: []any{"pong"}})
			bus.Publish(context.Background(), msgs...)
		}
	})
	defer s.Close()

	em := emitter.New(bus, d)
	defer em.Close()
	replies, err := em.To("SID1").Timeout(time.Second).EmitWithAck(context.Background(), "ping")
	fmt.Println(replies, err)
	// Output: [{SID1 [pong]}] <nil>
}

// A bulk job emits through a Batch, publishing it every few hundred emits
// or kilobytes so that it holds a bounded amount, and reusing it. A struct
// argument is sent as encoding/json writes it; the node dialect writes it
// straight from its fields, the cheapest kind of argument.
func ExampleBatch() {
	type tick struct {
		N int `json:"n"`
	}
	bus := memory.New()
	defer bus.Close()
	d := node.New(node.Options{})
	sub, seen := watch(bus, d, "socket.io#/#news#")
	defer sub.Close()

	em := emitter.New(bus, d)
	defer em.Close()
	ctx := context.Background()
	news := em.To("news")
	b := em.NewBatch()
	for i := 0; i < 5; i++ {
		if err := b.Emit(news, "tick", tick{N: i}); err != nil {
			fmt.Println(err) // this emit only: the batch goes on
			continue
		}
		if b.Len() >= 2 || b.Bytes() >= 256<<10 {
			if err := b.Publish(ctx); err != nil {
				fmt.Println(err)
			}
		}
	}
	if err := b.Publish(ctx); err != nil { // the rest
		fmt.Println(err)
	}
	for i := 0; i < 5; i++ {
		fmt.Println(<-seen)
	}
	// Output:
	// socket.io#/#news# emit "tick" [map[n:0]] to [news] except []
	// socket.io#/#news# emit "tick" [map[n:1]] to [news] except []
	// socket.io#/#news# emit "tick" [map[n:2]] to [news] except []
	// socket.io#/#news# emit "tick" [map[n:3]] to [news] except []
	// socket.io#/#news# emit "tick" [map[n:4]] to [news] except []
}

// Arguments that arrive as JSON text (a file or a queue of JSON lines) go
// to the dialect as they are: the node dialect writes them straight into
// its msgpack encoding. PublishAsync queues a batch and returns at once on
// buses that keep the order of what they queue (adapter/redis); waiting
// for the oldest batch before queueing a third keeps two in flight.
func ExampleBatch_EmitJSON() {
	bus := memory.New()
	defer bus.Close()
	d := node.New(node.Options{})
	sub, seen := watch(bus, d, "socket.io#/#news#")
	defer sub.Close()

	em := emitter.New(bus, d)
	defer em.Close()
	ctx := context.Background()
	news := em.To("news")
	b := em.NewBatch()
	var inFlight []func(context.Context) error
	for _, line := range []string{`[{"n":1}]`, `["two",2.5]`, `[{"n":3}`, `null`} {
		if err := b.EmitJSON(news, "tick", []byte(line)); err != nil {
			fmt.Println("refused:", line) // this emit only
			continue
		}
		if len(inFlight) == 2 {
			if err := inFlight[0](ctx); err != nil {
				fmt.Println(err)
			}
			inFlight = inFlight[1:]
		}
		inFlight = append(inFlight, b.PublishAsync(ctx))
	}
	for _, wait := range inFlight {
		if err := wait(ctx); err != nil {
			fmt.Println(err)
		}
	}
	for i := 0; i < 3; i++ {
		fmt.Println(<-seen)
	}
	// Output:
	// refused: [{"n":3}
	// socket.io#/#news# emit "tick" [map[n:1]] to [news] except []
	// socket.io#/#news# emit "tick" [two 2.5] to [news] except []
	// socket.io#/#news# emit "tick" [] to [news] except []
}
