package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

func newServer(t *testing.T, opts ...server.Option) *server.Server {
	srv := server.New(opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func client(t *testing.T, srv *server.Server, ns string, o servertest.Options) *servertest.Client {
	t.Helper()
	c, err := servertest.New(srv, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if ns != "" {
		if err := c.Connect(ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

type chatMsg struct {
	Text string `json:"text"`
	N    int    `json:"n"`
}

func TestTypedHandlersAndAcks(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "add", func(s *server.Socket, a, b int) int { return a + b })
	srv.On("/", "chat", func(s *server.Socket, m chatMsg) (chatMsg, error) {
		m.N++
		return m, nil
	})
	srv.On("/", "bin", func(s *server.Socket, label string, data []byte) (string, []byte) {
		return label, append(data, 0xff)
	})
	srv.On("/", "spread", func(s *server.Socket) server.Args { return server.Args{1, "two"} })
	c := client(t, srv, "/", servertest.Options{})
	cases := []struct {
		event string
		args  []any
		want  []any
	}{
		{"add", []any{2, 3}, []any{5.0}},
		{"chat", []any{map[string]any{"text": "hi", "n": 1}}, []any{map[string]any{"text": "hi", "n": 2.0}}},
		{"bin", []any{"x", []byte{1, 2}}, []any{"x", []byte{1, 2, 0xff}}},
		{"spread", nil, []any{1.0, "two"}},
	}
	for _, cs := range cases {
		got, err := c.EmitWithAck("/", 5*time.Second, cs.event, cs.args...)
		if err != nil || !reflect.DeepEqual(got, cs.want) {
			t.Errorf("%s: %#v %v, want %#v", cs.event, got, err, cs.want)
		}
	}
}

func TestErrorsAndPanicsGoToTheErrorHandler(t *testing.T) {
	srv := newServer(t, server.WithAsyncHandlers(false)) // s.Event() is the event of the one running handler
	var mu sync.Mutex
	var got []string
	srv.Of("/").OnError(func(s *server.Socket, event string, err error) {
		mu.Lock()
		got = append(got, event+": "+err.Error())
		if event == "typed" && (s.Event() != "typed" || len(s.EventArgs()) != 1 || string(s.EventArgs()[0]) != `"not a number"`) {
			got = append(got, "error handler saw event "+s.Event())
		}
		mu.Unlock()
	})
	srv.On("/", "fail", func(s *server.Socket) error { return errors.New("boom") })
	srv.On("/", "panic", func(s *server.Socket) { panic("oops") })
	srv.On("/", "typed", func(s *server.Socket, n int) {})
	c := client(t, srv, "/", servertest.Options{})
	c.Emit("/", "fail")
	c.Emit("/", "panic")
	c.Emit("/", "typed", "not a number")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(got)
	if len(got) != 3 || got[0] != "fail: boom" || got[1] != "panic: panic: oops" || got[2][:7] != "typed: " {
		t.Fatalf("error handler got %q", got)
	}
}

func TestConnectRefusalMiddlewareAndAuth(t *testing.T) {
	srv := newServer(t)
	admin := srv.Of("/admin")
	admin.Use(func(s *server.Socket, auth json.RawMessage) error {
		var a struct{ Token string }
		json.Unmarshal(auth, &a)
		if a.Token != "secret" {
			return &server.ConnectError{Message: "not authorized", Data: map[string]any{"code": 401}}
		}
		return nil
	})
	admin.OnConnect(func(s *server.Socket, auth json.RawMessage) error {
		if s.Request().URL.Query().Get("banned") == "1" {
			return errors.New("banned")
		}
		return s.Emit("welcome", s.Request().Header.Get("X-User"))
	})
	c := client(t, srv, "", servertest.Options{Header: http.Header{"X-User": {"ann"}}})
	err := c.Connect("/admin", map[string]string{"token": "wrong"})
	var ce *servertest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "not authorized" || string(ce.Data) != `{"code":401}` {
		t.Fatalf("refusal: %v", err)
	}
	if err := c.Connect("/admin", map[string]string{"token": "secret"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.WaitFor("/admin", "welcome", 5*time.Second)
	if err != nil || got[0].Args[0] != "ann" {
		t.Fatalf("welcome %v %v", got, err)
	}
	banned := client(t, srv, "", servertest.Options{Query: url.Values{"banned": {"1"}}})
	if err := banned.Connect("/admin", map[string]string{"token": "secret"}); !errors.As(err, &ce) || ce.Message != "banned" {
		t.Fatalf("connect handler refusal: %v", err)
	}
	if err := c.Connect("/nowhere", nil); !errors.As(err, &ce) || ce.Message != "Invalid namespace" {
		t.Fatalf("unknown namespace: %v", err)
	}
}

func TestRoomsAndBroadcasts(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "join", func(s *server.Socket, room string) []string {
		s.Join(room)
		r := s.Rooms()
		sort.Strings(r)
		return r
	})
	srv.On("/", "shout", func(s *server.Socket, room, msg string) { s.To(room).Emit("shout", msg) })
	a := client(t, srv, "/", servertest.Options{})
	b := client(t, srv, "/", servertest.Options{})
	c := client(t, srv, "/", servertest.Options{})
	for _, cl := range []*servertest.Client{a, b} {
		r, err := cl.EmitWithAck("/", 5*time.Second, "join", "lobby")
		if err != nil || len(r) != 1 || len(r[0].([]any)) != 2 {
			t.Fatalf("join: %v %v", r, err)
		}
	}
	a.Emit("/", "shout", "lobby", "hello")
	if _, err := b.WaitFor("/", "shout", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// server-side: to a room, except a sid, to everybody
	root := srv.Of("/")
	root.To("lobby").Except(b.SID("/")).Emit("news", 1)
	root.Emit("all", true)
	if _, err := c.WaitFor("/", "all", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := a.WaitFor("/", "all", 5*time.Second)
	if err != nil || got[0].Event != "news" {
		t.Fatalf("a got %v", got)
	}
	for _, r := range b.Received("/") {
		if r.Event == "news" || r.Event == "shout" {
			t.Fatalf("b got %v", r)
		}
	}
	for _, r := range c.Received("/") {
		if r.Event == "news" {
			t.Fatalf("c got news without being in the room")
		}
	}
	root.CloseRoom("lobby")
	root.To("lobby").Emit("after-close")
	root.To(a.SID("/")).Emit("marker")
	if got, _ := a.WaitFor("/", "marker", 5*time.Second); len(got) != 1 {
		t.Fatalf("after close-room a got %v", got)
	}
	// SocketsJoin / DisconnectSockets through a broadcast
	root.In(c.SID("/")).SocketsJoin("vip")
	root.To("vip").Emit("vip")
	if _, err := c.WaitFor("/", "vip", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	root.In("vip").DisconnectSockets(false)
	if !c.WaitDisconnected("/", 5*time.Second) {
		t.Fatal("c still connected")
	}
}

func TestServerToClientAckSessionSendAndDisconnect(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var reasons []string
	srv.OnDisconnect("/", func(s *server.Socket, reason string) {
		mu.Lock()
		reasons = append(reasons, reason)
		mu.Unlock()
	})
	srv.On("/", "remember", func(s *server.Socket, v string) { s.Set("v", v) })
	srv.On("/", "recall", func(s *server.Socket) any { v, _ := s.Get("v"); return v })
	srv.On("/", "ask-me", func(s *server.Socket) (int, error) {
		r, err := s.EmitWithAckTimeout(5*time.Second, "question", 1)
		return len(r), err
	})
	srv.On("/", "kick", func(s *server.Socket) { s.Disconnect() })
	srv.On("/", "send", func(s *server.Socket, m string) { s.Send(m); s.SendJSON(map[string]string{"event": s.Event()}) })
	c := client(t, srv, "/", servertest.Options{})
	if _, err := c.EmitWithAck("/", 5*time.Second, "remember", "kept"); err != nil { // handlers run concurrently
		t.Fatal(err)
	}
	if r, err := c.EmitWithAck("/", 5*time.Second, "recall"); err != nil || r[0] != "kept" {
		t.Fatalf("session: %v %v", r, err)
	}
	if r, err := c.EmitWithAck("/", 5*time.Second, "ask-me"); err != nil || r[0] != 0.0 {
		t.Fatalf("server-to-client ack: %v %v", r, err)
	}
	c.Emit("/", "send", "hi")
	got, err := c.WaitFor("/", "json", 5*time.Second)
	if err != nil || len(got) < 2 || got[len(got)-2].Event != "message" || got[len(got)-2].Args[0] != "hi" ||
		!reflect.DeepEqual(got[len(got)-1].Args[0], map[string]any{"event": "send"}) {
		t.Fatalf("send: %v %v", got, err)
	}
	c.Emit("/", "kick")
	if !c.WaitDisconnected("/", 5*time.Second) {
		t.Fatal("not disconnected")
	}
	d := client(t, srv, "/", servertest.Options{})
	d.Disconnect("/")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(reasons)
		mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Strings(reasons)
	if !reflect.DeepEqual(reasons, []string{"client namespace disconnect", "server namespace disconnect"}) {
		t.Fatalf("reasons %v", reasons)
	}
}

type chatNamespace struct{ joined chan string }

func (n *chatNamespace) OnConnect(s *server.Socket, auth json.RawMessage) error {
	return nil
}
func (n *chatNamespace) OnMyEvent(s *server.Socket, text string) string { return "echo:" + text }

func TestDynamicAndClassNamespacesAndCatchAll(t *testing.T) {
	srv := newServer(t)
	srv.OfPattern(regexp.MustCompile(`^/room-\d+$`), func(n *server.Namespace) {
		n.RegisterHandlers(&chatNamespace{})
		n.OnAny(func(s *server.Socket, event string, args []any) { s.Emit("caught", event, args) })
	})
	c := client(t, srv, "/room-42", servertest.Options{})
	if r, err := c.EmitWithAck("/room-42", 5*time.Second, "my_event", "x"); err != nil || r[0] != "echo:x" {
		t.Fatalf("class handler: %v %v", r, err)
	}
	c.Emit("/room-42", "whatever", 1)
	got, err := c.WaitFor("/room-42", "caught", 5*time.Second)
	if err != nil || got[0].Args[0] != "whatever" {
		t.Fatalf("catch-all: %v %v", got, err)
	}
	var ce *servertest.ConnectError
	if err := c.Connect("/room-x", nil); !errors.As(err, &ce) {
		t.Fatalf("a name the pattern refuses: %v", err)
	}
}

// TestMalformedPacketClosesOnlyThatClient: one client sends garbage; the
// others keep working.
func TestMalformedPacketClosesOnlyThatClient(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "ping", func(s *server.Socket) string { return "pong" })
	good := client(t, srv, "/", servertest.Options{})
	bad := client(t, srv, "/", servertest.Options{})
	bad.Emit("/", "connect") // a reserved event name: invalid packet
	if !bad.WaitDisconnected("/", 5*time.Second) {
		t.Fatal("the misbehaving client is still connected")
	}
	if r, err := good.EmitWithAck("/", 5*time.Second, "ping"); err != nil || r[0] != "pong" {
		t.Fatalf("the other client: %v %v", r, err)
	}
}

func TestBroadcastWithAckAndDefaultErrorHandler(t *testing.T) {
	srv := newServer(t)
	errs := make(chan string, 1)
	srv.OnErrorDefault(func(s *server.Socket, event string, err error) { errs <- event + ": " + err.Error() })
	srv.On("/", "fail", func(s *server.Socket) error { return errors.New("default handler") })
	a := client(t, srv, "/", servertest.Options{})
	b := client(t, srv, "/", servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answers, err := srv.Of("/").To().EmitWithAck(ctx, "poll", 1)
	if err != nil || len(answers) != 2 {
		t.Fatalf("answers %v %v", answers, err)
	}
	a.Emit("/", "fail")
	select {
	case e := <-errs:
		if e != "fail: default handler" {
			t.Fatal(e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the default error handler was not called")
	}
	_ = b
}

func TestTriggerEventAndAlwaysConnect(t *testing.T) {
	srv := newServer(t, server.WithAlwaysConnect())
	srv.On("/", "double", func(s *server.Socket, n int, b []byte) (int, []byte) { return 2 * n, append(b, b...) })
	srv.OnConnect("/", func(s *server.Socket, auth json.RawMessage) error {
		if string(auth) != `{"ok":true}` {
			return errors.New("provisional connection refused")
		}
		r, err := srv.Of("/").TriggerEvent(s, "double", 21, []byte{7})
		if err != nil {
			return err
		}
		return s.Emit("triggered", r...)
	})
	c := client(t, srv, "", servertest.Options{})
	if err := c.Connect("/", map[string]bool{"ok": true}); err != nil {
		t.Fatal(err)
	}
	got, err := c.WaitFor("/", "triggered", 5*time.Second)
	if err != nil || !reflect.DeepEqual(got[0].Args, []any{42.0, []byte{7, 7}}) {
		t.Fatalf("triggered %v %v", got, err)
	}
	// always_connect: the connection is accepted, then disconnected
	d := client(t, srv, "", servertest.Options{})
	if err := d.Connect("/", map[string]bool{"ok": false}); err != nil {
		t.Fatalf("always_connect accepts first: %v", err)
	}
	if !d.WaitDisconnected("/", 5*time.Second) {
		t.Fatal("not disconnected after the connect handler refused")
	}
}

// TestVolatileBroadcastSkipsBusyClients: a polling client with no pending
// GET cannot take a message now, so a volatile event is dropped for it
// while a normal one waits for its next GET.
func TestVolatileBroadcastSkipsBusyClients(t *testing.T) {
	srv := newServer(t)
	ln := httptest.NewServer(srv)
	defer ln.Close()
	base := ln.URL + "/socket.io/"
	sid := polling(t, base)
	poll := base + "?EIO=4&transport=polling&sid=" + sid
	if code, _ := httpDo(t, "POST", poll, "40"); code != 200 {
		t.Fatal("connect POST", code)
	}
	if code, body := httpDo(t, "GET", poll, ""); code != 200 || !strings.HasPrefix(body, "40{") {
		t.Fatalf("connect ack %d %q", code, body)
	}
	srv.Of("/").Volatile().Emit("volatile-event")
	srv.Of("/").Emit("normal-event")
	code, body := httpDo(t, "GET", poll, "")
	if code != 200 || body != `42["normal-event"]` {
		t.Fatalf("GET %d %q", code, body)
	}
}
