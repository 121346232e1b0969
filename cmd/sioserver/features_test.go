package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siobridge/siobridge/server/parser"
	"github.com/siobridge/siobridge/server/servertest"
)

// TestAdminFlag: --admin serves the Admin UI's build at /admin/ and its
// namespace /admin for that user and password only; without the flag,
// neither exists.
func TestAdminFlag(t *testing.T) {
	in := start(t, "--no-broker", "--admin", "root:s3cret")
	resp, body := get(t, in.url+"/admin/")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<title>Socket.IO Admin UI</title>")) {
		t.Fatalf("GET /admin/: %d %.200s", resp.StatusCode, body)
	}
	c, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/admin", map[string]string{"username": "root", "password": "wrong"}); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := c.Connect("/admin", map[string]string{"username": "root", "password": "s3cret"}); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	if _, err := c.WaitFor("/admin", "config", 10*time.Second); err != nil {
		t.Fatalf("no config event for the admin client: %v", err)
	}

	plain := start(t, "--no-broker")
	resp, body = get(t, plain.url+"/admin/")
	if bytes.Contains(body, []byte("Admin UI")) {
		t.Fatalf("GET /admin/ without --admin: %d, the UI", resp.StatusCode)
	}
	c2, err := servertest.Dial(plain.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Connect("/admin", map[string]string{"username": "root", "password": "s3cret"}); err == nil {
		t.Fatal("the /admin namespace exists without --admin")
	}
}

// TestParserFlag: with --parser msgpack a socket.io-msgpack-parser client
// (binary msgpack packets) connects and is answered in msgpack; a client
// of the default parser is not understood.
func TestParserFlag(t *testing.T) {
	in := start(t, "--no-broker", "--parser", "msgpack", "--allow-client-rooms")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(in.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open packet %q %v", open, err)
	}
	send := func(p *parser.Packet) {
		t.Helper()
		msgs, err := parser.MsgPack.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if !m.Binary {
				t.Fatalf("msgpack packet sent as text: %q", m.Data)
			}
			if err := ws.WriteMessage(websocket.BinaryMessage, m.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	dec := parser.MsgPack.NewDecoder()
	recv := func() *parser.Packet {
		t.Helper()
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ == websocket.TextMessage { // Engine.IO: pings
				if string(data) == "2" {
					ws.WriteMessage(websocket.TextMessage, []byte("3"))
				}
				continue
			}
			p, err := dec.Add(data, true)
			if err != nil {
				t.Fatalf("the server's answer is not msgpack: %v (% x)", err, data)
			}
			if p != nil {
				return p
			}
		}
	}
	send(&parser.Packet{Type: parser.Connect, Namespace: "/"})
	if p := recv(); p.Type != parser.Connect {
		t.Fatalf("CONNECT answered with %+v", p)
	}
	send(&parser.Packet{Type: parser.Event, Namespace: "/", ID: 7, HasID: true, Data: []byte(`["join","news"]`)})
	if p := recv(); p.Type != parser.Ack || p.ID != 7 || string(p.Data) != "[true]" {
		t.Fatalf("join answered with %+v (%s)", p, p.Data)
	}

	// a JSON client: its text CONNECT is not a msgpack packet
	c, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/", nil); err == nil {
		t.Fatal("a JSON client connected to a msgpack server")
	}
}

// TestFeatureFlagErrors: bad values of --parser, --admin and --admin-mode
// are refused with a one-line reason.
func TestFeatureFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--parser", "xml"}, "--parser"},
		{[]string{"--admin", "nopassword"}, "--admin wants USER:PASSWORD"},
		{[]string{"--admin", ":p"}, "--admin wants USER:PASSWORD"},
		{[]string{"--admin-mode", "debug"}, "--admin-mode"},
	} {
		var out, errb bytes.Buffer
		code := run(t.Context(), c.args, func(string) string { return "" }, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errb.String())
		}
	}
}
