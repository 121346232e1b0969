package compat_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
)

// ourServer is siobridge's server configured for the socket.io-client
// tests, with opts.
func ourServer(opts ...server.Option) *server.Server {
	srv := server.New(append([]server.Option{server.WithPing(time.Second, 2*time.Second)}, opts...)...)
	srv.OnConnect("/", func(s *server.Socket, auth json.RawMessage) error {
		var a struct{ Token string }
		json.Unmarshal(auth, &a)
		if a.Token != "t" {
			return &server.ConnectError{Message: "bad token"}
		}
		return s.Emit("welcome", auth)
	})
	srv.On("/", "echo", func(s *server.Socket, args ...any) server.Args { return server.Args(args) })
	srv.On("/", "join", func(s *server.Socket, room string) string { s.Join(room); return "joined " + room })
	srv.On("/", "room-say", func(s *server.Socket, room, msg string) { s.To(room).Emit("said", msg) })
	srv.On("/", "ask-me", func(s *server.Socket) error {
		r, err := s.EmitWithAckTimeout(5*time.Second, "question", "q?", []byte{1})
		if err != nil {
			return err
		}
		return s.Emit("got-answer", r...)
	})
	admin := srv.Of("/admin")
	admin.Use(func(s *server.Socket, auth json.RawMessage) error {
		var a struct{ Role string }
		json.Unmarshal(auth, &a)
		if a.Role != "admin" {
			return &server.ConnectError{Message: "forbidden", Data: map[string]string{"need": "admin"}}
		}
		return nil
	})
	return srv
}

// serve runs srv on addr until the returned stop is called.
func serve(t *testing.T, srv *server.Server, ln net.Listener) (stop func()) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	}
	t.Cleanup(stop)
	return stop
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port of a just-closed server may need a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

func isType(typ string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["type"] == typ }
}

// clientTransports are the transports the socket.io-client tests try.
var clientTransports = []struct{ name, transports string }{
	{"websocket only", "websocket"},
	{"polling only", "polling"},
	{"polling then upgrade", "polling,websocket"},
}

func TestSocketIOClientAgainstOurServer(t *testing.T) {
	needNode(t)
	for _, tr := range clientTransports {
		t.Run(tr.name, func(t *testing.T) { socketIOClientScenario(t, ourServer(), tr.transports) })
	}
}

// socketIOClientScenario serves srv (an ourServer) to two socket.io-client
// 4.8 peers (node/sio-client.js, with the environment variables env) on
// transports, and checks events and acks both ways with binary data,
// namespaces with a refusal carrying data, and rooms.
func socketIOClientScenario(t *testing.T, srv *server.Server, transports string, env ...string) {
	ln := listen(t, "127.0.0.1:0")
	serve(t, srv, ln)
	url := "http://" + ln.Addr().String()
	argv := append(append([]string{"env"}, env...), "node", "node/sio-client.js", url, transports, `{"token":"t"}`)
	a := startPeerWith(t, "client a", true, argv...)
	b := startPeerWith(t, "client b", true, argv...)
	a.waitFor("connect", 10*time.Second, isType("connect"))
	b.waitFor("connect", 10*time.Second, isType("connect"))
	if transports == "polling,websocket" {
		a.waitFor("upgrade", 10*time.Second, isType("upgrade"))
	}
	w := a.waitFor("welcome", 10*time.Second, isEvent("welcome"))
	if !reflect.DeepEqual(w["args"], []any{map[string]any{"token": "t"}}) {
		t.Fatalf("welcome %v", w)
	}

	// client -> server event with binary, acknowledged with the same args
	args := []any{"a", 1.0, map[string]any{"$binary": "AQID"}, map[string]any{"nested": []any{true, nil}}}
	a.send(map[string]any{"emit": "echo", "args": args, "ack": true})
	ack := a.waitFor("echo ack", 10*time.Second, isType("ack"))
	if ack["error"] != nil || !reflect.DeepEqual(ack["args"], args) {
		t.Fatalf("echo ack %v", ack)
	}

	// server -> client event with binary, acknowledged by the client with binary
	a.send(map[string]any{"emit": "ask-me"})
	q := a.waitFor("question", 10*time.Second, isEvent("question"))
	if !reflect.DeepEqual(q["args"], []any{"q?", map[string]any{"$binary": "AQ=="}}) {
		t.Fatalf("question %v", q)
	}
	got := a.waitFor("got-answer", 10*time.Second, isEvent("got-answer"))
	if !reflect.DeepEqual(got["args"], []any{"answer", map[string]any{"$binary": "CQ=="}}) {
		t.Fatalf("got-answer %v", got)
	}

	// namespaces with a middleware refusal carrying data
	a.send(map[string]any{"connect": "/admin", "auth": map[string]any{"role": "guest"}})
	ce := a.waitFor("connect_error", 10*time.Second, isType("connect_error"))
	if ce["message"] != "forbidden" || !reflect.DeepEqual(ce["data"], map[string]any{"need": "admin"}) {
		t.Fatalf("connect_error %v", ce)
	}

	// rooms: b hears what a says in the room, a (the sender) does not
	for _, c := range []*peer{a, b} {
		c.send(map[string]any{"emit": "join", "args": []any{"r"}, "ack": true})
		c.waitFor("join ack", 10*time.Second, func(l map[string]any) bool {
			return l["type"] == "ack" && l["event"] == "join"
		})
	}
	a.send(map[string]any{"emit": "room-say", "args": []any{"r", "hi room"}})
	b.waitFor("said", 10*time.Second, isEventWith("said", "hi room"))
	a.send(map[string]any{"emit": "echo", "args": []any{"marker"}, "ack": true})
	a.waitFor("marker ack", 10*time.Second, func(l map[string]any) bool {
		args, _ := l["args"].([]any)
		return l["type"] == "ack" && len(args) == 1 && args[0] == "marker"
	})
	if len(a.events("said")) != 0 {
		t.Fatal("the sender received its own room broadcast")
	}
}

func TestSocketIOClientAuthRejection(t *testing.T) {
	needNode(t)
	ln := listen(t, "127.0.0.1:0")
	serve(t, ourServer(), ln)
	c := startPeerWith(t, "client", true, "node", "node/sio-client.js", "http://"+ln.Addr().String(), "websocket", `{"token":"wrong"}`)
	l := c.waitFor("connect_error", 10*time.Second, isType("connect_error"))
	if l["message"] != "bad token" {
		t.Fatalf("connect_error %v", l)
	}
}

func TestSocketIOClientReconnectsAfterServerRestart(t *testing.T) {
	needNode(t)
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	stop := serve(t, ourServer(), ln)
	c := startPeerWith(t, "client", true, "node", "node/sio-client.js", "http://"+addr, "websocket", `{"token":"t"}`)
	first := c.waitFor("connect", 10*time.Second, isType("connect"))
	stop()
	c.waitFor("disconnect", 10*time.Second, isType("disconnect"))
	serve(t, ourServer(), listen(t, addr))
	second := c.waitFor("reconnect", 20*time.Second, func(l map[string]any) bool {
		return l["type"] == "connect" && l["sid"] != first["sid"]
	})
	c.send(map[string]any{"emit": "echo", "args": []any{"after restart"}, "ack": true})
	ack := c.waitFor("ack", 10*time.Second, isType("ack"))
	if !reflect.DeepEqual(ack["args"], []any{"after restart"}) {
		t.Fatalf("after restart: %v (connected as %v)", ack, second["sid"])
	}
}
