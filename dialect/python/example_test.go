package python_test

import (
	"fmt"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/op"
)

// The bytes a python-socketio >= 5.15.1 server expects for
// socketio.emit('news', {'n': 1}, to='room1', namespace='/chat').
func ExampleNew() {
	d := python.New(python.Options{HostID: "0123456789abcdef0123456789abcdef"})
	msgs, err := d.Encode(&op.Emit{
		Target: op.Target{Namespace: "/chat", Rooms: []string{"room1"}},
		Event:  "news",
		Args:   []any{map[string]any{"n": int64(1)}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(msgs[0].Channel)
	fmt.Println(string(msgs[0].Data))
	// Output:
	// flask-socketio
	// {"method": "emit", "event": "news", "data": [{"n": 1}], "binary": false, "namespace": "/chat", "room": "room1", "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}
}

// Debian's Flask-SocketIO 5.3.2 speaks pickle; decoding refuses anything
// that is not plain data.
func ExampleNewPickle() {
	d := python.NewPickle(python.Options{})
	msgs, _ := d.Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "multi", Args: []any{"a", []byte{1, 2}}})
	back, _ := d.Decode(msgs[0])
	e := back.(*op.Emit)
	fmt.Printf("%s %q %v\n", e.Event, e.Args[0], e.Args[1])
	// Output: multi "a" [1 2]
}
