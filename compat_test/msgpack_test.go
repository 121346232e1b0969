package compat_test

import (
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/parser"
)

// The msgpack parser against the real clients that use it:
// socket.io-client 4.8.1 with socket.io-msgpack-parser 3.0.2, and the
// newest python-socketio client (vendored) with serializer='msgpack' on
// Debian's python3-msgpack.

func needMsgpackNode(t *testing.T) {
	t.Helper()
	needNode(t)
	needPeer(t, "socket.io-msgpack-parser in compat_test/node", func() error {
		return exec.Command("node", "-e", `require("./node/node_modules/socket.io-msgpack-parser")`).Run()
	})
}

func needMsgpackPython(t *testing.T) {
	t.Helper()
	needPeer(t, "Debian's python3-msgpack and python3-websocket, and the vendored python-socketio", func() error {
		return exec.Command("/usr/bin/python3", "python/msgpack_client.py", "--check").Run()
	})
}

// TestMsgpackSocketIOClient: the socket.io-client scenario (events and
// acks both ways with binary, namespaces and a refusal with data, rooms)
// with socket.io-msgpack-parser on both sides, on every transport.
func TestMsgpackSocketIOClient(t *testing.T) {
	needMsgpackNode(t)
	for _, tr := range clientTransports {
		t.Run(tr.name, func(t *testing.T) {
			socketIOClientScenario(t, ourServer(server.WithParser(parser.MsgPack)), tr.transports, "SIO_PARSER=msgpack")
		})
	}
}

// TestMsgpackSocketIOClientNeedsTheParser: the same client against a JSON
// server does not connect (so the test above tells the parsers apart).
func TestMsgpackSocketIOClientNeedsTheParser(t *testing.T) {
	needMsgpackNode(t)
	ln := listen(t, "127.0.0.1:0")
	serve(t, ourServer(), ln)
	c := startPeerWith(t, "client", true, "env", "SIO_PARSER=msgpack", "node", "node/sio-client.js", "http://"+ln.Addr().String(), "websocket", `{"token":"t"}`)
	c.send(map[string]any{"emit": "echo", "args": []any{"x"}, "ack": true})
	l := c.waitFor("ack or connect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "ack" || l["type"] == "connect" })
	if l["type"] == "connect" || l["error"] == nil {
		t.Fatalf("a msgpack client talked to a JSON server: %v", l)
	}
}

// TestMsgpackPythonClient: python-socketio's client with
// serializer='msgpack', over polling and WebSocket: two namespaces with
// auth, events and acks both ways with binary and nested data, rooms, a
// server-side disconnect.
func TestMsgpackPythonClient(t *testing.T) {
	needMsgpackPython(t)
	for _, transport := range []string{"polling", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			srv := ourServer(server.WithParser(parser.MsgPack))
			srv.On("/chat", "where", func(s *server.Socket) (string, []byte) { return s.Namespace(), []byte{0xff} })
			srv.On("/", "leave-me", func(s *server.Socket) { s.Disconnect() })
			ln := listen(t, "127.0.0.1:0")
			serve(t, srv, ln)
			c := startPeerWith(t, "python client", true, "/usr/bin/python3", "python/msgpack_client.py",
				"--url", "http://"+ln.Addr().String(), "--transport", transport)
			for _, ns := range []string{"/", "/chat"} {
				c.waitFor("connected "+ns, 10*time.Second, func(l map[string]any) bool { return l["type"] == "connected" && l["namespace"] == ns })
			}
			w := c.waitFor("welcome", 10*time.Second, isEvent("welcome"))
			if !reflect.DeepEqual(w["args"], []any{map[string]any{"token": "t"}}) {
				t.Fatalf("welcome %v", w)
			}
			call := func(ns, event string, args []any, want []any) {
				t.Helper()
				c.send(map[string]any{"call": event, "ns": ns, "args": args})
				r := c.waitFor(event+" ack", 10*time.Second, func(l map[string]any) bool { return l["type"] == "ack" && l["event"] == event })
				if r["error"] != nil || !reflect.DeepEqual(r["args"], want) {
					t.Fatalf("%s ack %v, want args %v", event, r, want)
				}
			}
			// client -> server with ack, binary and nested values back
			args := []any{"a", 1.5, 7.0, map[string]any{"$binary": "AQID"}, map[string]any{"nested": []any{true, nil, map[string]any{"$binary": ""}}}}
			call("/", "echo", args, args)
			call("/chat", "where", []any{}, []any{"/chat", map[string]any{"$binary": "/w=="}})

			// server -> client with ack: the client answers ("answer", b"\x09")
			c.send(map[string]any{"emit": "ask-me", "ns": "/"})
			q := c.waitFor("question", 10*time.Second, isEvent("question"))
			if !reflect.DeepEqual(q["args"], []any{"q?", map[string]any{"$binary": "AQ=="}}) {
				t.Fatalf("question %v", q)
			}
			got := c.waitFor("got-answer", 10*time.Second, isEvent("got-answer"))
			if !reflect.DeepEqual(got["args"], []any{"answer", map[string]any{"$binary": "CQ=="}}) {
				t.Fatalf("got-answer %v", got)
			}

			// rooms: the client joins r; a broadcast to r reaches it, one to s does not
			call("/", "join", []any{"r"}, []any{"joined r"})
			srv.Of("/").To("s").Emit("news", "not for you")
			srv.Of("/").To("r").Emit("news", "for r", []byte{4})
			n := c.waitFor("news", 10*time.Second, isEvent("news"))
			if !reflect.DeepEqual(n["args"], []any{"for r", map[string]any{"$binary": "BA=="}}) {
				t.Fatalf("news %v", n)
			}

			// a server-side disconnect of one namespace
			c.send(map[string]any{"emit": "leave-me", "ns": "/"})
			c.waitFor("disconnected /", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" && l["namespace"] == "/" })
			call("/chat", "where", []any{}, []any{"/chat", map[string]any{"$binary": "/w=="}})
		})
	}
}
