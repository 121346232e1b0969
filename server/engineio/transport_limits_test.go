package engineio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/ws"
)

// carried returns the bytes of incomplete frames the server's WebSockets
// hold, and their buffers' capacity.
func carried(s *Server) (n, capacity int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sessions {
		c.mu.Lock()
		w := c.ws
		c.mu.Unlock()
		if w == nil {
			continue
		}
		w.rmu.Lock()
		n += len(w.in)
		capacity += cap(w.in)
		w.rmu.Unlock()
	}
	return n, capacity
}

// waitFor polls cond until it holds (or fails the test after 10 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// TestHugeAnnouncedFrameAllocatesWhatArrives: 15 bytes announcing a 2^40
// byte frame, with no payload limit, must not make the server allocate
// for the announced length (it did, and died "out of memory"). The
// server runs in a child process so that the old behaviour fails the
// test instead of killing the test binary.
func TestHugeAnnouncedFrameAllocatesWhatArrives(t *testing.T) {
	if os.Getenv("SIOBRIDGE_HUGE_FRAME_CHILD") != "" {
		hugeAnnouncedFrame(t)
		return
	}
	child := exec.Command(os.Args[0], "-test.run=^TestHugeAnnouncedFrameAllocatesWhatArrives$", "-test.v")
	child.Env = append(os.Environ(), "SIOBRIDGE_HUGE_FRAME_CHILD=1")
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("server process failed: %v\n%s", err, tail(out, 2000))
	}
	t.Logf("%s", tail(out, 500))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func hugeAnnouncedFrame(t *testing.T) {
	base, s := serverWith(t, Options{PingInterval: time.Minute, MaxPayload: math.MaxInt}, func(c *Conn) {
		c.OnMessage(func([]byte, bool) {})
	})
	c := dialRaw(t, base, "EIO=4&transport=websocket")
	c.read() // open
	runtime.GC()
	before := totalAlloc()
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 'x'}
	binary.BigEndian.PutUint64(hdr[2:], 1<<40)
	if _, err := c.conn.Write(hdr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to read the frame's start", func() bool { n, _ := carried(s); return n == len(hdr) })
	grown := totalAlloc() - before
	_, capacity := carried(s)
	t.Logf("15 bytes announcing 2^40: server allocated %d bytes, carry buffer %d bytes", grown, capacity)
	// what it holds follows what it received (a size class above 15 bytes)
	if grown > 1<<20 || capacity > 64 {
		t.Fatalf("15 bytes announcing 2^40 made the server allocate %d bytes (carry buffer %d)", grown, capacity)
	}
}

// TestTrickledFrameCostsLinearMemory: a 1 MiB frame written 100 bytes at a
// time used to be re-buffered and copied on every read (gigabytes
// allocated); the bytes allocated must stay a small multiple of the frame.
func TestTrickledFrameCostsLinearMemory(t *testing.T) {
	const size = 1 << 20
	got := make(chan int, 1)
	base, s := serverWith(t, Options{PingInterval: time.Minute, MaxPayload: 2 * size}, func(c *Conn) {
		c.OnMessage(func(d []byte, _ bool) { got <- len(d) })
	})
	c := dialRaw(t, base, "EIO=4&transport=websocket")
	c.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	c.read() // open
	frame := ws.AppendClientFrame(nil, 0x81, []byte("4"+strings.Repeat("x", size-1)), [4]byte{9, 8, 7, 6})
	runtime.GC()
	before := totalAlloc()
	// every 32 pieces the server reads what was written before the next
	// is written, so it sees at least one read per 3,200 bytes whatever
	// the scheduling (and usually one per piece)
	for i, off := 0, 0; off < len(frame); i, off = i+1, off+100 {
		end := min(off+100, len(frame))
		if _, err := c.conn.Write(frame[off:end]); err != nil {
			t.Fatal(err)
		}
		if end == len(frame) || i%32 != 31 {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for n, _ := carried(s); n != end; n, _ = carried(s) {
			if time.Now().After(deadline) {
				t.Fatalf("the server holds %d bytes, want %d", n, end)
			}
			runtime.Gosched()
		}
	}
	select {
	case n := <-got:
		if n != size-1 {
			t.Fatalf("message of %d bytes, want %d", n, size-1)
		}
	case <-time.After(time.Minute):
		t.Fatal("the trickled message never arrived")
	}
	grown := totalAlloc() - before
	t.Logf("1 MiB frame in 100-byte writes: %d KiB allocated", grown>>10)
	if grown > 8*size {
		t.Fatalf("a 1 MiB frame in 100-byte writes allocated %d MiB (limit 8 MiB)", grown>>20)
	}
}

// closeReasons records the reason each session closed with.
func closeReasons() (func(*Conn), chan string) {
	ch := make(chan string, 16)
	return func(c *Conn) {
		c.OnMessage(func([]byte, bool) {})
		c.OnClose(func(r string) { ch <- r })
	}, ch
}

func expectReason(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case r := <-ch:
		if r != want {
			t.Fatalf("session closed with %q, want %q", r, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the session was not closed (want %q)", want)
	}
}

// TestPollingPongsAreBoundedInBytes: pings POSTed by a client that never
// GETs queued their pongs without limit (ten POSTs: 13 -> 731 MB). Pongs
// count against SendQueueBytes (and SendQueueSize) like any packet.
func TestPollingPongsAreBoundedInBytes(t *testing.T) {
	onConn, reasons := closeReasons()
	base, _ := serverWith(t, Options{PingInterval: time.Minute, SendQueueBytes: 1 << 20}, onConn)
	t.Run("large pings", func(t *testing.T) {
		sid := openPolling(t, base)
		ping := "2" + strings.Repeat("p", 100<<10)
		body := strings.Repeat(ping+"\x1e", 8) + ping // 9 pings of 100 KiB
		posts := 0
		for ; posts < 10; posts++ {
			if code, _ := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, body); code != 200 {
				break
			}
		}
		expectReason(t, reasons, "send queue full")
		t.Logf("closed after %d POSTs of 900 KiB of pings", posts)
	})
	t.Run("many small pings", func(t *testing.T) {
		sid := openPolling(t, base)
		body := strings.Repeat("2\x1e", 300_000) + "2"
		do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, body)
		expectReason(t, reasons, "send queue full")
	})
}

// TestWebSocketPongsAreBoundedInBytes: a WebSocket client that sends
// large Engine.IO pings and never reads was queued a pong for each, the
// queue bounded only by its frame count (300 x 1 MB pings: 453 MB).
func TestWebSocketPongsAreBoundedInBytes(t *testing.T) {
	// 32 MiB of pings: far more than the socket buffers on both sides hold
	ping := ws.AppendClientFrame(nil, 0x81, []byte("2"+strings.Repeat("p", 256<<10)), [4]byte{1, 2, 3, 4})
	floodUnread(t, Options{PingInterval: time.Minute, SendQueueBytes: 1 << 20}, ping, 128)
}

// TestWebSocketPingFramesAreBounded: the answers to WebSocket ping frames
// (opcode 9) of a client that never reads were dropped silently once its
// queue was full, the client kept. They count like any frame: the client
// is disconnected.
func TestWebSocketPingFramesAreBounded(t *testing.T) {
	ping := ws.AppendClientFrame(nil, 0x89, []byte(strings.Repeat("p", 125)), [4]byte{1, 2, 3, 4})
	floodUnread(t, Options{PingInterval: time.Minute}, bytes.Repeat(ping, 1000), 200) // 26 MB of pings
}

// floodUnread writes chunk n times from a WebSocket client that reads
// nothing, then a message: the server must have disconnected the client
// ("send queue full") rather than delivered the message.
func floodUnread(t *testing.T, o Options, chunk []byte, n int) {
	t.Helper()
	delivered := make(chan struct{}, 1)
	reasons := make(chan string, 1)
	base, _ := serverWith(t, o, func(c *Conn) {
		c.OnMessage(func([]byte, bool) { delivered <- struct{}{} })
		c.OnClose(func(r string) { reasons <- r })
	})
	c := dialRaw(t, base, "EIO=4&transport=websocket")
	c.conn.SetDeadline(time.Now().Add(time.Minute))
	c.read() // open
	for range n {
		if _, err := c.conn.Write(chunk); err != nil {
			break // the server cut us off
		}
	}
	c.conn.Write(ws.AppendClientFrame(nil, 0x81, []byte("4done"), [4]byte{1, 2, 3, 4}))
	select {
	case r := <-reasons:
		if r != "send queue full" {
			t.Fatalf("session closed with %q, want %q", r, "send queue full")
		}
	case <-delivered:
		t.Fatal("every ping was answered into the queue of a client that does not read")
	case <-time.After(30 * time.Second):
		t.Fatal("neither closed nor delivered")
	}
}

// TestSendQueueBytesDefault: the documented default.
func TestSendQueueBytesDefault(t *testing.T) {
	for _, tc := range []struct{ maxPayload, want int }{
		{0, DefaultSendQueueBytes},
		{3 << 20, 6 << 20},
		{math.MaxInt, math.MaxInt - 1},
	} {
		if got := NewServer(Options{MaxPayload: tc.maxPayload}).o.SendQueueBytes; got != tc.want {
			t.Errorf("MaxPayload %d: SendQueueBytes %d, want %d", tc.maxPayload, got, tc.want)
		}
	}
}

// TestStalledClientIsReset: a WebSocket client that never reads is given
// up when its queue fills. It used to be closed with a FIN queued behind
// what the kernel still held for it (the socket lingered in FIN-WAIT-1
// with its send buffer, and the client went on reading old messages); it
// must be cut off with a reset, which the client sees as ECONNRESET.
func TestStalledClientIsReset(t *testing.T) {
	sessions := make(chan *Conn, 1)
	reasons := make(chan string, 1)
	base, _ := serverWith(t, Options{PingInterval: time.Minute, SendQueueBytes: 1 << 20}, func(c *Conn) {
		c.OnClose(func(r string) { reasons <- r })
		sessions <- c
	})
	c := dialRaw(t, base, "EIO=4&transport=websocket")
	c.conn.SetDeadline(time.Now().Add(time.Minute))
	conn := <-sessions
	msg := []byte(strings.Repeat("m", 64<<10))
	sent := 0
	conn.mu.Lock()
	w := conn.ws
	conn.mu.Unlock()
	for ; sent < 10_000 && conn.Send(msg, false) == nil; sent++ {
		// let the server write what the socket buffers take, so that the
		// queue fills only once they are full
		for deadline := time.Now().Add(100 * time.Millisecond); w.queued() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	expectReason(t, reasons, "send queue full")
	// the client drains what reached it, then sees how the connection ended
	buf := make([]byte, 256<<10)
	read := 0
	var err error
	for err == nil {
		var n int
		n, err = c.br.Read(buf)
		read += n
	}
	t.Logf("%d messages sent before the queue filled; the client then read %d KiB, and %v", sent, read>>10, err)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stalled client's connection ended with %v, want a reset (ECONNRESET)", err)
	}
}

// TestPollingPayloadCostsItsSize: a POST of many tiny packets used to be
// split into a string, a slice of strings and a slice of messages: about
// 41 bytes allocated per byte received (48 under -race). Its cost must
// stay a small multiple of its size (measured: 2 per byte for noops, 6 for
// empty messages, twice that under -race).
func TestPollingPayloadCostsItsSize(t *testing.T) {
	var delivered atomic.Int64
	base, _ := serverWith(t, Options{PingInterval: time.Minute}, func(c *Conn) {
		c.OnMessage(func([]byte, bool) { delivered.Add(1) })
	})
	for _, tc := range []struct {
		name, packet string
		messages     int64
	}{
		{"noops", "6", 0},
		{"empty messages", "4", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delivered.Store(0)
			sid := openPolling(t, base)
			n := 999_999 / (len(tc.packet) + 1)
			body := strings.Repeat(tc.packet+"\x1e", n) + tc.packet
			runtime.GC()
			before := totalAlloc()
			if code, _ := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, body); code != 200 {
				t.Fatalf("POST: %d", code)
			}
			grown := totalAlloc() - before
			t.Logf("%d packets in %d bytes: %d KiB allocated", n+1, len(body), grown>>10)
			if got := delivered.Load(); got != tc.messages*int64(n+1) {
				t.Fatalf("%d messages delivered, want %d", got, tc.messages*int64(n+1))
			}
			if grown > 16*uint64(len(body)) {
				t.Fatalf("a %d-byte POST allocated %d bytes (over 16 per byte)", len(body), grown)
			}
		})
	}
}

// TestFramesSplitAnywhere: messages of every size written in pieces cut at
// random places (headers included) arrive whole and in order.
func TestFramesSplitAnywhere(t *testing.T) {
	got := make(chan []byte, 300)
	base, _ := serverWith(t, Options{PingInterval: time.Minute}, func(c *Conn) {
		c.OnMessage(func(d []byte, _ bool) { got <- d })
	})
	c := dialRaw(t, base, "EIO=4&transport=websocket")
	c.read() // open
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var want [][]byte
	for i := range 300 {
		size := rng.IntN(1 << (4 + i%14)) // up to 128 KiB
		p := make([]byte, size)
		for j := range p {
			p[j] = 'a' + byte(rng.IntN(26))
		}
		want = append(want, p)
		stream = ws.AppendClientFrame(stream, 0x81, append([]byte{'4'}, p...), [4]byte{byte(i), 2, 3, 4})
	}
	go func() {
		for len(stream) > 0 {
			n := min(len(stream), 1+rng.IntN(3000))
			if _, err := c.conn.Write(stream[:n]); err != nil {
				return
			}
			stream = stream[n:]
		}
	}()
	for i, w := range want {
		select {
		case d := <-got:
			if !bytes.Equal(d, w) {
				t.Fatalf("message %d: %d bytes, want %d", i, len(d), len(w))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d of %d never arrived", i, len(want))
		}
	}
}
