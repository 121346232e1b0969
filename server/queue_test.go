package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// A server consuming a real Redis receives what the Go emitter publishes,
// in both dialects, and survives malformed messages.
func TestConsumeQueueFromTheEmitter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus := redisBus(ctx, t)
	for _, pair := range workerDialects("consume") {
		d := pair[0]
		t.Run(d.Name(), func(t *testing.T) {
			srv := newServer(t)
			srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
			srv.Of("/chat")
			sub, err := srv.ConsumeQueue(ctx, bus, d, server.QueueSubscription(d, "/", "/chat"))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			a, b := client(t, srv, "/", servertest.Options{}), client(t, srv, "/", servertest.Options{})
			a.EmitWithAck("/", 5*time.Second, "join", "room1")
			em := emitter.New(bus, pair[1])
			defer em.Close()

			expect := func(c *servertest.Client, ns, event string, want string) {
				t.Helper()
				got, err := c.WaitFor(ns, event, 5*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", event, err)
				}
				if s := fmt.Sprint(got[len(got)-1].Args); s != want {
					t.Fatalf("%s: args %s, want %s", event, s, want)
				}
			}
			if err := em.To("room1").Emit(ctx, "to-room", "hi", 1, []byte{1, 2}); err != nil {
				t.Fatal(err)
			}
			expect(a, "/", "to-room", "[hi 1 [1 2]]")
			if err := em.To(b.SID("/")).Emit(ctx, "to-sid", "only b"); err != nil {
				t.Fatal(err)
			}
			expect(b, "/", "to-sid", "[only b]")
			if err := em.Except("room1").Emit(ctx, "except", "not a"); err != nil {
				t.Fatal(err)
			}
			expect(b, "/", "except", "[not a]")
			c := client(t, srv, "/chat", servertest.Options{})
			if err := em.Of("/chat").Emit(ctx, "ns", "chat"); err != nil {
				t.Fatal(err)
			}
			expect(c, "/chat", "ns", "[chat]")
			if d.Name() == "node" { // python-socketio 5.7's managers have no join/leave
				if err := em.In(b.SID("/")).SocketsJoin(ctx, "room2"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
				em.To("room2").Emit(ctx, "joined", "b")
				expect(b, "/", "joined", "[b]")
			}
			// a malformed message is counted and dropped; the next one works
			msgs, _ := d.Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "x"})
			bus.Publish(ctx, queue.Message{Channel: msgs[0].Channel, Data: []byte("\x00not a message")})
			em.To("room1").Emit(ctx, "after", "garbage")
			expect(a, "/", "after", "[garbage]")
			// a message is counted once performed: the client can see
			// its event just before
			for deadline := time.Now().Add(5 * time.Second); srv.QueueStats().Applied < 4 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			}
			if st := srv.QueueStats(); st.Malformed != 1 || st.Applied < 4 {
				t.Fatalf("stats %+v", st)
			}
			// close-room and disconnect
			em.Of("/").CloseRoom(ctx, "room1")
			time.Sleep(200 * time.Millisecond)
			em.To("room1").Emit(ctx, "gone", "x")
			em.To(a.SID("/")).Emit(ctx, "still", "a")
			expect(a, "/", "still", "[a]")
			for _, r := range a.Received("/") {
				if r.Event == "gone" {
					t.Fatal("a got an emit to a closed room")
				}
			}
			em.In(a.SID("/")).DisconnectSockets(ctx, false)
			if !a.WaitDisconnected("/", 5*time.Second) {
				t.Fatal("a was not disconnected")
			}
		})
	}
}

// redisBus opens the local Redis as a bus (needed: see testenv.Need),
// closed when the test ends.
func redisBus(ctx context.Context, t *testing.T) queue.Bus {
	t.Helper()
	testenv.Need(t, "redis", "127.0.0.1:6379")
	bus, err := queue.Open(ctx, "redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	return bus
}

// workerDialects returns pairs of dialects on a fresh channel named after
// prefix: the server's and the worker's (each process has its own origin;
// node's both with the emitter's default uid).
func workerDialects(prefix string) [][2]dialect.Dialect {
	tenant := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	return [][2]dialect.Dialect{
		{python.New(python.Options{Channel: tenant}), python.New(python.Options{Channel: tenant})},
		{node.New(node.Options{Key: tenant}), node.New(node.Options{Key: tenant})},
	}
}
