package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// sessionHandlers registers, in each namespace, "set" (key, value) and
// "get" (key) -> value on the socket's session.
func sessionHandlers(srv *server.Server, namespaces ...string) {
	for _, ns := range namespaces {
		srv.On(ns, "set", func(s *server.Socket, k, v string) bool { s.Set(k, v); return true })
		srv.On(ns, "get", func(s *server.Socket, k string) any { v, _ := s.Get(k); return v })
	}
}

func ack(t *testing.T, c *servertest.Client, ns, event string, args ...any) any {
	t.Helper()
	r, err := c.EmitWithAck(ns, 5*time.Second, event, args...)
	if err != nil || len(r) != 1 {
		t.Fatalf("%s %s: %v %v", ns, event, r, err)
	}
	return r[0]
}

// TestSessionSharedAcrossNamespaces: one session per connection, as
// Flask-SocketIO's manage_session (it lives in the Engine.IO client's
// environ): a value set in "/" is read in "/chat" on the same connection,
// is still there after "/chat" reconnects, and another connection does not
// see it.
func TestSessionSharedAcrossNamespaces(t *testing.T) {
	srv := newServer(t)
	srv.Of("/chat")
	sessionHandlers(srv, "/", "/chat")
	c := client(t, srv, "/", servertest.Options{})
	if err := c.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	ack(t, c, "/", "set", "user", "ann")
	if v := ack(t, c, "/chat", "get", "user"); v != "ann" {
		t.Fatalf(`"/chat" reads %v, want the value set in "/"`, v)
	}
	ack(t, c, "/chat", "set", "room", "lobby")
	if v := ack(t, c, "/", "get", "room"); v != "lobby" {
		t.Fatalf(`"/" reads %v, want the value set in "/chat"`, v)
	}
	c.Disconnect("/chat")
	if err := c.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	if v := ack(t, c, "/chat", "get", "user"); v != "ann" {
		t.Fatalf(`"/chat" connected again reads %v, want the connection's value`, v)
	}
	other := client(t, srv, "/chat", servertest.Options{})
	if v := ack(t, other, "/chat", "get", "user"); v != nil {
		t.Fatalf("another connection reads %v, want nil", v)
	}
}

// TestSessionVisibleInConnectAndDisconnectHandlers: the connect handler
// of a second namespace reads what the first one's set, and the disconnect
// handler still reads the session.
func TestSessionVisibleInConnectAndDisconnectHandlers(t *testing.T) {
	srv := newServer(t)
	srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error { s.Set("who", "ann"); return nil })
	seen := make(chan any, 2)
	srv.OnConnect("/chat", func(s *server.Socket, _ json.RawMessage) error {
		v, _ := s.Get("who")
		seen <- v
		return nil
	})
	srv.OnDisconnect("/chat", func(s *server.Socket, _ string) { v, _ := s.Get("who"); seen <- v })
	c := client(t, srv, "/", servertest.Options{})
	if err := c.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	c.Disconnect("/chat")
	for _, when := range []string{"connect", "disconnect"} {
		select {
		case v := <-seen:
			if v != "ann" {
				t.Fatalf(`the %s handler of "/chat" reads %v, want "ann"`, when, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s handler ran", when)
		}
	}
}

// sessCookie is the session id of an HTTP app: its "sess" cookie.
func sessCookie(r *http.Request) string {
	if c, err := r.Cookie("sess"); err == nil {
		return c.Value
	}
	return ""
}

// TestSessionCopiedFromStoreAtConnect: with a SessionStore and the default
// WithManageSession(true), the connection's session starts as a copy of
// the HTTP session (what a login route stored), in every namespace; what
// Socket.IO handlers set stays in the connection (Flask-SocketIO does not
// write it back to the HTTP session), and what the HTTP side changes later
// is not seen.
func TestSessionCopiedFromStoreAtConnect(t *testing.T) {
	store := server.NewMemorySessionStore()
	ctx := context.Background()
	store.Set(ctx, "abc", "user", "ann") // what an HTTP login route would do
	srv := newServer(t, server.WithSessionStore(store, sessCookie))
	srv.Of("/chat")
	sessionHandlers(srv, "/", "/chat")
	c := client(t, srv, "/", servertest.Options{Header: http.Header{"Cookie": {"sess=abc"}}})
	if err := c.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"/", "/chat"} {
		if v := ack(t, c, ns, "get", "user"); v != "ann" {
			t.Fatalf("%s reads %v, want the HTTP session's value", ns, v)
		}
	}
	ack(t, c, "/", "set", "user", "bob")
	if v := ack(t, c, "/chat", "get", "user"); v != "bob" {
		t.Fatalf(`"/chat" reads %v after "/" set it`, v)
	}
	if v, _ := store.Get(ctx, "abc", "user"); v != "ann" {
		t.Fatalf("the HTTP session was written: %v", v)
	}
	store.Set(ctx, "abc", "theme", "dark")
	if v := ack(t, c, "/", "get", "theme"); v != nil {
		t.Fatalf("a change of the HTTP session after connect is seen: %v", v)
	}
	// a connection made now copies the session as it is now
	d := client(t, srv, "/", servertest.Options{Header: http.Header{"Cookie": {"sess=abc"}}})
	if v := ack(t, d, "/", "get", "theme"); v != "dark" {
		t.Fatalf("a new connection reads %v", v)
	}
	// without the cookie: an empty session of its own
	other := client(t, srv, "/", servertest.Options{})
	if v := ack(t, other, "/", "get", "user"); v != nil {
		t.Fatalf("no cookie: %v", v)
	}
}

// TestSessionSharedWithStore: WithManageSession(false) reads and writes
// through the SessionStore (Flask-SocketIO's manage_session=False with a
// server-side session): both sides see each other's changes, in every
// namespace.
func TestSessionSharedWithStore(t *testing.T) {
	store := server.NewMemorySessionStore()
	ctx := context.Background()
	store.Set(ctx, "abc", "user", "ann")
	srv := newServer(t, server.WithSessionStore(store, sessCookie), server.WithManageSession(false))
	srv.Of("/chat")
	sessionHandlers(srv, "/", "/chat")
	c := client(t, srv, "/", servertest.Options{Header: http.Header{"Cookie": {"sess=abc"}}})
	if err := c.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	if v := ack(t, c, "/chat", "get", "user"); v != "ann" {
		t.Fatalf("reads %v", v)
	}
	ack(t, c, "/", "set", "theme", "dark")
	if v, ok := store.Get(ctx, "abc", "theme"); !ok || v != "dark" {
		t.Fatalf("the HTTP side sees %v %v", v, ok)
	}
	store.Set(ctx, "abc", "user", "bob")
	if v := ack(t, c, "/chat", "get", "user"); v != "bob" {
		t.Fatalf("a change of the HTTP session after connect: %v", v)
	}
	// without the cookie the connection keeps its own values, shared by its namespaces
	other := client(t, srv, "/", servertest.Options{})
	if err := other.Connect("/chat", nil); err != nil {
		t.Fatal(err)
	}
	ack(t, other, "/", "set", "user", "eve")
	if v := ack(t, other, "/chat", "get", "user"); v != "eve" {
		t.Fatalf("no cookie: %v", v)
	}
	if v, _ := store.Get(ctx, "abc", "user"); v != "bob" {
		t.Fatalf("a connection without the cookie wrote the store: %v", v)
	}
}

// TestMemorySessionStore: Values returns a copy, which the caller may
// change without changing the store; Delete removes a session.
func TestMemorySessionStore(t *testing.T) {
	store := server.NewMemorySessionStore()
	ctx := context.Background()
	store.Set(ctx, "abc", "user", "ann")
	m := store.Values(ctx, "abc")
	m["user"] = "bob"
	if v, _ := store.Get(ctx, "abc", "user"); v != "ann" {
		t.Fatalf("store changed through Values: %v", v)
	}
	if m := store.Values(ctx, "none"); len(m) != 0 {
		t.Fatalf("unknown id: %v", m)
	}
	store.Delete(ctx, "abc")
	if v, ok := store.Get(ctx, "abc", "user"); ok {
		t.Fatalf("deleted session still holds %v", v)
	}
}
