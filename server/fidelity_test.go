package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// has reports whether rs holds event.
func has(rs []servertest.Received, event string) bool {
	for _, r := range rs {
		if r.Event == event {
			return true
		}
	}
	return false
}

// TestBroadcastIncludesSender: Flask-SocketIO's emit(broadcast=True)
// reaches the sender unless include_self=False, emit(to=room) from a
// handler reaches the sender when it is in the room, and Node's
// socket.to(room) (s.To) does not.
func TestBroadcastIncludesSender(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	srv.On("/", "all", func(s *server.Socket) { s.Broadcast().Emit("all") })
	srv.On("/", "others", func(s *server.Socket) { s.Broadcast().IncludeSelf(false).Emit("others") })
	srv.On("/", "flask-room", func(s *server.Socket, room string) { s.Broadcast().To(room).Emit("flask-room") })
	srv.On("/", "node-room", func(s *server.Socket, room string) { s.To(room).Emit("node-room") })
	srv.On("/", "node-room-self", func(s *server.Socket, room string) { s.To(room).IncludeSelf(true).Emit("node-room-self") })
	srv.On("/", "marker", func(s *server.Socket) { s.Broadcast().Emit("marker") })
	a := client(t, srv, "/", servertest.Options{})
	b := client(t, srv, "/", servertest.Options{})
	for _, c := range []*servertest.Client{a, b} {
		if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range []string{"all", "others", "flask-room", "node-room", "node-room-self", "marker"} {
		args := []any{}
		if ev != "all" && ev != "others" && ev != "marker" {
			args = append(args, "r")
		}
		if _, err := a.EmitWithAck("/", 5*time.Second, ev, args...); err != nil { // one after the other
			t.Fatal(err)
		}
	}
	var rs [2][]servertest.Received
	for i, c := range []*servertest.Client{a, b} {
		r, err := c.WaitFor("/", "marker", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	want := map[string][2]bool{ // event: received by a (the sender), by b
		"all":            {true, true},
		"others":         {false, true},
		"flask-room":     {true, true},
		"node-room":      {false, true},
		"node-room-self": {true, true},
	}
	for ev, w := range want {
		if g := [2]bool{has(rs[0], ev), has(rs[1], ev)}; g != w {
			t.Errorf("%s: received by sender, other = %v, want %v", ev, g, w)
		}
	}
}

// TestErrorHandlerResultIsTheAck: as Flask-SocketIO's on_error, when a
// handler fails (error or panic) the error handler's return value is the
// acknowledgement; a plain OnError handler answers with no arguments.
func TestErrorHandlerResultIsTheAck(t *testing.T) {
	srv := newServer(t)
	srv.Of("/").OnErrorAck(func(s *server.Socket, event string, err error) any {
		if event == "two" {
			return server.Args{"failed", err.Error()}
		}
		return event + ": " + err.Error()
	})
	srv.On("/", "fail", func(s *server.Socket) (int, error) { return 0, errors.New("boom") })
	srv.On("/", "panic", func(s *server.Socket) int { panic("oops") })
	srv.On("/", "two", func(s *server.Socket) error { return errors.New("bad") })
	srv.Of("/plain").OnError(func(*server.Socket, string, error) {})
	srv.On("/plain", "fail", func(s *server.Socket) error { return errors.New("boom") })
	srv.OnErrorDefaultAck(func(s *server.Socket, event string, err error) any { return "default" })
	srv.On("/other", "fail", func(s *server.Socket) error { return errors.New("boom") })
	c := client(t, srv, "/", servertest.Options{})
	for _, ns := range []string{"/plain", "/other"} {
		if err := c.Connect(ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		ns, event string
		want      []any
	}{
		{"/", "fail", []any{"fail: boom"}},
		{"/", "panic", []any{"panic: panic: oops"}},
		{"/", "two", []any{"failed", "bad"}},
		{"/plain", "fail", []any{}},
		{"/other", "fail", []any{"default"}},
	}
	for _, cs := range cases {
		got, err := c.EmitWithAck(cs.ns, 5*time.Second, cs.event)
		if err != nil || !reflect.DeepEqual(got, cs.want) {
			t.Errorf("%s %s: ack %#v %v, want %#v", cs.ns, cs.event, got, err, cs.want)
		}
	}
}

// TestDisconnectHandlersSeeRooms: the disconnecting handler (Node) and
// then the disconnect handler run while the socket is still in its rooms
// (rooms() works in python-socketio's disconnect handler), for a
// namespace disconnect and for a closed connection; the rooms are left
// afterwards.
func TestDisconnectHandlersSeeRooms(t *testing.T) {
	srv := newServer(t)
	type call struct {
		handler, sid, reason string
		rooms                []string
	}
	calls := make(chan call, 8)
	record := func(handler string) func(*server.Socket, string) {
		return func(s *server.Socket, reason string) {
			r := s.Rooms()
			sort.Strings(r)
			calls <- call{handler, s.ID(), reason, r}
		}
	}
	root := srv.Of("/")
	root.OnDisconnecting(record("disconnecting"))
	root.OnDisconnect(record("disconnect"))
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	for _, tc := range []struct {
		reason string
		end    func(*servertest.Client)
	}{
		{"client namespace disconnect", func(c *servertest.Client) { c.Disconnect("/") }},
		{"transport close", func(c *servertest.Client) { c.Close() }},
	} {
		c := client(t, srv, "/", servertest.Options{})
		sid := c.SID("/")
		if _, err := c.EmitWithAck("/", 5*time.Second, "join", "zroom"); err != nil {
			t.Fatal(err)
		}
		tc.end(c)
		want := []string{sid, "zroom"}
		sort.Strings(want)
		for _, h := range []string{"disconnecting", "disconnect"} {
			select {
			case g := <-calls:
				if g.handler != h || g.sid != sid || g.reason != tc.reason || !reflect.DeepEqual(g.rooms, want) {
					t.Errorf("%s: got %+v, want handler %s with reason %q and rooms %v", tc.reason, g, h, tc.reason, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: no %s call", tc.reason, h)
			}
		}
		for i := 0; root.Socket(sid) != nil; i++ { // removed after the handlers returned
			if i == 500 {
				t.Fatalf("%s: socket still in its namespace", tc.reason)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rooms, err := root.AllRooms(context.Background()); err != nil || len(rooms) != 0 {
			t.Errorf("%s: rooms left behind: %v %v", tc.reason, rooms, err)
		}
	}
}

// TestAsyncHandlers: by default (Flask-SocketIO's async_handlers=True) a
// slow handler does not delay the next event's handler: "fast" is
// answered while "slow" still waits for it.
func TestAsyncHandlers(t *testing.T) {
	srv := newServer(t)
	fastDone := make(chan struct{})
	slowDone := make(chan bool, 1)
	srv.On("/", "slow", func(s *server.Socket) {
		select {
		case <-fastDone:
			slowDone <- true
		case <-time.After(10 * time.Second): // the handlers ran one after the other
			slowDone <- false
		}
	})
	srv.On("/", "fast", func(s *server.Socket) string { close(fastDone); return "fast" })
	c := client(t, srv, "/", servertest.Options{})
	c.Emit("/", "slow")
	if r, err := c.EmitWithAck("/", 15*time.Second, "fast"); err != nil || r[0] != "fast" {
		t.Fatalf("fast: %v %v", r, err)
	}
	if !<-slowDone {
		t.Fatal(`"fast" ran only after "slow" returned`)
	}
}

// TestSyncHandlers: with WithAsyncHandlers(false) a socket's handlers run
// one after the other, in arrival order: "fast" waits for "slow".
func TestSyncHandlers(t *testing.T) {
	srv := newServer(t, server.WithAsyncHandlers(false))
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	srv.On("/", "slow", func(s *server.Socket) {
		note("slow start")
		<-release
		note("slow end")
	})
	srv.On("/", "fast", func(s *server.Socket) { note("fast"); s.Emit("fast-done") })
	// a connection's packets are read in order: once the CONNECT to
	// /probe is handled, "fast" has arrived (and would have started with
	// async handlers)
	srv.OnConnect("/probe", func(*server.Socket, json.RawMessage) error { close(release); return nil })
	c := client(t, srv, "/", servertest.Options{})
	c.Emit("/", "slow")
	c.Emit("/", "fast")
	if err := c.Connect("/probe", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor("/", "fast-done", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"slow start", "slow end", "fast"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("handlers ran as %v, want %v", order, want)
	}
}

// TestPythonDisconnectReasons: with WithPythonDisconnectReasons the
// disconnect handler gets python-socketio's reasons.
func TestPythonDisconnectReasons(t *testing.T) {
	srv := newServer(t, server.WithPythonDisconnectReasons())
	reasons := make(chan string, 4)
	srv.OnDisconnect("/", func(s *server.Socket, reason string) { reasons <- reason })
	srv.On("/", "kick", func(s *server.Socket) { s.Disconnect() })
	for _, tc := range []struct {
		want string
		end  func(*servertest.Client)
	}{
		{"client disconnect", func(c *servertest.Client) { c.Disconnect("/") }},
		{"server disconnect", func(c *servertest.Client) { c.Emit("/", "kick") }},
		{"transport close", func(c *servertest.Client) { c.Close() }},
	} {
		c := client(t, srv, "/", servertest.Options{})
		tc.end(c)
		select {
		case r := <-reasons:
			if r != tc.want {
				t.Errorf("reason %q, want %q", r, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no disconnect for %q", tc.want)
		}
	}
}
