// Package wstest has the small HTTP and WebSocket client helpers of the
// protocol-suite tests (Engine.IO and Socket.IO).
package wstest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Do sends an HTTP request and returns the status and body; a transport
// error gives status 0 and the error text.
func Do(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Dialer is the WebSocket client of the tests: gorilla/websocket with a
// 10 s handshake timeout and no read limit.
var Dialer = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second}

// Conn is a test WebSocket connection.
type Conn struct {
	t testing.TB
	C *websocket.Conn
}

// Dial opens a WebSocket to url (ws://...), closed when the test ends.
func Dial(t testing.TB, url string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := Dialer.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{t, c}
}

// Send writes a text frame.
func (c *Conn) Send(s string) {
	c.t.Helper()
	if err := c.C.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// SendBinary writes a binary frame.
func (c *Conn) SendBinary(b []byte) {
	c.t.Helper()
	if err := c.C.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

// Read reads one message (5 s at most) and returns its type
// (websocket.TextMessage or websocket.BinaryMessage) and data.
func (c *Conn) Read() (int, string) {
	c.t.Helper()
	c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, p, err := c.C.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return typ, string(p)
}

// Expect reads one frame and checks its text.
func (c *Conn) Expect(want string) {
	c.t.Helper()
	if _, got := c.Read(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

// ExpectSkipping reads frames until one is not in skip (pings, say) and
// checks its text.
func (c *Conn) ExpectSkipping(want string, skip ...string) {
	c.t.Helper()
	for {
		_, got := c.Read()
		if slices.Contains(skip, got) {
			continue
		}
		if got != want {
			c.t.Fatalf("got %q, want %q", got, want)
		}
		return
	}
}

// WaitClose reads until the server closes the connection.
func (c *Conn) WaitClose(within time.Duration) {
	c.t.Helper()
	c.C.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.C.ReadMessage(); err != nil {
			if isTimeout(err) {
				c.t.Fatal("the server did not close the connection")
			}
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// CloseHandshake closes c as a well-behaved client does: a close frame
// (1000), then it reads until the server's close frame answers, within
// the given time, and closes the connection. It reports a connection
// that ended without the server's close frame.
func CloseHandshake(c *websocket.Conn, within time.Duration) error {
	defer c.Close()
	deadline := time.Now().Add(within)
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline); err != nil {
		return err
	}
	c.SetReadDeadline(deadline)
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure { // 1006: no close frame
			return nil
		}
		return fmt.Errorf("wstest: no close frame from the server: %w", err)
	}
}

// ClientFrame builds a WebSocket frame as a client sends it: b0 is the
// first byte (FIN, RSV bits and opcode, taken as they are, so tests can
// send what a client must not), the payload is masked with key, and the
// length uses the shortest form. It is written independently of
// internal/ws, so that tests of that package and of the servers on it do
// not check our parser with our own encoder.
func ClientFrame(b0 byte, payload []byte, key [4]byte) []byte {
	out := []byte{b0}
	n := len(payload)
	switch {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}
