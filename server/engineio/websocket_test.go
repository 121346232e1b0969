package engineio

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siobridge/siobridge/internal/ws"
	"github.com/siobridge/siobridge/internal/wstest"
)

// rawWS is a minimal WebSocket client over TCP that can send what a real
// client never would.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, base, query string) *rawWS {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", query, host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return &rawWS{t: t, conn: conn, br: br}
}

// frame writes one frame; masked=false breaks RFC 6455 on purpose.
func (c *rawWS) frame(b0 byte, payload []byte, masked bool) {
	f := ws.AppendClientFrame(nil, b0, payload, [4]byte{1, 2, 3, 4})
	if !masked { // the same frame as a server would send it
		f = append(ws.AppendHeader(nil, b0&0x80 != 0, b0&0x40 != 0, b0&0x0f, len(payload)), payload...)
	}
	if _, err := c.conn.Write(f); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawWS) text(s string) { c.frame(0x81, []byte(s), true) }

// read returns the next frame's opcode and payload.
func (c *rawWS) read() (byte, []byte) {
	c.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		io.ReadFull(c.br, l[:])
		n = int(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		io.ReadFull(c.br, l[:])
		n = int(binary.BigEndian.Uint64(l[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, p
}

// expectClose reads until a close frame and returns its status code.
func (c *rawWS) expectClose() int {
	c.t.Helper()
	for {
		op, p := c.read()
		if op == 0x8 {
			if len(p) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
}

// closedSessions records the close reason of every session.
type closedSessions struct {
	mu      sync.Mutex
	reasons []string
	ch      chan string
}

func newClosedSessions() *closedSessions { return &closedSessions{ch: make(chan string, 16)} }

func (r *closedSessions) onConn(c *Conn) {
	c.OnMessage(func(d []byte, b bool) { c.Send(append([]byte(nil), d...), b) })
	c.OnClose(func(reason string) { r.ch <- reason })
}

func (r *closedSessions) next(t *testing.T) string {
	t.Helper()
	select {
	case reason := <-r.ch:
		return reason
	case <-time.After(5 * time.Second):
		t.Fatal("no session closed")
		return ""
	}
}

func TestWebSocketProtocolErrorsCloseThatClientOnly(t *testing.T) {
	closed := newClosedSessions()
	base, s := serverWith(t, Options{PingInterval: time.Minute, MaxPayload: 1000}, closed.onConn)
	bystander := dialRaw(t, base, "EIO=4&transport=websocket")
	bystander.read() // open
	cases := []struct {
		name   string
		send   func(c *rawWS)
		code   int
		reason string
	}{
		{"unmasked frame", func(c *rawWS) { c.frame(0x81, []byte("4hi"), false) }, 1002, "parse error"},
		{"reserved bit", func(c *rawWS) { c.frame(0xa1, []byte("4hi"), true) }, 1002, "parse error"},
		{"unknown opcode", func(c *rawWS) { c.frame(0x83, []byte("4hi"), true) }, 1002, "parse error"},
		{"invalid UTF-8", func(c *rawWS) { c.frame(0x81, []byte{'4', 0xff, 0xfe}, true) }, 1007, "parse error"},
		{"over maxPayload", func(c *rawWS) { c.text("4" + strings.Repeat("x", 2000)) }, 1009, "transport error"},
		{"continuation first", func(c *rawWS) { c.frame(0x80, []byte("x"), true) }, 1002, "parse error"},
		{"bad Engine.IO packet", func(c *rawWS) { c.text("9") }, 1000, "parse error"},
		{"client close", func(c *rawWS) { c.frame(0x88, []byte{0x03, 0xe8}, true) }, 1000, "transport close"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, base, "EIO=4&transport=websocket")
			c.read() // open
			tc.send(c)
			if code := c.expectClose(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			if reason := closed.next(t); reason != tc.reason {
				t.Fatalf("session closed with %q, want %q", reason, tc.reason)
			}
		})
	}
	// the bystander still works
	bystander.text("4still here")
	if op, p := bystander.read(); op != 1 || string(p) != "4still here" {
		t.Fatalf("bystander got %d %q", op, p)
	}
	if n := s.Count(); n != 1 {
		t.Fatalf("%d sessions open, want the bystander only", n)
	}
}

func TestWebSocketFragmentsPingsAndPipelinedFrames(t *testing.T) {
	closed := newClosedSessions()
	base, _ := serverWith(t, Options{PingInterval: time.Minute}, closed.onConn)
	c := dialRaw(t, base, "EIO=4&transport=websocket")
	c.read() // open
	// a message in three fragments with a ping in the middle
	c.frame(0x01, []byte("4hel"), true)
	c.frame(0x89, []byte("are you there"), true)
	c.frame(0x00, []byte("lo wor"), true)
	c.frame(0x80, []byte("ld"), true)
	if op, p := c.read(); op != 0xA || string(p) != "are you there" {
		t.Fatalf("want the pong first, got %d %q", op, p)
	}
	if op, p := c.read(); op != 1 || string(p) != "4hello world" {
		t.Fatalf("echo %d %q", op, p)
	}
	// a binary message, then two messages in one write
	c.frame(0x82, []byte{1, 2, 3}, true)
	if op, p := c.read(); op != 2 || string(p) != "\x01\x02\x03" {
		t.Fatalf("binary echo %d %v", op, p)
	}
	big := strings.Repeat("y", 70000) // over 65535 bytes: 64-bit lengths both ways
	c.text("4" + big)
	c.text("4after")
	if op, p := c.read(); op != 1 || string(p) != "4"+big {
		t.Fatalf("big echo %d (%d bytes)", op, len(p))
	}
	if _, p := c.read(); string(p) != "4after" {
		t.Fatalf("echo after big: %q", p)
	}
}

func TestWebSocketFrameSentWithTheHandshake(t *testing.T) {
	closed := newClosedSessions()
	base, _ := serverWith(t, Options{PingInterval: time.Minute}, closed.onConn)
	host := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// request and a first message in the same write
	req := fmt.Sprintf("GET /?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	frame := []byte{0x81, 0x80 | 6, 0, 0, 0, 0}
	frame = append(frame, "4early"...)
	conn.Write(append([]byte(req), frame...))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	c := &rawWS{t: t, conn: conn, br: br}
	if _, p := c.read(); p[0] != '0' {
		t.Fatalf("want the open packet first, got %q", p)
	}
	if _, p := c.read(); string(p) != "4early" {
		t.Fatalf("the pipelined message was lost: %q", p)
	}
}

// TLS connections cannot be read by the poller (the bytes on the socket are
// encrypted), so they take the goroutine-per-connection fallback: the same
// transport must work there.
func TestWebSocketOverTLS(t *testing.T) {
	s := NewServer(Options{PingInterval: time.Minute})
	s.OnConnection(func(c *Conn) {
		c.OnMessage(func(d []byte, b bool) { c.Send(append([]byte(nil), d...), b) })
	})
	hs := httptest.NewTLSServer(s)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig}
	c, _, err := dialer.DialContext(ctx, "wss"+strings.TrimPrefix(hs.URL, "https")+"/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	deadline, _ := ctx.Deadline()
	c.SetReadDeadline(deadline)
	if _, p, err := c.ReadMessage(); err != nil || p[0] != '0' {
		t.Fatalf("open: %q %v", p, err)
	}
	big := "4" + strings.Repeat("z", 300000)
	for i, msg := range []string{"4hello", big, "4bye"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.ReadMessage(); err != nil || string(p) != msg {
			t.Fatalf("echo %d: %d bytes, %v", i, len(p), err)
		}
	}
	if err := wstest.CloseHandshake(c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); s.Count() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session outlived its TLS connection")
		}
	}
}

// TestShutdownWithWebSocketsOverTLS: Shutdown while WebSocket clients are
// connected over TLS (whose frames, the close packet included, go out
// through a blocking writer) makes no data race: a blocking writer was
// added to the WaitGroup that Shutdown was already waiting on (the race
// detector reported it about once in eight runs of server.TestRunTLS).
func TestShutdownWithWebSocketsOverTLS(t *testing.T) {
	var readers sync.WaitGroup
	for round := range 10 {
		s := NewServer(Options{PingInterval: time.Minute})
		s.OnConnection(func(c *Conn) {})
		hs := httptest.NewTLSServer(s)
		dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig}
		for range 4 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, _, err := dialer.DialContext(ctx, "wss"+strings.TrimPrefix(hs.URL, "https")+"/?EIO=4&transport=websocket", nil)
			cancel()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, p, err := c.ReadMessage(); err != nil || p[0] != '0' {
				t.Fatalf("round %d: open: %q %v", round, p, err)
			}
			readers.Add(1)
			go func() { // reads until the server's close frame, which it answers
				defer readers.Done()
				defer c.Close()
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("round %d: Shutdown: %v", round, err)
		}
		cancel()
		readers.Wait()
		hs.Close()
	}
}
