// Package wstest has the small HTTP and WebSocket client helpers of the
// protocol-suite tests (Engine.IO and Socket.IO).
package wstest

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &Conn{t, c}
}

// Send writes a text frame.
func (c *Conn) Send(s string) {
	c.t.Helper()
	if err := c.C.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// SendBinary writes a binary frame.
func (c *Conn) SendBinary(b []byte) {
	c.t.Helper()
	if err := c.C.Write(context.Background(), websocket.MessageBinary, b); err != nil {
		c.t.Fatal(err)
	}
}

// Read reads one frame (5 s at most).
func (c *Conn) Read() (websocket.MessageType, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, p, err := c.C.Read(ctx)
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
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if _, _, err := c.C.Read(ctx); err != nil {
			if ctx.Err() != nil {
				c.t.Fatal("the server did not close the connection")
			}
			return
		}
	}
}
