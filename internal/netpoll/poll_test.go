package netpoll

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newPoller returns a poller closed at the end of the test.
func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// collector is a callback that reads what is available and re-arms.
type collector struct {
	mu    sync.Mutex
	data  bytes.Buffer
	calls atomic.Int64
	eof   chan struct{}
	once  sync.Once
}

func newCollector() *collector { return &collector{eof: make(chan struct{})} }

func (c *collector) fn(d *Desc) {
	c.calls.Add(1)
	buf := make([]byte, 7) // small: several reads per write
	for {
		n, err := d.Read(buf)
		if errors.Is(err, ErrWouldBlock) {
			d.Rearm()
			return
		}
		if err != nil {
			c.once.Do(func() { close(c.eof) })
			d.Remove()
			return
		}
		c.mu.Lock()
		c.data.Write(buf[:n])
		c.mu.Unlock()
		if d.Blocking() {
			return // the connection's goroutine calls again
		}
	}
}

func (c *collector) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := c.data.String()
		c.mu.Unlock()
		if got == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("got %q, want %q", c.data.String(), want)
}

func TestPollerTCP(t *testing.T) {
	p := newPoller(t)
	server, client := tcpPair(t)
	col := newCollector()
	d, err := p.Add(server, col.fn)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && d.Blocking() {
		t.Fatal("a TCP connection fell back to a goroutine on Linux")
	}
	want := ""
	for _, chunk := range []string{"hello", ", ", "poller", "; ", string(bytes.Repeat([]byte("z"), 100000))} {
		client.Write([]byte(chunk))
		want += chunk
		col.waitFor(t, want)
	}
	// TryWrite sends without blocking
	n, err := d.TryWrite([][]byte{[]byte("ab"), []byte("cd")})
	if runtime.GOOS == "linux" && (n != 4 || err != nil) {
		t.Fatalf("TryWrite: %d %v", n, err)
	}
	if n == 4 {
		got := make([]byte, 4)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, got); err != nil || string(got) != "abcd" {
			t.Fatalf("client read %q %v", got, err)
		}
	}
	// after Remove, no callback runs any more
	d.Remove()
	time.Sleep(50 * time.Millisecond)
	before := col.calls.Load()
	client.Write([]byte("ignored"))
	time.Sleep(200 * time.Millisecond)
	if after := col.calls.Load(); after != before {
		t.Fatalf("%d callbacks after Remove", after-before)
	}
}

func TestPollerEOF(t *testing.T) {
	p := newPoller(t)
	server, client := tcpPair(t)
	col := newCollector()
	if _, err := p.Add(server, col.fn); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("last words"))
	client.Close()
	select {
	case <-col.eof:
	case <-time.After(5 * time.Second):
		t.Fatal("no EOF")
	}
	col.waitFor(t, "last words")
}

func TestPollerBlockingFallback(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe() // not a syscall.Conn
	col := newCollector()
	d, err := p.Add(server, col.fn)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Blocking() {
		t.Fatal("net.Pipe is not pollable, want blocking mode")
	}
	if _, err := d.TryWrite([][]byte{[]byte("x")}); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TryWrite in blocking mode: %v", err)
	}
	go client.Write([]byte("through the pipe"))
	col.waitFor(t, "through the pipe")
	d.Remove()
	server.Close() // unblocks the goroutine's Read; it sees Remove and ends
	client.Close()
	if err := p.Close(); err != nil { // waits for that goroutine
		t.Fatal(err)
	}
	if _, err := p.Add(server, col.fn); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
}

func TestManyConnections(t *testing.T) {
	p := newPoller(t)
	const n = 200
	cols := make([]*collector, n)
	clients := make([]net.Conn, n)
	for i := range n {
		server, client := tcpPair(t)
		cols[i], clients[i] = newCollector(), client
		if _, err := p.Add(server, cols[i].fn); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		for i := range n {
			clients[i].Write([]byte{byte('a' + round)})
		}
	}
	for i := range n {
		cols[i].waitFor(t, "abc")
	}
}
