package server_test

// Tests of single rows of docs/api-parity.md that no broader test
// exercises on its own.

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// TestMessageAndJSONEvents: the unnamed events of Flask-SocketIO
// (@socketio.on('message') for a client's send(), 'json' for send(json))
// are handlers of the events "message" and "json"; their results ack.
func TestMessageAndJSONEvents(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "message", func(s *server.Socket, m string) string { return "got " + m })
	srv.On("/", "json", func(s *server.Socket, v map[string]any) any { return v["k"] })
	c := client(t, srv, "/", servertest.Options{})
	if r, err := c.EmitWithAck("/", 5*time.Second, "message", "hi"); err != nil || len(r) != 1 || r[0] != "got hi" {
		t.Fatalf("message: %v %v", r, err)
	}
	if r, err := c.EmitWithAck("/", 5*time.Second, "json", map[string]any{"k": 1.5}); err != nil || len(r) != 1 || r[0] != 1.5 {
		t.Fatalf("json: %v %v", r, err)
	}
}

// TestLeaveRoom: leave_room from a handler (s.Leave) and for another
// socket (SocketsLeave): a later emit to the room misses the socket.
func TestLeaveRoom(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "join", func(s *server.Socket, room string) bool { s.Join(room); return true })
	srv.On("/", "leave", func(s *server.Socket, room string) bool { s.Leave(room); return true })
	a := client(t, srv, "/", servertest.Options{})
	b := client(t, srv, "/", servertest.Options{})
	for _, c := range []*servertest.Client{a, b} {
		if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.EmitWithAck("/", 5*time.Second, "leave", "r"); err != nil {
		t.Fatal(err)
	}
	srv.Of("/").In(b.SID("/")).SocketsLeave("r")
	srv.Of("/").To("r").Emit("to-r")
	srv.Emit("end")
	for _, c := range []*servertest.Client{a, b} {
		got, err := c.WaitFor("/", "end", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if e.Event == "to-r" {
				t.Fatal("a socket that left r got its emit")
			}
		}
	}
}

// TestSocketIdentityAndSidRoom: request.sid and request.namespace
// (s.ID, s.Namespace); the socket is in the room named by its id, and a
// disconnected socket leaves every room.
func TestSocketIdentityAndSidRoom(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var id, ns string
	var rooms []string
	srv.On("/chat", "who", func(s *server.Socket) bool {
		mu.Lock()
		id, ns, rooms = s.ID(), s.Namespace(), s.Rooms()
		mu.Unlock()
		s.Join("room")
		return true
	})
	c := client(t, srv, "/chat", servertest.Options{})
	if _, err := c.EmitWithAck("/chat", 5*time.Second, "who"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if id != c.SID("/chat") || ns != "/chat" || !slices.Equal(rooms, []string{id}) {
		t.Fatalf("ID %q (client %q), Namespace %q, Rooms %v", id, c.SID("/chat"), ns, rooms)
	}
	mu.Unlock()
	srv.Of("/chat").To(id).Emit("private")
	if _, err := c.WaitFor("/chat", "private", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	all, _ := srv.Of("/chat").AllRooms(context.Background())
	if !slices.Contains(all, "room") {
		t.Fatalf("rooms %v, want room", all)
	}
	if err := c.Disconnect("/chat"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		all, _ := srv.Of("/chat").AllRooms(context.Background())
		if len(all) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rooms after the disconnect: %v", all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEmitOutsideHandlers: socketio.emit outside a request context, from
// any goroutine, and its namespace= argument (srv.Emit is "/",
// srv.Of(ns).Emit another namespace only).
func TestEmitOutsideHandlers(t *testing.T) {
	srv := newServer(t)
	srv.Of("/chat")
	root := client(t, srv, "/", servertest.Options{})
	chat := client(t, srv, "/chat", servertest.Options{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.Emit("to-root", 1) }()
	go func() { defer wg.Done(); srv.Of("/chat").Emit("to-chat", 2) }()
	wg.Wait()
	if got, err := root.WaitFor("/", "to-root", 5*time.Second); err != nil || got[len(got)-1].Args[0] != 1.0 {
		t.Fatalf("root: %v %v", got, err)
	}
	if got, err := chat.WaitFor("/chat", "to-chat", 5*time.Second); err != nil || got[len(got)-1].Args[0] != 2.0 {
		t.Fatalf("chat: %v %v", got, err)
	}
	srv.Emit("end")
	srv.Of("/chat").Emit("end")
	got, _ := root.WaitFor("/", "end", 5*time.Second)
	for _, e := range got {
		if e.Event == "to-chat" {
			t.Fatal("a / client got the /chat emit")
		}
	}
	got, _ = chat.WaitFor("/chat", "end", 5*time.Second)
	for _, e := range got {
		if e.Event == "to-root" {
			t.Fatal("a /chat client got the / emit")
		}
	}
}

// TestTestClientDisconnect: the test client's disconnect(namespace)
// leaves that namespace only; the server's handler sees the client's
// reason and is_connected turns false.
func TestTestClientDisconnect(t *testing.T) {
	srv := newServer(t)
	reasons := make(chan string, 1)
	srv.OnDisconnect("/chat", func(s *server.Socket, reason string) { reasons <- reason })
	c := client(t, srv, "/", servertest.Options{})
	if err := c.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect("/chat"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-reasons:
		if r != "client namespace disconnect" {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no disconnect handler call")
	}
	if c.IsConnected("/chat") || !c.IsConnected("/") {
		t.Fatalf("connected: /chat %v, / %v", c.IsConnected("/chat"), c.IsConnected("/"))
	}
}
