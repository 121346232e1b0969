package wstest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeTB records a Fatal and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }

// run calls f with a fakeTB in its own goroutine and returns what failed.
func run(f func(tb *fakeTB)) string {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() { defer close(done); f(tb) }()
	<-done
	return tb.failed
}

// server upgrades every request and runs h on the connection; the
// connections are closed and their handlers waited for when the test ends.
func server(t *testing.T, h func(c *websocket.Conn)) string {
	up := websocket.Upgrader{}
	var (
		mu     sync.Mutex
		conns  []*websocket.Conn
		closed bool
		wg     sync.WaitGroup
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			c.Close()
			return
		}
		conns = append(conns, c)
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		h(c)
		c.Close()
	}))
	t.Cleanup(func() {
		hs.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func TestReadTypes(t *testing.T) {
	u := server(t, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, []byte("hi"))
		c.WriteMessage(websocket.BinaryMessage, []byte{1, 2})
		c.ReadMessage()
	})
	c := Dial(t, u)
	if typ, d := c.Read(); typ != websocket.TextMessage || d != "hi" {
		t.Fatalf("%d %q", typ, d)
	}
	if typ, d := c.Read(); typ != websocket.BinaryMessage || d != "\x01\x02" {
		t.Fatalf("%d %q", typ, d)
	}
}

// WaitClose fails when the server keeps the connection open and returns
// when it closes it.
func TestWaitClose(t *testing.T) {
	stop := make(chan struct{})
	u := server(t, func(c *websocket.Conn) {
		if _, m, _ := c.ReadMessage(); string(m) == "close" {
			return
		}
		<-stop
	})
	defer close(stop)
	open := Dial(t, u)
	open.Send("stay")
	if got := run(func(tb *fakeTB) { (&Conn{tb, open.C}).WaitClose(200 * time.Millisecond) }); got != "the server did not close the connection" {
		t.Fatalf("an open connection: %q", got)
	}
	closing := Dial(t, u)
	closing.Send("close")
	if got := run(func(tb *fakeTB) { (&Conn{tb, closing.C}).WaitClose(5 * time.Second) }); got != "" {
		t.Fatalf("a closed connection: %q", got)
	}
}

// CloseHandshake succeeds with a server that answers the close frame and
// reports one that drops the connection instead.
func TestCloseHandshake(t *testing.T) {
	polite := server(t, func(c *websocket.Conn) {
		for {
			if _, _, err := c.ReadMessage(); err != nil { // the default close handler answers
				return
			}
		}
	})
	c, _, err := Dialer.Dial(polite, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CloseHandshake(c, 5*time.Second); err != nil {
		t.Fatalf("polite server: %v", err)
	}
	rude := server(t, func(c *websocket.Conn) {
		c.SetCloseHandler(func(int, string) error { return nil }) // no answer
		c.ReadMessage()
		c.UnderlyingConn().Close()
	})
	c, _, err = Dialer.Dial(rude, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CloseHandshake(c, 5*time.Second); err == nil {
		t.Fatal("a connection dropped without a close frame: no error")
	}
}
