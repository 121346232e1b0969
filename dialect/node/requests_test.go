package node

import (
	"reflect"
	"testing"

	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// The requests a Node server sends to count and query its peers, and the
// answers it expects, in the byte forms @socket.io/redis-adapter 8 uses.
func TestExchangeBytes(t *testing.T) {
	d := New(Options{UID: "BLEWZ2"})
	cases := []struct {
		o       op.Op
		channel string
		bytes   string
	}{
		{&op.AllRooms{Namespace: "/", RequestID: "Uamw3m"}, "socket.io-request#/#",
			`{"uid":"BLEWZ2","requestId":"Uamw3m","type":1}`},
		{&op.FetchSockets{Target: op.Target{Namespace: "/"}, RequestID: "q1"}, "socket.io-request#/#",
			`{"uid":"BLEWZ2","requestId":"q1","type":5,"opts":{"rooms":[],"except":[]}}`},
		{&op.FetchSockets{Target: op.Target{Namespace: "/", Rooms: []string{"r"}}, RequestID: "q0", IDsOnly: true}, "socket.io-request#/#",
			`{"uid":"BLEWZ2","requestId":"q0","type":0,"rooms":["r"]}`},
		{&op.RoomsReply{Namespace: "/", RequestID: "Uamw3m", Rooms: []string{"sid1", "room1"}}, "socket.io-response#/#",
			`{"requestId":"Uamw3m","rooms":["sid1","room1"]}`},
		{&op.SocketsReply{Namespace: "/", RequestID: "q0", IDsOnly: true, Sockets: []op.SocketInfo{{ID: "sid1"}}}, "socket.io-response#/#",
			`{"requestId":"q0","sockets":["sid1"]}`},
		{&op.SocketsReply{Namespace: "/", RequestID: "q1", Sockets: []op.SocketInfo{{ID: "sid1", Rooms: []string{"sid1", "r"},
			Handshake: map[string]any{"url": "/socket.io/", "auth": map[string]any{}}}}}, "socket.io-response#/#",
			`{"requestId":"q1","sockets":[{"id":"sid1","handshake":{"auth":{},"url":"/socket.io/"},"rooms":["sid1","r"],"data":{}}]}`},
		{&op.ServerSideEmitReply{Namespace: "/", RequestID: "s1", Args: []any{"pong"}}, "socket.io-response#/#",
			`{"type":6,"requestId":"s1","data":"pong"}`},
	}
	for _, c := range cases {
		msgs, err := d.Encode(c.o)
		if err != nil || len(msgs) != 1 || msgs[0].Channel != c.channel || string(msgs[0].Data) != c.bytes {
			t.Errorf("%s: %v %v, want %s %s", c.o.Kind(), msgs, err, c.channel, c.bytes)
			continue
		}
		back, err := d.Decode(queue.Message{Channel: c.channel, Data: []byte(c.bytes)})
		if err != nil {
			t.Errorf("%s: decode: %v", c.o.Kind(), err)
			continue
		}
		if x, ok := back.(interface{ Kind() string }); !ok || x.Kind() != c.o.Kind() {
			t.Errorf("%s: decoded as %T", c.o.Kind(), back)
		}
	}
	back, _ := d.Decode(queue.Message{Channel: "socket.io-request#/#", Data: []byte(`{"uid":"BLEWZ2","requestId":"Uamw3m","type":1}`)})
	if want := (&op.AllRooms{Namespace: "/", RequestID: "Uamw3m", Origin: "BLEWZ2"}); !reflect.DeepEqual(back, want) {
		t.Errorf("ALL_ROOMS decoded as %#v", back)
	}
}
