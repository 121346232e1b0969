// Package netpoll lets a server keep many mostly idle connections without
// a goroutine each. On Linux a connection that implements syscall.Conn is
// watched by one epoll instance; when it becomes readable, its callback
// runs in a goroutine of the poller (a worker that is idle, else a new
// one), reads without blocking and re-arms the watch.
// Other connections (TLS, or any OS without epoll) fall back to one
// goroutine per connection running the same callback with blocking reads,
// so callers have a single code path.
package netpoll

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// ErrWouldBlock is returned by Desc.Read and Desc.TryWrite when the
// operation would block.
var ErrWouldBlock = errors.New("netpoll: operation would block")

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("netpoll: poller closed")

var errEOF = io.EOF

// Desc is one watched connection.
type Desc struct {
	p    *Poller
	conn net.Conn
	fn   func(*Desc)
	fd   int
	raw  rawConn // nil in blocking mode

	mu      sync.Mutex
	removed bool
}

// rawConn is the part of syscall.RawConn we use.
type rawConn interface {
	Read(f func(fd uintptr) bool) error
	Write(f func(fd uintptr) bool) error
}

// Conn returns the watched connection.
func (d *Desc) Conn() net.Conn { return d.conn }

// Blocking reports whether the connection is served by a goroutine of its
// own (Read blocks) instead of the poller.
func (d *Desc) Blocking() bool { return d.raw == nil }

// Read reads what is available. In poller mode it never blocks and returns
// ErrWouldBlock when there is nothing to read; in blocking mode it is the
// connection's Read.
func (d *Desc) Read(b []byte) (int, error) {
	if d.raw == nil {
		return d.conn.Read(b)
	}
	return d.readRaw(b)
}

// TryWrite writes as much of bufs as the socket takes without blocking and
// returns the bytes written; ErrWouldBlock if none. In blocking mode it
// always returns ErrWouldBlock: the caller writes from a goroutine with
// Conn().Write instead.
func (d *Desc) TryWrite(bufs [][]byte) (int, error) {
	if d.raw == nil {
		return 0, ErrWouldBlock
	}
	return d.writeRaw(bufs)
}

// Rearm asks for the next readable callback. Call it when the callback has
// read what it wanted (in blocking mode it does nothing: the goroutine
// calls the callback again).
func (d *Desc) Rearm() error {
	if d.raw == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.removed {
		return nil
	}
	return d.p.rearm(d)
}

// Remove stops watching. Call it before closing the connection; no new
// callback starts afterwards.
func (d *Desc) Remove() {
	d.mu.Lock()
	if d.removed {
		d.mu.Unlock()
		return
	}
	d.removed = true
	d.mu.Unlock()
	if d.raw != nil {
		d.p.remove(d)
	}
}

// Removed reports whether Remove was called.
func (d *Desc) Removed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.removed
}

// Reset closes conn with a TCP reset instead of an orderly shutdown: with
// SO_LINGER set to 0 the kernel discards what it has not sent yet and
// sends RST, so a peer that stopped reading holds neither our memory nor
// the kernel's (no FIN waiting behind unsent data in FIN-WAIT-1). A
// connection that wraps another (NetConn, as *tls.Conn) resets the one
// beneath; one that is not TCP is just closed.
func Reset(conn net.Conn) error {
	c := conn
	for {
		if l, ok := c.(interface{ SetLinger(sec int) error }); ok {
			if err := l.SetLinger(0); err != nil {
				conn.Close()
				return fmt.Errorf("netpoll: reset: %w", err)
			}
			break
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	if c != conn {
		c.Close() // a TLS close would first try to write its close_notify
	}
	return conn.Close()
}

// Poller watches connections. The zero value is not usable; use New.
type Poller struct {
	impl
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool

	// workers run the callbacks: a worker done with one waits for the
	// next, so that a burst of callbacks (a connection storm) does not pay
	// a new goroutine and its stack growth for each
	work    chan *Desc    // an idle worker receives here
	quit    chan struct{} // closed by Close: idle workers end
	workers atomic.Int32  // workers that wait when idle, at most maxWorkers
}

// maxWorkers bounds the workers that stay, idle, for the next callback;
// when all are busy (callbacks may block) a callback runs in a goroutine
// of its own that ends with it. One epoll wait hands out up to 256
// callbacks at once: as many workers take a burst without new goroutines.
// An idle worker costs a goroutine with a small stack (the garbage
// collector shrinks the stacks of goroutines that wait).
const maxWorkers = 256

// initWorkers prepares the worker channels; New calls it.
func (p *Poller) initWorkers() {
	p.work = make(chan *Desc)
	p.quit = make(chan struct{})
}

// Add watches conn and calls fn (in its own goroutine, with conn's Desc)
// whenever it is readable; fn must end with Rearm unless it removed the connection. In
// blocking mode fn is called in a loop by the connection's goroutine until
// Remove.
func (p *Poller) Add(conn net.Conn, fn func(*Desc)) (*Desc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	d := &Desc{p: p, conn: conn, fn: fn, fd: -1}
	if rc := p.raw(conn); rc != nil {
		d.raw = rc
		if err := p.add(d); err == nil {
			return d, nil
		}
		d.raw = nil
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for !d.Removed() {
			fn(d)
		}
	}()
	return d, nil
}

// Close stops the poller after the callbacks that run have returned.
// Connections still watched are not closed.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.stop() // no callback is handed out after this
	if p.quit != nil {
		close(p.quit)
	}
	p.wg.Wait()
	return err
}

// run calls d.fn in a goroutine owned by the poller: an idle worker, else
// a new worker, else (maxWorkers busy) a goroutine of its own.
func (p *Poller) run(d *Desc) {
	select {
	case p.work <- d:
		return
	default:
	}
	p.wg.Add(1)
	if p.workers.Add(1) <= maxWorkers {
		go p.worker(d)
		return
	}
	p.workers.Add(-1)
	go func() {
		defer p.wg.Done()
		d.fn(d)
	}()
}

// worker runs d's callback, then the callbacks handed to it, until Close.
func (p *Poller) worker(d *Desc) {
	defer p.wg.Done()
	defer p.workers.Add(-1)
	for {
		d.fn(d)
		select {
		case d = <-p.work:
		case <-p.quit:
			return
		}
	}
}
