package netpoll

// TestMain (goleak.VerifyTestMain) is in poll_test.go; a package can have
// only one. The tests here also check for leaks one by one (noLeaks), so
// a leak is reported against the test that caused it.

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const eventually = 5 * time.Second

// noLeaks fails the test if goroutines started during it are still
// running after all its other cleanups (registered later, so run before).
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func startPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !closeWithin(p, eventually) {
			t.Error("Poller.Close did not return")
		}
	})
	return p
}

// closeWithin closes p and reports whether Close returned in time.
func closeWithin(p *Poller, d time.Duration) bool {
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// loopback returns both ends of a TCP connection over 127.0.0.1.
func loopback(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// sink is a readable callback: it reads with Desc.Read until ErrWouldBlock,
// keeping the bytes, then re-arms. In blocking mode it reads once per call
// (the connection's goroutine calls again). On another error it stops.
type sink struct {
	mu      sync.Mutex
	data    []byte
	calls   int
	readErr error
	bufSize int
	// concurrent detects two callbacks of one Desc running at once.
	running, overlap int
}

func (s *sink) fn(d *Desc) {
	s.mu.Lock()
	s.calls++
	s.running++
	if s.running > 1 {
		s.overlap++
	}
	size := s.bufSize
	s.mu.Unlock()
	if size == 0 {
		size = 1500
	}
	buf := make([]byte, size)
	done := func() {
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}
	for {
		n, err := d.Read(buf)
		s.mu.Lock()
		s.data = append(s.data, buf[:max(n, 0)]...)
		s.mu.Unlock()
		switch {
		case errors.Is(err, ErrWouldBlock):
			done() // Rearm may start the next callback at once
			d.Rearm()
			return
		case err != nil:
			s.mu.Lock()
			if s.readErr == nil {
				s.readErr = err
			}
			s.mu.Unlock()
			done()
			return
		}
		if d.Blocking() {
			done()
			return
		}
	}
}

func (s *sink) snapshot() (data []byte, calls int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.data), s.calls, s.readErr
}

// waitLen waits until the sink holds n bytes.
func (s *sink) waitLen(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for {
		data, _, err := s.snapshot()
		if len(data) >= n {
			return data
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d bytes (read error %v)", len(data), n, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func TestNetpollTCPChunksArriveInOrder(t *testing.T) {
	noLeaks(t)
	p := startPoller(t)
	server, client := loopback(t)
	s := &sink{}
	d, err := p.Add(server, s.fn)
	if err != nil {
		t.Fatal(err)
	}
	if d.Conn() != net.Conn(server) {
		t.Fatal("Desc.Conn is not the added connection")
	}
	if runtime.GOOS == "linux" && d.Blocking() {
		t.Fatal("Blocking() is true for a *net.TCPConn on Linux")
	}

	// one chunk at a time: each needs a callback after the previous Rearm
	var want []byte
	for i, size := range []int{1, 5, 1499, 1500, 1501, 4096, 70000} {
		chunk := randomBytes(size)
		if _, err := client.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
		if got := s.waitLen(t, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("after chunk %d: %d bytes differ from what was sent", i, len(got))
		}
	}
	_, calls, _ := s.snapshot()
	if calls < 7 {
		t.Fatalf("%d callbacks for 7 chunks sent one after the other", calls)
	}

	// back to back, 2 MB in uneven chunks while the poller reads
	for sent := 0; sent < 2<<20; {
		chunk := randomBytes(1 + rand.IntN(100_000))
		if _, err := client.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
		sent += len(chunk)
	}
	if got := s.waitLen(t, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("%d bytes received, %d sent, or out of order", len(got), len(want))
	}
	s.mu.Lock()
	overlap := s.overlap
	s.mu.Unlock()
	if overlap != 0 {
		t.Fatalf("%d callbacks ran while another one of the same Desc was reading", overlap)
	}
	d.Remove()
}

func TestNetpollTCPEOFAfterData(t *testing.T) {
	noLeaks(t)
	p := startPoller(t)
	server, client := loopback(t)
	s := &sink{}
	d, err := p.Add(server, s.fn)
	if err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("last words"))
	client.Close()
	deadline := time.Now().Add(eventually)
	for {
		data, _, rerr := s.snapshot()
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) || string(data) != "last words" {
				t.Fatalf("read %q then %v, want \"last words\" then io.EOF", data, rerr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EOF (have %q)", data)
		}
		time.Sleep(2 * time.Millisecond)
	}
	d.Remove()
}

func TestNetpollTCPTryWrite(t *testing.T) {
	noLeaks(t)
	if runtime.GOOS != "linux" {
		t.Skip("poller mode is Linux only")
	}
	p := startPoller(t)
	server, client := loopback(t)
	d, err := p.Add(server, (&sink{}).fn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	n, err := d.TryWrite([][]byte{[]byte("hello"), nil, []byte(", "), []byte("world")})
	if err != nil || n != 12 {
		t.Fatalf("TryWrite: %d %v", n, err)
	}
	client.SetReadDeadline(time.Now().Add(eventually))
	got := make([]byte, 12)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "hello, world" {
		t.Fatalf("client read %q, %v", got, err)
	}

	// with the client not reading, TryWrite fills the socket buffers and
	// then reports ErrWouldBlock instead of blocking
	stream := randomBytes(1 << 20)
	var sent []byte
	sawWouldBlock := false
	for i := 0; i < 512 && !sawWouldBlock; i++ {
		off := len(sent) % len(stream)
		bufs := [][]byte{stream[off:], stream[:off]}
		n, err := d.TryWrite(bufs)
		switch {
		case errors.Is(err, ErrWouldBlock):
			if n != 0 {
				t.Fatalf("ErrWouldBlock with %d bytes written", n)
			}
			sawWouldBlock = true
		case err != nil:
			t.Fatal(err)
		case n <= 0 || n > len(stream):
			t.Fatalf("TryWrite wrote %d of %d", n, len(stream))
		default:
			for i := range n {
				sent = append(sent, stream[(off+i)%len(stream)])
			}
		}
	}
	if !sawWouldBlock {
		t.Fatalf("512 MB written without ErrWouldBlock")
	}
	// everything TryWrite reported arrives, in order
	got = make([]byte, len(sent))
	client.SetReadDeadline(time.Now().Add(eventually))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("client read %d of %d bytes (%v), equal %v", len(got), len(sent), err, bytes.Equal(got, sent))
	}
}

func TestNetpollNoCallbackAfterRemove(t *testing.T) {
	noLeaks(t)
	p := startPoller(t)
	server, client := loopback(t)
	s := &sink{}
	d, err := p.Add(server, s.fn)
	if err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("before"))
	s.waitLen(t, len("before"))
	// the callback re-arms after reading; give it the time to do so
	time.Sleep(50 * time.Millisecond)
	d.Remove()
	if !d.Removed() {
		t.Fatal("Removed() is false after Remove")
	}
	d.Remove() // twice is harmless
	_, before, _ := s.snapshot()
	client.Write([]byte("after remove"))
	time.Sleep(200 * time.Millisecond)
	data, after, _ := s.snapshot()
	if after != before {
		t.Fatalf("%d callbacks ran after Remove", after-before)
	}
	if string(data) != "before" {
		t.Fatalf("data %q", data)
	}
	// Rearm after Remove does not bring the callback back
	if err := d.Rearm(); err != nil {
		t.Fatalf("Rearm after Remove: %v", err)
	}
	client.Write([]byte("more"))
	time.Sleep(200 * time.Millisecond)
	if _, again, _ := s.snapshot(); again != before {
		t.Fatalf("%d callbacks after Remove and Rearm", again-before)
	}
	// the socket still holds what was sent after Remove
	server.SetReadDeadline(time.Now().Add(eventually))
	rest := make([]byte, len("after removemore"))
	if _, err := io.ReadFull(server, rest); err != nil || string(rest) != "after removemore" {
		t.Fatalf("server read %q %v", rest, err)
	}
}

func TestNetpollPipeBlockingMode(t *testing.T) {
	noLeaks(t)
	p := startPoller(t)
	beforeAdd := goleak.IgnoreCurrent() // includes the poller's goroutine
	server, client := net.Pipe()        // not a syscall.Conn
	defer client.Close()
	s := &sink{bufSize: 4}
	d, err := p.Add(server, s.fn)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Blocking() {
		t.Fatal("Blocking() is false for a net.Pipe conn")
	}
	// nobody reads the pipe: a TryWrite that wrote would block for ever
	tw := make(chan error, 1)
	go func() {
		n, err := d.TryWrite([][]byte{[]byte("x")})
		if err == nil || n != 0 {
			err = errors.Join(err, errors.New("wrote"))
		}
		tw <- err
	}()
	select {
	case err := <-tw:
		if !errors.Is(err, ErrWouldBlock) {
			t.Fatalf("TryWrite in blocking mode: %v, want ErrWouldBlock", err)
		}
	case <-time.After(eventually):
		t.Fatal("TryWrite blocked in blocking mode")
	}
	if err := d.Rearm(); err != nil {
		t.Fatalf("Rearm in blocking mode: %v", err)
	}
	msg := []byte("through the pipe, four bytes at a time")
	wrote := make(chan error, 1)
	go func() {
		_, err := client.Write(msg)
		wrote <- err
	}()
	if got := s.waitLen(t, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("got %q", got)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	// the connection's goroutine is still waiting in Read: Remove, then
	// close to unblock it, and it must end (without the poller closing)
	d.Remove()
	server.Close()
	if err := goleak.Find(beforeAdd); err != nil {
		t.Fatalf("the connection's goroutine did not end after Remove and Close: %v", err)
	}
	_, calls, rerr := s.snapshot()
	if rerr == nil {
		t.Fatal("the callback did not see the closed pipe")
	}
	time.Sleep(50 * time.Millisecond)
	if _, again, _ := s.snapshot(); again != calls {
		t.Fatalf("%d callbacks after Remove", again-calls)
	}
}

func TestNetpollCloseWaitsForRunningCallback(t *testing.T) {
	noLeaks(t)
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	server, client := loopback(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var once, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { unblock(); closeWithin(p, eventually) })
	_, err = p.Add(server, func(d *Desc) {
		buf := make([]byte, 64)
		d.Read(buf)
		once.Do(func() { close(started) })
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("x"))
	select {
	case <-started:
	case <-time.After(eventually):
		t.Fatal("no callback")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		unblock()
		t.Fatalf("Close returned (%v) while a callback was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	unblock()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(eventually):
		t.Fatal("Close did not return after the callback did")
	}
}

func TestNetpollCloseThenAdd(t *testing.T) {
	noLeaks(t)
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	server, client := loopback(t)
	s := &sink{}
	if _, err := p.Add(server, s.fn); err != nil { // still watched at Close
		t.Fatal(err)
	}
	client.Write([]byte("abc"))
	s.waitLen(t, 3)
	if !closeWithin(p, eventually) {
		t.Fatal("Close did not return with a TCP connection still watched")
	}
	if !closeWithin(p, eventually) {
		t.Fatal("a second Close did not return")
	}
	server2, _ := loopback(t)
	if d, err := p.Add(server2, s.fn); !errors.Is(err, ErrClosed) || d != nil {
		t.Fatalf("Add TCP after Close: %v, %v; want nil, ErrClosed", d, err)
	}
	pa, pb := net.Pipe()
	defer pa.Close()
	defer pb.Close()
	if d, err := p.Add(pa, s.fn); !errors.Is(err, ErrClosed) || d != nil {
		t.Fatalf("Add pipe after Close: %v, %v; want nil, ErrClosed", d, err)
	}
	// the poller no longer calls back
	_, calls, _ := s.snapshot()
	client.Write([]byte("def"))
	time.Sleep(200 * time.Millisecond)
	if _, again, _ := s.snapshot(); again != calls {
		t.Fatalf("%d callbacks after Close", again-calls)
	}
}
