package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/queue"
)

// publisher is the fast PUBLISH (and SPUBLISH, XADD) path: group commit
// over one pipelined connection. Callers append their commands (already
// in RESP form) to the open batch under a mutex and wait for that batch's
// completion; the connection's writer takes the whole batch and writes it
// with one write call, and its reader reads the replies of the batches in
// flight (up to depth) in the order they were written. While replies are
// awaited the next batches fill and are written, so the pipeline never
// stalls and no per-message goroutine hand-off happens; and since there
// is one connection, the publishes reach Redis in the order their Publish
// calls queued them (one Publish after another returned is after it).
type publisher struct {
	opts  *goredis.Options
	depth int // batches in flight on the connection

	mu     sync.Mutex
	cur    *batch
	free   [][]byte      // written batches' buffers, for the next ones (guarded by mu)
	kick   chan struct{} // a batch is waiting to be taken
	stop   chan struct{}
	wg     sync.WaitGroup
	closed bool
}

type batch struct {
	buf  []byte
	n    int // commands in buf
	done chan struct{}
	err  error
}

const (
	maxBatchBytes = 1 << 20  // capacity of a buffer kept for the next batches...
	maxKeptBufs   = 4        // ...and how many are kept
	maxBacklog    = 64 << 20 // bytes waiting before Publish refuses
)

func newPublisher(opts *goredis.Options, depth int) *publisher {
	p := &publisher{opts: opts, depth: max(depth, 1), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	p.cur = &batch{done: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

// Batch buffers are recycled: allocating (and zeroing) a fresh one per
// round trip costs more than the round trip's own work, and fresh memory
// costs page faults. The publisher keeps up to maxKeptBufs written
// buffers of at most maxBatchBytes (4 MiB at most) in its own list rather
// than a sync.Pool, which every garbage collection empties: a program
// that allocates much (a map per emit) collects every few milliseconds.

// getBuf returns a kept buffer, or nil. Called with p.mu held.
func (p *publisher) getBuf() []byte {
	n := len(p.free)
	if n == 0 {
		return nil
	}
	b := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return b[:0]
}

// putBuf keeps b for a next batch, within the bounds.
func (p *publisher) putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxBatchBytes {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxKeptBufs {
		p.free = append(p.free, b)
	}
	p.mu.Unlock()
}

// respSize is about what msgs take in RESP (at least that much): enqueue
// grows a batch's buffer once for them, not by doubling.
func respSize(msgs []queue.Message) int {
	n := 0
	for i := range msgs {
		n += len(msgs[i].Channel) + len(msgs[i].Data) + 40
	}
	return n
}

// appendPublish writes PUBLISH channel data in RESP, or SPUBLISH (sharded
// Pub/Sub) when sharded.
func appendPublish(b []byte, channel string, data []byte, sharded bool) []byte {
	if sharded {
		b = append(b, "*3\r\n$8\r\nSPUBLISH\r\n$"...)
	} else {
		b = append(b, "*3\r\n$7\r\nPUBLISH\r\n$"...)
	}
	b = strconv.AppendInt(b, int64(len(channel)), 10)
	b = append(b, '\r', '\n')
	b = append(b, channel...)
	b = append(b, "\r\n$"...)
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, '\r', '\n')
	b = append(b, data...)
	return append(b, '\r', '\n')
}

// appendXAdd writes XADD stream [MAXLEN ~ maxLen] * field value ... in
// RESP, the pairs read from data (queue.AppendStreamField's form).
func appendXAdd(b []byte, stream string, maxLen int64, data []byte) ([]byte, error) {
	pairs, err := queue.StreamFieldCount(data)
	if err != nil {
		return b, fmt.Errorf("XADD %q: %w", stream, err)
	}
	if pairs == 0 {
		return b, fmt.Errorf("XADD %q: an entry needs a field", stream)
	}
	args := 3 + 2*pairs
	if maxLen > 0 {
		args += 3
	}
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(args), 10)
	b = append(b, "\r\n$4\r\nXADD\r\n"...)
	b = appendBulk(b, stream)
	if maxLen > 0 {
		b = append(b, "$6\r\nMAXLEN\r\n$1\r\n~\r\n"...)
		b = appendBulk(b, strconv.FormatInt(maxLen, 10))
	}
	b = append(b, "$1\r\n*\r\n"...)
	queue.StreamFields(data, func(f, v []byte) bool {
		b = appendBulk(appendBulk(b, f), v)
		return true
	})
	return b, nil
}

// appendBulk writes s as a RESP bulk string.
func appendBulk[T string | []byte](b []byte, s T) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendMessage writes the command that sends m: XADD for a Stream
// message, else PUBLISH or SPUBLISH.
func appendMessage(b []byte, m *queue.Message) ([]byte, error) {
	if m.Stream {
		return appendXAdd(b, m.Channel, m.MaxLen, m.Data)
	}
	return appendPublish(b, m.Channel, m.Data, m.Sharded), nil
}

// publish queues msgs in the open batch and waits for its result.
func (p *publisher) publish(ctx context.Context, msgs []queue.Message) error {
	bt, err := p.enqueue(msgs)
	if err != nil {
		return err
	}
	return bt.wait(ctx)
}

// wait waits for the batch's replies, or for ctx to end.
func (bt *batch) wait(ctx context.Context) error {
	select {
	case <-bt.done:
		return bt.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue appends msgs to the open batch, after everything queued before,
// and returns that batch.
func (p *publisher) enqueue(msgs []queue.Message) (*batch, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, queue.ErrClosed
	}
	bt := p.cur
	if len(bt.buf) > maxBacklog {
		p.mu.Unlock()
		return nil, errors.New("redis: more than 64 MiB of publishes waiting for the server")
	}
	mark := len(bt.buf)
	if need := respSize(msgs); cap(bt.buf)-mark < need {
		grown := make([]byte, mark, max(2*cap(bt.buf), mark+need))
		copy(grown, bt.buf)
		bt.buf = grown
	}
	for i := range msgs {
		var err error
		if bt.buf, err = appendMessage(bt.buf, &msgs[i]); err != nil {
			bt.buf = bt.buf[:mark] // none of msgs is sent
			p.mu.Unlock()
			return nil, err
		}
	}
	bt.n += len(msgs)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return bt, nil
}

// take swaps the open batch for a fresh one.
func (p *publisher) take() *batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	bt := p.cur
	if bt.n == 0 {
		return nil
	}
	p.cur = &batch{done: make(chan struct{}), buf: p.getBuf()}
	return bt
}

// loop is the connection's writer: it writes the batches in the order
// they were taken and hands them to the connection's reader.
func (p *publisher) loop() {
	defer p.wg.Done()
	var pc *pipeConn
	defer func() {
		if pc != nil {
			pc.finish()
		}
	}()
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		for {
			bt := p.take()
			if bt == nil {
				break
			}
			if pc != nil && pc.broken() {
				pc.finish()
				pc = nil
			}
			if pc == nil {
				c, err := p.dial()
				if err != nil {
					p.putBuf(bt.buf)
					bt.buf = nil
					bt.err = err
					close(bt.done)
					continue
				}
				pc = startPipe(c, p.depth, p.putBuf)
			}
			pc.send(bt)
		}
	}
}

// pipeConn is one pipelined connection: batches written by the writer
// (send) and their replies read, in the same order, by its reader.
type pipeConn struct {
	c        *rawConn
	putBuf   func([]byte) // takes a written batch's buffer
	inflight chan *batch  // written, replies not yet read
	dead     chan struct{}
	once     sync.Once
	err      error // why it broke (set before dead is closed)
	wg       sync.WaitGroup
}

func startPipe(c *rawConn, depth int, putBuf func([]byte)) *pipeConn {
	pc := &pipeConn{c: c, putBuf: putBuf, inflight: make(chan *batch, depth), dead: make(chan struct{})}
	pc.wg.Add(1)
	go pc.read()
	return pc
}

// send writes bt and queues it for the reader (waiting while depth
// batches are in flight); on a broken connection bt fails.
func (pc *pipeConn) send(bt *batch) {
	pc.c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := pc.c.nc.Write(bt.buf)
	pc.putBuf(bt.buf) // written (or failed): the buffer is free
	bt.buf = nil
	if err != nil {
		pc.fail(err)
		bt.err = err
		close(bt.done)
		return
	}
	select {
	case pc.inflight <- bt:
	case <-pc.dead:
		bt.err = pc.err
		close(bt.done)
	}
}

// read reads the replies of the batches in flight until finish.
func (pc *pipeConn) read() {
	defer pc.wg.Done()
	for bt := range pc.inflight {
		if pc.broken() {
			bt.err = pc.err
			close(bt.done)
			continue
		}
		pc.c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		replyErr, err := pc.c.readReplies(bt.n)
		if err != nil {
			pc.fail(err)
			bt.err = err
		} else {
			bt.err = replyErr
		}
		close(bt.done)
	}
}

// fail marks the connection broken (once) and closes it, which ends the
// reader's wait for replies.
func (pc *pipeConn) fail(err error) {
	pc.once.Do(func() {
		pc.err = err
		close(pc.dead)
		pc.c.close()
	})
}

func (pc *pipeConn) broken() bool {
	select {
	case <-pc.dead:
		return true
	default:
		return false
	}
}

// finish lets the reader answer what is in flight, then closes the
// connection. Called by the writer only.
func (pc *pipeConn) finish() {
	close(pc.inflight)
	pc.wg.Wait()
	pc.fail(queue.ErrClosed)
}

func (p *publisher) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	// the writer is gone: what it did not take fails (read p.cur only
	// now, or a batch it took meanwhile would be answered twice)
	p.mu.Lock()
	bt := p.cur
	p.mu.Unlock()
	if bt.n > 0 {
		bt.err = queue.ErrClosed
		close(bt.done)
	}
}

// rawConn is one RESP2 connection of our own, without go-redis: the
// publisher's pipeline, or a stream reader's (XREAD).
type rawConn struct {
	nc net.Conn
	r  *bufio.Reader
}

func (p *publisher) dial() (*rawConn, error) { return dialRaw(p.opts, 0) }

// dialRaw opens a connection to the server of o as go-redis does (with
// o.Dialer: TLS, or a Sentinel's current master), authenticated (AUTH)
// and on database o.DB (SELECT). With idle > 0, a read fails once the
// server has sent nothing for idle.
func dialRaw(o *goredis.Options, idle time.Duration) (*rawConn, error) {
	timeout := o.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	nc, err := dialNet(ctx, o)
	if err != nil {
		return nil, err
	}
	var rd io.Reader = nc
	if idle > 0 {
		rd = idleReader{nc, idle}
	}
	c := &rawConn{nc: nc, r: bufio.NewReaderSize(rd, 64<<10)}
	var cmd []byte
	n := 0
	if o.Password != "" {
		if o.Username != "" {
			cmd = appendCommand(cmd, "AUTH", o.Username, o.Password)
		} else {
			cmd = appendCommand(cmd, "AUTH", o.Password)
		}
		n++
	}
	if o.DB != 0 {
		cmd = appendCommand(cmd, "SELECT", strconv.Itoa(o.DB))
		n++
	}
	if n > 0 {
		if err := c.roundTrip(cmd, n); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// dialNet opens the network connection (TLS included) to o's server.
func dialNet(ctx context.Context, o *goredis.Options) (net.Conn, error) {
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	if o.Dialer != nil { // always, for the Options of a go-redis client
		return o.Dialer(ctx, network, o.Addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, o.Addr)
	if err != nil {
		return nil, err
	}
	if o.TLSConfig != nil {
		tc := tls.Client(nc, o.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return nc, nil
}

// idleReader reads nc with a deadline idle after each read starts.
type idleReader struct {
	nc   net.Conn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	r.nc.SetReadDeadline(time.Now().Add(r.idle))
	return r.nc.Read(p)
}

func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// roundTrip writes buf and reads n replies; the first error reply is
// returned (the other commands of the batch still ran).
func (c *rawConn) roundTrip(buf []byte, n int) error {
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := c.nc.Write(buf); err != nil {
		return err
	}
	replyErr, err := c.readReplies(n)
	if err != nil {
		return err
	}
	return replyErr
}

// readReplies reads n replies: replyErr is the first error reply (the
// other commands still ran), err a broken connection or protocol.
func (c *rawConn) readReplies(n int) (replyErr, err error) {
	for i := 0; i < n; i++ {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) < 3 {
			return nil, fmt.Errorf("redis: short reply %q", line)
		}
		switch line[0] {
		case ':', '+':
		case '$': // XADD's entry id
			n, err := strconv.Atoi(string(line[1 : len(line)-2]))
			if err != nil {
				return nil, fmt.Errorf("redis: bad bulk reply %q", line)
			}
			if n >= 0 {
				if _, err := c.r.Discard(n + 2); err != nil {
					return nil, err
				}
			}
		case '-':
			if replyErr == nil {
				replyErr = errors.New("redis: " + string(line[1:len(line)-2]))
			}
		default:
			return nil, fmt.Errorf("redis: unexpected reply %q", line)
		}
	}
	return replyErr, nil
}

func (c *rawConn) close() { c.nc.Close() }
