package servertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transports runs f once per transport: every test of the client holds on
// both.
func transports(t *testing.T, f func(t *testing.T, tr servertest.Transport)) {
	for _, tr := range []servertest.Transport{servertest.WebSocket, servertest.Polling} {
		t.Run(tr.String(), func(t *testing.T) { f(t, tr) })
	}
}

func newServer(t *testing.T, opts ...server.Option) *server.Server {
	t.Helper()
	srv := server.New(opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func newClient(t *testing.T, srv *server.Server, o servertest.Options, namespaces ...string) *servertest.Client {
	t.Helper()
	c, err := servertest.New(srv, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, ns := range namespaces {
		if err := c.Connect(ns, nil); err != nil {
			t.Fatalf("connect %s: %v", ns, err)
		}
	}
	return c
}

// The client uses the transport it is given: the server sees it.
func TestTransportUsed(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		got := make(chan string, 1)
		srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error { got <- s.Transport(); return nil })
		newClient(t, srv, servertest.Options{Transport: tr}, "/")
		if g := <-got; g != tr.String() {
			t.Fatalf("the server sees transport %q, want %q", g, tr)
		}
	})
}

// The handshake carries the options' query and headers.
func TestQueryAndHeader(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		srv.OnConnect("/", func(s *server.Socket, auth json.RawMessage) error {
			r := s.Request()
			if r.URL.Query().Get("room") != "7" || r.Header.Get("X-User") != "ann" || string(auth) != `{"token":"t"}` {
				return errors.New("got " + r.URL.RawQuery + " " + r.Header.Get("X-User") + " " + string(auth))
			}
			return nil
		})
		c := newClient(t, srv, servertest.Options{Transport: tr, Query: url.Values{"room": {"7"}}, Header: http.Header{"X-User": {"ann"}}})
		if err := c.Connect("/", map[string]string{"token": "t"}); err != nil {
			t.Fatal(err)
		}
	})
}

// Events both ways, text and binary, in two namespaces.
func TestEvents(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		for _, ns := range []string{"/", "/chat"} {
			srv.On(ns, "echo", func(s *server.Socket, args ...any) { s.Emit("echoed", append([]any{s.Namespace()}, args...)...) })
		}
		c := newClient(t, srv, servertest.Options{Transport: tr}, "/", "/chat")
		if c.SID("/") == "" || c.SID("/chat") == "" || c.SID("/") == c.SID("/chat") {
			t.Fatalf("sids %q %q", c.SID("/"), c.SID("/chat"))
		}
		if err := c.Emit("/chat", "echo", "hi", []byte{1, 2, 3}, map[string]any{"n": 1.0}); err != nil {
			t.Fatal(err)
		}
		if err := c.Emit("/", "echo", "plain"); err != nil {
			t.Fatal(err)
		}
		got, err := c.WaitFor("/chat", "echoed", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := []any{"/chat", "hi", []byte{1, 2, 3}, map[string]any{"n": 1.0}}
		if len(got) != 1 || !reflect.DeepEqual(got[0].Args, want) {
			t.Fatalf("/chat received %+v, want %v", got, want)
		}
		got, err = c.WaitFor("/", "echoed", 5*time.Second)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Args, []any{"/", "plain"}) {
			t.Fatalf("/ received %+v, %v", got, err)
		}
	})
}

// Acks both ways: the client's EmitWithAck gets the server handler's
// results; the server's EmitWithAck gets what the client's On handler
// returns (binary included), or no arguments without a handler.
func TestAcks(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		srv.On("/", "add", func(s *server.Socket, a, b int) int { return a + b })
		srv.On("/", "ask", func(s *server.Socket, event string) (server.Args, error) {
			r, err := s.EmitWithAckTimeout(5*time.Second, event, "question", []byte{9})
			return server.Args(r), err
		})
		c := newClient(t, srv, servertest.Options{Transport: tr}, "/")
		if r, err := c.EmitWithAck("/", 5*time.Second, "add", 2, 3); err != nil || !reflect.DeepEqual(r, []any{5.0}) {
			t.Fatalf("client -> server ack: %v %v", r, err)
		}
		var seen []any
		c.On("/", "q", func(args []any) []any {
			seen = args
			return []any{"answer", len(args), append(args[1].([]byte), 10)}
		})
		r, err := c.EmitWithAck("/", 5*time.Second, "ask", "q")
		if err != nil || !reflect.DeepEqual(r, []any{"answer", 2.0, []byte{9, 10}}) {
			t.Fatalf("server -> client ack: %v %v", r, err)
		}
		if !reflect.DeepEqual(seen, []any{"question", []byte{9}}) {
			t.Fatalf("the handler got %v", seen)
		}
		if rs, err := c.WaitFor("/", "q", time.Second); err != nil || len(rs) != 1 {
			t.Fatalf("a handled event is recorded too: %v %v", rs, err)
		}
		// no handler: an ack with no arguments
		if r, err := c.EmitWithAck("/", 5*time.Second, "ask", "unhandled"); err != nil || len(r) != 0 {
			t.Fatalf("unhandled: %v %v", r, err)
		}
		// a handler that returns nil: the same
		c.On("/", "q", func([]any) []any { return nil })
		if r, err := c.EmitWithAck("/", 5*time.Second, "ask", "q"); err != nil || len(r) != 0 {
			t.Fatalf("nil answer: %v %v", r, err)
		}
		// a handler removed
		c.On("/", "q", nil)
		if r, err := c.EmitWithAck("/", 5*time.Second, "ask", "q"); err != nil || len(r) != 0 {
			t.Fatalf("removed handler: %v %v", r, err)
		}
	})
}

// A handler may emit: its events reach the server.
func TestHandlerEmits(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		got := make(chan string, 1)
		srv.On("/", "pong", func(s *server.Socket, v string) { got <- v })
		srv.On("/", "start", func(s *server.Socket) { s.Emit("ping", "x") })
		c := newClient(t, srv, servertest.Options{Transport: tr}, "/")
		c.On("/", "ping", func(args []any) []any {
			c.Emit("/", "pong", args[0].(string)+"y")
			return nil
		})
		c.Emit("/", "start")
		select {
		case v := <-got:
			if v != "xy" {
				t.Fatalf("got %q", v)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the handler's emit did not arrive")
		}
	})
}

// A refusal is a *ConnectError; the server's disconnect is seen.
func TestRefusalAndServerDisconnect(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		srv.OnConnect("/admin", func(*server.Socket, json.RawMessage) error { return errors.New("not an admin") })
		srv.On("/", "kick", func(s *server.Socket) { s.Disconnect() })
		c := newClient(t, srv, servertest.Options{Transport: tr}, "/")
		var ce *servertest.ConnectError
		if err := c.Connect("/admin", nil); !errors.As(err, &ce) || ce.Message != "not an admin" {
			t.Fatalf("connect /admin: %v", err)
		}
		c.Emit("/", "kick")
		if !c.WaitDisconnected("/", 5*time.Second) {
			t.Fatal("still connected after the server's disconnect")
		}
	})
}

// Close ends the session on the server ("transport close"); Err then
// says ErrClosed and writes fail.
func TestClose(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		reason := make(chan string, 1)
		srv.OnDisconnect("/", func(s *server.Socket, r string) { reason <- r })
		c := newClient(t, srv, servertest.Options{Transport: tr}, "/")
		if c.Err() != nil {
			t.Fatalf("Err while open: %v", c.Err())
		}
		c.Close()
		select {
		case r := <-reason:
			if r != "transport close" && r != "client disconnect" {
				t.Fatalf("reason %q", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not see the client leave")
		}
		if !errors.Is(c.Err(), servertest.ErrClosed) || c.IsConnected("/") {
			t.Fatalf("after Close: %v, connected %v", c.Err(), c.IsConnected("/"))
		}
		if err := c.Emit("/", "x"); err == nil {
			t.Fatal("Emit after Close succeeded")
		}
		c.Close()
	})
}

// The client answers the server's pings: with a heartbeat far shorter
// than the wait, the session outlives many ping timeouts.
func TestHeartbeat(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t, server.WithPing(20*time.Millisecond, time.Second))
		srv.On("/", "add", func(s *server.Socket, a, b int) int { return a + b })
		c := newClient(t, srv, servertest.Options{Transport: tr}, "/")
		time.Sleep(2500 * time.Millisecond) // a client that did not answer would be gone after 1.02 s
		if r, err := c.EmitWithAck("/", 5*time.Second, "add", 1, 1); err != nil || !reflect.DeepEqual(r, []any{2.0}) || c.Err() != nil {
			t.Fatalf("after many pings: %v %v %v", r, err, c.Err())
		}
	})
}

// What the server can make the client hold is bounded: events taken by
// the test free their share; beyond MaxBuffered the client drops the
// connection with ErrOverflow, as it does for one message over it.
func TestMaxBuffered(t *testing.T) {
	transports(t, func(t *testing.T, tr servertest.Transport) {
		srv := newServer(t)
		srv.On("/", "send", func(s *server.Socket, n int) { s.Emit("blob", strings.Repeat("x", n)) })
		c := newClient(t, srv, servertest.Options{Transport: tr, MaxBuffered: 4000}, "/")
		for range 5 { // 5 x ~1 KB, each taken before the next
			c.Emit("/", "send", 1000)
			if _, err := c.WaitFor("/", "blob", 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for range 4 { // 4 x ~1 KB kept: over 4000 bytes
			c.Emit("/", "send", 1000)
		}
		if !c.WaitDisconnected("/", 5*time.Second) || !errors.Is(c.Err(), servertest.ErrOverflow) {
			t.Fatalf("after 4 KB of events not taken: %v", c.Err())
		}

		one := newClient(t, srv, servertest.Options{Transport: tr, MaxBuffered: 4000}, "/")
		one.Emit("/", "send", 5000)
		if !one.WaitDisconnected("/", 5*time.Second) || !errors.Is(one.Err(), servertest.ErrOverflow) {
			t.Fatalf("after a 5 KB message: %v", one.Err())
		}
	})
}

// Dial connects to a server listening elsewhere; an unknown transport or
// an unreachable server is an error, not a hang.
func TestDialErrors(t *testing.T) {
	if _, err := servertest.Dial("http://127.0.0.1:1", servertest.Options{}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if _, err := servertest.Dial("http://127.0.0.1:1", servertest.Options{Transport: servertest.Polling}); err == nil {
		t.Fatal("polling dial to a closed port succeeded")
	}
	if _, err := servertest.Dial("http://127.0.0.1:1", servertest.Options{Transport: 7}); err == nil || !strings.Contains(err.Error(), "unknown transport") {
		t.Fatalf("transport 7: %v", err)
	}
}
