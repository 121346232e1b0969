package engineio

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/siobridge/siobridge/internal/netpoll"
	"github.com/siobridge/siobridge/internal/ws"
)

// The WebSocket transport is event driven: an idle connection holds no
// goroutine and no buffer. Reads run when the poller reports the socket
// readable; writes are queued frames that a flush worker sends with one
// non-blocking writev per connection (several queued frames go out in one
// system call), falling back to a goroutine with blocking writes only while
// the client's socket buffer is full.

const (
	readChunk       = 16 << 10
	writeTimeout    = 10 * time.Second
	closeLinger     = 2 * time.Second
	upgradeTimeout  = 10 * time.Second
	maxIdleOutSlots = 16
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

// wsConn is one WebSocket connection.
type wsConn struct {
	s *Server
	d *netpoll.Desc

	// read side: only the goroutine holding rmu touches these
	rmu      sync.Mutex
	dec      ws.Decoder
	in       []byte // an incomplete frame carried to the next read
	onMsg    func(op byte, p []byte) bool
	draining bool // closing: read and discard until EOF
	ended    bool
	deflate  bool

	// write side
	wmu       sync.Mutex
	out       [][]byte // frames waiting to be written
	outBytes  int      // their cost against SendQueueBytes (written bytes excluded)
	head      int      // bytes of out[0] already written
	scheduled bool     // queued for a flush worker, or a blocking writer runs
	closing   bool     // the close frame is queued: nothing more is accepted
	finishing bool     // close the connection once out is written
	dead      bool     // the connection is closed
	timer     *time.Timer
	onEnd     func(reason string) // told once when the connection ends
	endTold   bool
	started   chan struct{} // upgrade probes only: closed when start is done
}

var errQueueFull = errors.New("engineio: send queue full")

// attach wraps an upgraded connection; onMsg gets every data message (a
// copy the callee may keep) and returns false to close the connection.
// Reading starts with start.
func (s *Server) attach(u *ws.Upgraded, onMsg func(op byte, p []byte) bool) *wsConn {
	w := &wsConn{s: s, onMsg: onMsg, in: u.Buffered, deflate: u.Deflate}
	w.dec.Limit = s.o.MaxPayload
	w.dec.Deflate = u.Deflate
	s.wsLive.Add(1)
	return w
}

// start processes the bytes that came with the handshake and hands the
// connection to the poller.
func (w *wsConn) start(conn net.Conn) error {
	if w.started != nil {
		defer close(w.started)
	}
	p, err := w.s.poller()
	if err == nil {
		w.rmu.Lock()
		if len(w.in) > 0 {
			data := w.in
			w.in = nil
			w.consume(data, false)
		}
		ended := w.ended
		w.rmu.Unlock()
		if ended {
			return nil
		}
		var d *netpoll.Desc
		d, err = p.Add(conn, w.onReadable)
		if err == nil {
			w.wmu.Lock()
			w.d = d
			dead := w.dead
			w.scheduleLocked()
			w.wmu.Unlock()
			if dead { // finished before it was registered
				d.Remove()
				conn.Close()
			}
			return nil
		}
	}
	conn.Close()
	w.finish()
	w.end("transport error")
	return err
}

// setOnEnd sets the function told (once) when the connection ends.
func (w *wsConn) setOnEnd(fn func(reason string)) {
	w.wmu.Lock()
	w.onEnd = fn
	w.wmu.Unlock()
}

// end tells the owner, once, that the connection ended.
func (w *wsConn) end(reason string) {
	w.wmu.Lock()
	fn, told := w.onEnd, w.endTold
	w.endTold = true
	w.wmu.Unlock()
	if !told && fn != nil {
		fn(reason)
	}
}

// onReadable reads what the socket has and handles the whole frames.
//
// A frame that arrives in pieces is carried in w.in, which holds what was
// received and grows with it (doubling, at most to the frame's size),
// never with the length the frame announces: an idle connection in the
// middle of a frame holds about what it sent. The decoder sees the frame
// again only when it may be complete (its size is reached, or its header
// was not whole yet), so a frame trickled in small pieces costs linear
// time and memory.
func (w *wsConn) onReadable(d *netpoll.Desc) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if w.ended {
		return
	}
	var (
		buf    []byte // what the read fills from off
		off    int
		pbuf   *[]byte
		need   int  // the carried frame's total size; 0 while its header is incomplete
		direct bool // reading into w.in's spare capacity
	)
	if len(w.in) > 0 {
		need = ws.FrameSize(w.in)
		direct = cap(w.in)-len(w.in) >= readChunk || (need > 0 && cap(w.in) >= need)
	}
	if direct {
		buf, off = w.in[:cap(w.in)], len(w.in)
	} else {
		pbuf = readBufs.Get().(*[]byte)
		buf = *pbuf
	}
	n, err := d.Read(buf[off:])
	if err != nil {
		if pbuf != nil {
			readBufs.Put(pbuf)
		}
		if errors.Is(err, netpoll.ErrWouldBlock) {
			d.Rearm()
			return
		}
		w.readFailed()
		return
	}
	if w.draining {
		w.in = nil
		if pbuf != nil {
			readBufs.Put(pbuf)
		}
		d.Rearm()
		return
	}
	data, owned := buf[:off+n], direct
	if !direct && len(w.in) > 0 {
		data, owned = appendCarry(w.in, data, need), true
	}
	if pbuf != nil && owned {
		readBufs.Put(pbuf)
		pbuf = nil
	}
	if owned && need > 0 && len(data) < need {
		w.in = data // still incomplete: nothing to decode yet
		d.Rearm()
		return
	}
	w.in = nil
	w.consume(data, owned)
	if pbuf != nil {
		readBufs.Put(pbuf)
	}
	if !w.ended {
		d.Rearm()
	}
}

// appendCarry appends p to in, an incomplete frame of need bytes in total
// (0 if unknown), doubling its capacity when it must grow but never
// beyond the frame's size.
func appendCarry(in, p []byte, need int) []byte {
	if cap(in)-len(in) < len(p) {
		c := max(2*cap(in), len(in)+len(p))
		if need >= len(in)+len(p) {
			c = min(c, need)
		}
		in = append(make([]byte, 0, c), in...)
	}
	return append(in, p...)
}

// pump reads and handles what the socket holds now, without waiting for
// the poller (which, if it fires meanwhile, finds nothing and re-arms).
func (w *wsConn) pump() {
	if w.started != nil {
		t := time.NewTimer(time.Second)
		select {
		case <-w.started:
		case <-t.C:
		}
		t.Stop()
	}
	w.wmu.Lock()
	d := w.d
	w.wmu.Unlock()
	if d != nil && !d.Blocking() {
		w.onReadable(d)
	}
}

// consume decodes data; an incomplete frame at its end is kept in w.in.
// owned says that data is w.in's own buffer (not a pooled one), which the
// incomplete frame may keep when it starts the buffer.
func (w *wsConn) consume(data []byte, owned bool) {
	used, err := w.dec.Decode(data, w)
	if err != nil {
		code := ws.StatusProtocolError
		var pe *ws.ProtocolError
		if errors.As(err, &pe) {
			code = pe.Code
		}
		w.protocolError(code)
		return
	}
	if w.ended || w.draining {
		return
	}
	rest := data[used:]
	switch {
	case len(rest) == 0:
	case owned && used == 0:
		w.in = rest // no frame completed: keep growing the same buffer
	default:
		w.in = bytes.Clone(rest) // what was received, no more
	}
}

// Message implements ws.Handler.
func (w *wsConn) Message(op byte, p []byte) error {
	if w.draining || w.ended {
		return nil
	}
	if !w.onMsg(op, bytes.Clone(p)) {
		w.draining = true
	}
	return nil
}

// Ping implements ws.Handler.
func (w *wsConn) Ping(p []byte) {
	if errors.Is(w.enqueue(ws.AppendFrame(nil, ws.OpPong, nil, p)), errQueueFull) {
		w.draining = true
		w.end("send queue full")
	}
}

// Close implements ws.Handler: the client closes.
func (w *wsConn) Close(code int) {
	if code == 1005 {
		code = ws.StatusNormal
	}
	w.draining = true
	w.closeWith(ws.AppendClose(nil, code), nil)
	w.end("transport close")
}

// protocolError answers a protocol violation with a close frame.
func (w *wsConn) protocolError(code int) {
	w.draining = true
	w.closeWith(ws.AppendClose(nil, code), nil)
	reason := "parse error"
	if code == ws.StatusTooBig {
		reason = "transport error"
	}
	w.end(reason)
}

// readFailed handles EOF or a read error.
func (w *wsConn) readFailed() {
	w.ended = true
	w.finish()
	w.end("transport close")
}

// ---------------------------------------------------------------- writing

// enqueue queues frames in order; it fails when the connection is closing
// or its queue is full (SendQueueSize frames, SendQueueBytes bytes; an
// empty queue takes any one batch that fits SendQueueSize).
func (w *wsConn) enqueue(frames ...[]byte) error { return w.add(true, frames...) }

// add queues frames, within the queue's bounds when bounded.
func (w *wsConn) add(bounded bool, frames ...[]byte) error {
	cost := 0
	for _, f := range frames {
		cost += queueCost(len(f))
	}
	w.wmu.Lock()
	if w.closing || w.dead {
		w.wmu.Unlock()
		return ErrClosed
	}
	if bounded && (len(w.out)+len(frames) > w.s.o.SendQueueSize ||
		len(w.out) > 0 && w.outBytes+cost > w.s.o.SendQueueBytes) {
		w.wmu.Unlock()
		return errQueueFull
	}
	w.out = append(w.out, frames...)
	w.outBytes += cost
	w.scheduleLocked()
	w.wmu.Unlock()
	return nil
}

func (w *wsConn) scheduleLocked() {
	if len(w.out) == 0 {
		return
	}
	if w.scheduled || w.dead || w.d == nil { // start schedules what was queued before it
		return
	}
	w.scheduled = true
	w.s.scheduleFlush(w)
}

// writeNow writes frame from this goroutine when nothing else is queued
// (so it is on the wire when writeNow returns), else queues it.
func (w *wsConn) writeNow(frame []byte) {
	w.wmu.Lock()
	if w.d != nil && len(w.out) == 0 && !w.scheduled && !w.closing && !w.dead {
		w.scheduled = true // keep the flush workers away meanwhile
		d := w.d
		w.wmu.Unlock()
		n, err := d.TryWrite([][]byte{frame})
		w.wmu.Lock()
		w.scheduled = false
		if err == nil && n == len(frame) {
			w.scheduleLocked() // anything queued meanwhile
			w.wmu.Unlock()
			return
		}
		if err != nil && !errors.Is(err, netpoll.ErrWouldBlock) {
			w.wmu.Unlock()
			w.writeFailed()
			return
		}
		// partly written: queue the rest in front of what came meanwhile
		w.out = append([][]byte{frame[n:]}, w.out...)
		w.outBytes += queueCost(len(frame) - n)
		w.scheduleLocked()
		w.wmu.Unlock()
		return
	}
	w.wmu.Unlock()
	w.enqueue(frame)
}

// queued returns the number of frames waiting.
func (w *wsConn) queued() int {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return len(w.out)
}

// closeWith queues last (may be nil) and a close frame, then closes the
// connection once they are written. When the connection has no poller
// registration yet it is closed right away after the write.
func (w *wsConn) closeWith(closeFrame []byte, last []byte) {
	w.wmu.Lock()
	if w.closing || w.dead {
		w.wmu.Unlock()
		return
	}
	if last != nil {
		w.out = append(w.out, last)
		w.outBytes += queueCost(len(last))
	}
	w.out = append(w.out, closeFrame)
	w.outBytes += queueCost(len(closeFrame))
	w.closing = true
	w.finishing = true
	w.timer = time.AfterFunc(closeLinger, w.lingerOver)
	w.scheduleLocked()
	w.wmu.Unlock()
}

// abort cuts off a client that does not keep up: nothing queued is
// written, and the connection is reset so that what the kernel still
// holds for it is dropped too.
func (w *wsConn) abort() {
	w.wmu.Lock()
	w.out, w.outBytes = nil, 0
	w.closing = true
	w.wmu.Unlock()
	w.reset()
}

// lingerOver ends a closing connection when closeLinger is over: gracefully
// if the close frame was written (the client just did not answer it), with
// a reset if the client did not even read that far.
func (w *wsConn) lingerOver() {
	w.wmu.Lock()
	stalled := len(w.out) > 0
	w.wmu.Unlock()
	if stalled {
		w.reset()
		return
	}
	w.finish()
}

// finish closes the connection (once) with an orderly shutdown.
func (w *wsConn) finish() { w.finishWith(false) }

// reset closes the connection (once) with a TCP reset (netpoll.Reset).
func (w *wsConn) reset() { w.finishWith(true) }

func (w *wsConn) finishWith(reset bool) {
	w.wmu.Lock()
	if w.dead {
		w.wmu.Unlock()
		return
	}
	w.dead = true
	w.closing = true
	w.out, w.outBytes = nil, 0
	d := w.d
	if w.timer != nil {
		w.timer.Stop()
	}
	w.wmu.Unlock()
	if d != nil {
		d.Remove()
		if reset {
			netpoll.Reset(d.Conn())
		} else {
			d.Conn().Close()
		}
	}
	w.s.wsLive.Done()
}

// dropWritten removes n written bytes from the front of the queue.
// Callers hold wmu.
func (w *wsConn) dropWritten(n int) {
	k := 0
	for k < len(w.out) && n > 0 {
		rest := len(w.out[k]) - w.head
		if n < rest {
			w.head += n
			w.outBytes -= n
			n = 0
			break
		}
		n -= rest
		w.outBytes -= queueCost(len(w.out[k]) - w.head)
		w.head = 0
		k++
	}
	if k > 0 {
		m := copy(w.out, w.out[k:])
		clear(w.out[m:])
		w.out = w.out[:m]
	}
	if len(w.out) == 0 && cap(w.out) > maxIdleOutSlots {
		w.out = nil
	}
}

// pending returns the queue as iovecs into scratch; callers hold wmu.
func (w *wsConn) pendingLocked(scratch [][]byte) [][]byte {
	scratch = append(scratch[:0], w.out...)
	if len(scratch) > 0 && w.head > 0 {
		scratch[0] = scratch[0][w.head:]
	}
	return scratch
}

// flush writes without blocking until the queue is empty or the socket is
// full; in the second case a blocking writer takes over. It runs in a
// flush worker; scratch is the worker's iovec buffer.
func (w *wsConn) flush(scratch [][]byte) [][]byte {
	for {
		w.wmu.Lock()
		if w.dead || w.d == nil {
			w.scheduled = false
			w.wmu.Unlock()
			return scratch
		}
		if len(w.out) == 0 {
			w.scheduled = false
			fin := w.finishing
			w.wmu.Unlock()
			if fin {
				w.shutdownWrite()
			}
			return scratch
		}
		scratch = w.pendingLocked(scratch)
		w.wmu.Unlock()
		n, err := w.d.TryWrite(scratch)
		clear(scratch)
		if err != nil && !errors.Is(err, netpoll.ErrWouldBlock) {
			w.writeFailed()
			return scratch
		}
		w.wmu.Lock()
		w.dropWritten(n)
		blocked := errors.Is(err, netpoll.ErrWouldBlock) && !w.dead
		if blocked {
			// added while the connection is live (dead is set before
			// wsLive.Done): Shutdown waits for wsLive, then for wg
			w.s.wg.Add(1)
		}
		w.wmu.Unlock()
		if blocked {
			go func() {
				defer w.s.wg.Done()
				w.blockingWrite()
			}()
			return scratch
		}
	}
}

// blockingWrite drains the queue with blocking writes, then returns the
// connection to the flush workers' care.
func (w *wsConn) blockingWrite() {
	var bufs net.Buffers
	for {
		w.wmu.Lock()
		if w.dead || len(w.out) == 0 {
			w.scheduled = false
			fin := w.finishing && !w.dead
			w.wmu.Unlock()
			if fin {
				w.shutdownWrite()
			}
			return
		}
		bufs = w.pendingLocked(bufs[:0])
		w.wmu.Unlock()
		conn := w.d.Conn()
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		total := 0
		for _, b := range bufs {
			total += len(b)
		}
		iov := bufs
		n, err := iov.WriteTo(conn)
		clear(bufs)
		if err != nil || int(n) < total {
			w.writeFailed()
			return
		}
		w.wmu.Lock()
		w.dropWritten(int(n))
		w.wmu.Unlock()
	}
}

// shutdownWrite runs when the close frame is out: half-close and wait
// (closeLinger at most) for the client to close its side, so that our last
// frames are not lost to a reset.
func (w *wsConn) shutdownWrite() {
	w.wmu.Lock()
	d := w.d
	w.wmu.Unlock()
	if d == nil {
		return
	}
	if cw, ok := d.Conn().(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return // the reader sees EOF, or the linger timer fires
	}
	w.finish()
}

// writeFailed ends a connection whose write failed or timed out: reset,
// as the client stopped reading (or is gone).
func (w *wsConn) writeFailed() {
	w.reset()
	w.end("transport error")
}

// ---------------------------------------------------------------- server side

// poller returns the server's poller, starting it and the flush workers on
// first use.
func (s *Server) poller() (*netpoll.Poller, error) {
	s.pollOnce.Do(func() {
		s.poll, s.pollErr = netpoll.New()
		if s.pollErr != nil {
			return
		}
		s.flushq = newFlushList()
		s.flushStop = make(chan struct{})
		for range flushWorkers() {
			s.flushWG.Add(1)
			go func() {
				defer s.flushWG.Done()
				var (
					scratch [][]byte
					batch   []*wsConn
				)
				for {
					batch = s.flushq.pop(batch[:0])
					if len(batch) == 0 {
						select {
						case <-s.flushq.signal:
							continue
						case <-s.flushStop:
							return
						}
					}
					for i, w := range batch {
						scratch = w.flush(scratch)
						batch[i] = nil
					}
				}
			}()
		}
	})
	return s.poll, s.pollErr
}

func (s *Server) scheduleFlush(w *wsConn) { s.flushq.push(w) }

// flushList is the connections with frames to write, each at most once
// (wsConn.scheduled). Pushing never blocks, so a broadcast queues its frame
// for every recipient at once; when the workers lag behind, each
// connection's frames pile up and leave in one writev: the busier the
// server, the larger its batches.
type flushList struct {
	mu     sync.Mutex
	items  []*wsConn
	head   int
	signal chan struct{} // wakes a waiting worker
}

func newFlushList() *flushList { return &flushList{signal: make(chan struct{}, 1)} }

func (l *flushList) push(w *wsConn) {
	l.mu.Lock()
	l.items = append(l.items, w)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// flushChunk is how many connections a worker takes at a time, so that
// every worker gets a share of a large broadcast.
const flushChunk = 64

// pop appends up to flushChunk connections to dst, waking another worker
// when more remain.
func (l *flushList) pop(dst []*wsConn) []*wsConn {
	l.mu.Lock()
	n := min(flushChunk, len(l.items)-l.head)
	dst = append(dst, l.items[l.head:l.head+n]...)
	clear(l.items[l.head : l.head+n])
	l.head += n
	more := l.head < len(l.items)
	if !more {
		l.items, l.head = l.items[:0], 0
		if cap(l.items) > 1<<16 {
			l.items = nil
		}
	}
	l.mu.Unlock()
	if more {
		select {
		case l.signal <- struct{}{}:
		default:
		}
	}
	return dst
}

// stopPoller stops the flush workers and the poller (Shutdown).
func (s *Server) stopPoller() {
	s.pollOnce.Do(func() {}) // no poller will start any more
	s.stopOnce.Do(func() {   // a second Shutdown finds them stopped
		if s.poll == nil {
			return
		}
		close(s.flushStop)
		s.flushWG.Wait()
		s.poll.Close()
	})
}

// flushWorkers is one flush worker per core.
func flushWorkers() int { return runtime.GOMAXPROCS(0) }

// frame returns the WebSocket frame of an Engine.IO message: the one
// prepared by PrepareBroadcast when there is one, else built now.
func (w *wsConn) frame(m Message) []byte {
	if m.frame != nil && !w.deflate {
		return m.frame
	}
	switch {
	case m.Binary:
		return w.build(ws.OpBinary, nil, m.Data)
	case m.control:
		return w.build(ws.OpText, nil, m.Data)
	default:
		return w.build(ws.OpText, msgPrefix, m.Data)
	}
}

var msgPrefix = []byte{'4'}

// build makes one frame, compressed when deflate was negotiated and the
// message reaches the compression threshold.
func (w *wsConn) build(op byte, prefix, payload []byte) []byte {
	t := w.s.o.CompressionThreshold
	if w.deflate && t >= 0 && len(prefix)+len(payload) >= t {
		z := ws.Deflate(nil, prefix, payload)
		f := ws.AppendHeader(make([]byte, 0, 10+len(z)), true, true, op, len(z))
		return append(f, z...)
	}
	return ws.AppendFrame(make([]byte, 0, 10+len(prefix)+len(payload)), op, prefix, payload)
}

// PrepareBroadcast builds the WebSocket frame of each message once, so that
// sending msgs to many sessions shares the bytes instead of framing them for
// each. Call it before the first Send of msgs.
func PrepareBroadcast(msgs []Message) {
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Binary:
			m.frame = ws.AppendFrame(nil, ws.OpBinary, nil, m.Data)
		case m.control:
			m.frame = ws.AppendFrame(nil, ws.OpText, nil, m.Data)
		default:
			m.frame = ws.AppendFrame(nil, ws.OpText, msgPrefix, m.Data)
		}
	}
}
