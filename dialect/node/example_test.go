package node_test

import (
	"fmt"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
)

// What @socket.io/redis-emitter publishes for
// emitter.to("room1").emit("hello", {a: 1}).
func ExampleNew() {
	d := node.New(node.Options{})
	msgs, err := d.Encode(&op.Emit{
		Target: op.Target{Namespace: "/", Rooms: []string{"room1"}},
		Event:  "hello",
		Args:   []any{map[string]any{"a": 1}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(msgs[0].Channel)
	fmt.Printf("%x\n", msgs[0].Data)
	// Output:
	// socket.io#/#room1#
	// 93a7656d697474657283a47479706502a46461746192a568656c6c6f81a16101a36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490
}
