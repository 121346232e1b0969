package nodestreams_test

import (
	"fmt"

	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// What an emitter appends to the stream (XADD socket.io MAXLEN ~ 10000 *
// uid emitter nsp / type 3 data ...) so that the servers of a
// @socket.io/redis-streams-adapter cluster run
// io.to("room1").emit("hello", {a: 1}).
func ExampleNew() {
	d, err := nodestreams.New(nodestreams.Options{})
	if err != nil {
		panic(err)
	}
	msgs, err := d.Encode(&op.Emit{
		Target: op.Target{Namespace: "/", Rooms: []string{"room1"}},
		Event:  "hello",
		Args:   []any{map[string]any{"a": 1}},
	})
	if err != nil {
		panic(err)
	}
	m := msgs[0]
	fmt.Println(m.Channel, m.Stream, m.MaxLen)
	queue.StreamFields(m.Data, func(field, value []byte) bool {
		fmt.Printf("%s %s\n", field, value)
		return true
	})
	// Output:
	// socket.io true 10000
	// uid emitter
	// nsp /
	// type 3
	// data {"packet":{"type":2,"data":["hello",{"a":1}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}
}
