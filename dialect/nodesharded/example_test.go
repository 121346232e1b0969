package nodesharded_test

import (
	"fmt"

	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/op"
)

// What an emitter publishes (SPUBLISH) so that the servers of a
// createShardedAdapter cluster run io.to("room1").emit("hello", {a: 1}).
func ExampleNew() {
	d, err := nodesharded.New(nodesharded.Options{})
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
	fmt.Println(msgs[0].Channel, msgs[0].Sharded)
	fmt.Println(string(msgs[0].Data))
	// Output:
	// socket.io#/#room1# true
	// {"type":3,"data":{"packet":{"type":2,"data":["hello",{"a":1}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}
}
