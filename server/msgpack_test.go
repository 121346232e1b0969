package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/wstest"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/parser"
)

// mpClient speaks socket.io-msgpack-parser over a raw WebSocket.
type mpClient struct {
	t *testing.T
	w *wstest.Conn
}

// serveHTTPTest starts srv on a loopback HTTP server for the test.
func serveHTTPTest(t *testing.T, srv *server.Server) string {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs.URL
}

func dialMsgpack(t *testing.T, base string) *mpClient {
	t.Helper()
	w := wstest.Dial(t, "ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket")
	if typ, open := w.Read(); typ != websocket.TextMessage || !strings.HasPrefix(open, "0{") {
		t.Fatalf("Engine.IO open packet: %q", open)
	}
	return &mpClient{t, w}
}

func (c *mpClient) send(p parser.Packet) {
	c.t.Helper()
	b, err := parser.EncodeMsgpack(&p)
	if err != nil {
		c.t.Fatal(err)
	}
	c.w.SendBinary(b)
}

// read returns the next packet, answering pings.
func (c *mpClient) read() *parser.Packet {
	c.t.Helper()
	for {
		typ, m := c.w.Read()
		if typ == websocket.TextMessage {
			if m == "2" {
				c.w.Send("3")
				continue
			}
			c.t.Fatalf("a text message under the msgpack parser: %q", m)
		}
		p, err := parser.DecodeMsgpack([]byte(m))
		if err != nil {
			c.t.Fatalf("%x: %v", m, err)
		}
		return p
	}
}

// Ids expect checks.
const (
	noID  = -1
	anyID = -2
)

// expect reads a packet and checks its type, namespace, id (noID, anyID
// or the id), JSON data (unless "") and attachments.
func (c *mpClient) expect(typ parser.Type, ns string, id int, data string, atts ...[]byte) *parser.Packet {
	c.t.Helper()
	p := c.read()
	idOK := id == anyID && p.HasID || id == noID && !p.HasID || id >= 0 && p.HasID && p.ID == uint64(id)
	if p.Type != typ || p.Namespace != ns || !idOK {
		c.t.Fatalf("got %+v (data %s), want type %d in %s with id %d", p, p.Data, typ, ns, id)
	}
	if data != "" && string(p.Data) != data {
		c.t.Fatalf("data %s, want %s", p.Data, data)
	}
	if len(atts) > 0 && !reflect.DeepEqual(p.Attachments, atts) {
		c.t.Fatalf("binary %v, want %v", p.Attachments, atts)
	}
	return p
}

func (c *mpClient) connect(ns string) {
	c.t.Helper()
	c.send(parser.Packet{Type: parser.Connect, Namespace: ns})
	p := c.expect(parser.Connect, ns, noID, "")
	var v struct{ Sid string }
	if json.Unmarshal(p.Data, &v) != nil || len(v.Sid) != 20 {
		c.t.Fatalf("CONNECT reply %s", p.Data)
	}
}

func placeholder(n int) string { return `{"_placeholder":true,"num":` + string(rune('0'+n)) + `}` }

// TestMsgpackParser: under WithParser(parser.MsgPack) every packet is one
// msgpack message: connect, events and acknowledgements both ways with
// typed and binary arguments, namespaces, rooms, server-side disconnect.
// Before the parser existed a msgpack client's first message (binary)
// was taken for an attachment nobody announced and closed the connection.
func TestMsgpackParser(t *testing.T) {
	srv := newServer(t, server.WithParser(parser.MsgPack))
	srv.On("/", "echo", func(s *server.Socket, m chatMsg, b []byte) (chatMsg, []byte) {
		m.N++
		return m, append(b, 4)
	})
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	srv.On("/", "shout", func(s *server.Socket, room string) {
		s.To(room).Emit("news", "from "+room, []byte{9})
	})
	srv.On("/", "ask", func(s *server.Socket) {
		r, err := s.EmitWithAckTimeout(5*time.Second, "question", 41, []byte{7})
		if err != nil {
			s.Emit("answer", err.Error())
			return
		}
		s.Emit("answer", r...)
	})
	srv.On("/", "bye", func(s *server.Socket) { s.Disconnect() })
	srv.On("/chat", "where", func(s *server.Socket) string { return s.Namespace() })
	if srv.Parser() != parser.MsgPack {
		t.Fatalf("Parser() = %v", srv.Parser())
	}
	base := serveHTTPTest(t, srv)
	a, b := dialMsgpack(t, base), dialMsgpack(t, base)
	a.connect("/")
	b.connect("/")

	// client -> server with ack: typed struct and binary in, both back
	a.send(parser.Packet{Type: parser.Event, Namespace: "/", ID: 1, HasID: true,
		Data: json.RawMessage(`["echo",{"text":"hi","n":1},` + placeholder(0) + `]`), Attachments: [][]byte{{1, 2, 3}}})
	a.expect(parser.Ack, "/", 1, `[{"text":"hi","n":2},`+placeholder(0)+`]`, []byte{1, 2, 3, 4})

	// rooms: b joins, a shouts to the room, a (not in it) gets nothing
	b.send(parser.Packet{Type: parser.Event, Namespace: "/", ID: 2, HasID: true, Data: json.RawMessage(`["join","r"]`)})
	b.expect(parser.Ack, "/", 2, `[]`)
	a.send(parser.Packet{Type: parser.Event, Namespace: "/", Data: json.RawMessage(`["shout","r"]`)})
	b.expect(parser.Event, "/", noID, `["news","from r",`+placeholder(0)+`]`, []byte{9})

	// server -> client with ack
	a.send(parser.Packet{Type: parser.Event, Namespace: "/", Data: json.RawMessage(`["ask"]`)})
	q := a.expect(parser.Event, "/", anyID, `["question",41,`+placeholder(0)+`]`, []byte{7})
	a.send(parser.Packet{Type: parser.Ack, Namespace: "/", ID: q.ID, HasID: true,
		Data: json.RawMessage(`[42,` + placeholder(0) + `]`), Attachments: [][]byte{{8}}})
	a.expect(parser.Event, "/", noID, `["answer",42,`+placeholder(0)+`]`, []byte{8})

	// another namespace
	a.connect("/chat")
	a.send(parser.Packet{Type: parser.Event, Namespace: "/chat", ID: 3, HasID: true, Data: json.RawMessage(`["where"]`)})
	a.expect(parser.Ack, "/chat", 3, `["/chat"]`)

	// server-side disconnect: a DISCONNECT without "data" (which
	// socket.io-msgpack-parser requires)
	a.send(parser.Packet{Type: parser.Event, Namespace: "/", Data: json.RawMessage(`["bye"]`)})
	typ, m := a.w.Read()
	if want := "\x82\xa4type\x01\xa3nsp\xa1/"; typ != websocket.BinaryMessage || m != want {
		t.Fatalf("server disconnect: %q, want %q", m, want)
	}
}

// TestMsgpackHostilePacketClosesOnlyThatClient: a packet the msgpack
// parser refuses (nesting past the limit, a text message, announced
// lengths past the message's end) closes that client; the others go on.
func TestMsgpackHostilePacketClosesOnlyThatClient(t *testing.T) {
	srv := newServer(t, server.WithParser(parser.MsgPack))
	srv.On("/", "ping", func(s *server.Socket) string { return "pong" })
	base := serveHTTPTest(t, srv)
	good := dialMsgpack(t, base)
	good.connect("/")
	deep := append([]byte("\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e"), strings.Repeat("\x91", parser.MaxMsgpackDepth)...)
	for name, send := range map[string]func(c *mpClient){ // each closes only its client
		"too deep":     func(c *mpClient) { c.w.SendBinary(append(deep, 0xc0)) },
		"text":         func(c *mpClient) { c.w.Send(`42["ping"]`) },
		"past the end": func(c *mpClient) { c.w.SendBinary([]byte("\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd\xff\xff\xff\xff")) },
		"JSON-encoded": func(c *mpClient) { c.w.SendBinary([]byte(`{"type":2,"nsp":"/","data":["ping"]}`)) },
	} {
		bad := dialMsgpack(t, base)
		bad.connect("/")
		send(bad)
		t.Log(name)
		bad.w.WaitClose(5 * time.Second)
		good.send(parser.Packet{Type: parser.Event, Namespace: "/", ID: 1, HasID: true, Data: json.RawMessage(`["ping"]`)})
		good.expect(parser.Ack, "/", 1, `["pong"]`)
	}
}

// TestMsgpackClientsGetQueueMessages: what another process publishes on a
// real Redis (the Go emitter, in both dialects) reaches msgpack clients
// as msgpack: rooms, one socket, binary and nested data, and (node
// dialect) an emit whose acknowledgement goes back through the queue.
func TestMsgpackClientsGetQueueMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus := redisBus(ctx, t)
	for _, pair := range workerDialects("msgpack") {
		d := pair[0]
		t.Run(d.Name(), func(t *testing.T) {
			srv := newServer(t, server.WithParser(parser.MsgPack))
			srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
			sub, err := srv.ConsumeQueue(ctx, bus, d, server.QueueSubscription(d, "/"))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			base := serveHTTPTest(t, srv)
			a, b := dialMsgpack(t, base), dialMsgpack(t, base)
			a.connect("/")
			b.connect("/")
			a.send(parser.Packet{Type: parser.Event, Namespace: "/", ID: 1, HasID: true, Data: json.RawMessage(`["join","room1"]`)})
			a.expect(parser.Ack, "/", 1, `[]`)
			em := emitter.New(bus, pair[1])
			defer em.Close()

			if err := em.To("room1").Emit(ctx, "to-room", "hi", 1.5, map[string]any{"n": []any{1, "x"}}, []byte{1, 2}); err != nil {
				t.Fatal(err)
			}
			a.expect(parser.Event, "/", noID, `["to-room","hi",1.5,{"n":[1,"x"]},`+placeholder(0)+`]`, []byte{1, 2})
			if err := em.Except("room1").Emit(ctx, "except", "not a"); err != nil {
				t.Fatal(err)
			}
			b.expect(parser.Event, "/", noID, `["except","not a"]`)
			if d.Name() != "node" {
				return
			}
			replies := make(chan error, 1)
			go func() {
				r, err := em.To("room1").Timeout(5*time.Second).EmitWithAck(ctx, "question", []byte{5})
				if err == nil && (len(r) != 1 || fmt.Sprint(r[0].Args) != "[[6]]") {
					err = fmt.Errorf("replies %+v", r)
				}
				replies <- err
			}()
			q := a.expect(parser.Event, "/", anyID, `["question",`+placeholder(0)+`]`, []byte{5})
			a.send(parser.Packet{Type: parser.Ack, Namespace: "/", ID: q.ID, HasID: true,
				Data: json.RawMessage(`[` + placeholder(0) + `,"more"]`), Attachments: [][]byte{{6}}}) // the node dialect carries the first argument
			if err := <-replies; err != nil {
				t.Fatal(err)
			}
		})
	}
}
