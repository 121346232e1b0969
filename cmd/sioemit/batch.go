package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// --batch streams its lines through emitter.Batch: lines are decoded and
// encoded into a chunk while the previous chunk is being published, one
// publish at a time, so the lines arrive in their order. At most two
// chunks exist at once: memory is bounded by 2 × chunkBytes plus one line
// (maxLineBytes), whatever the number of lines.
const (
	chunkEmits      = 1024      // a chunk is published when it holds this many emits...
	chunkBytes      = 512 << 10 // ...or this many bytes of encoded messages
	maxFailedChunks = 3         // consecutive failed publishes before giving up
	readBufferBytes = 64 << 10
)

func (c *cli) batch(dry bool) int {
	var in io.Reader
	if c.o.batch == "-" {
		in = c.stdin
	} else {
		f, err := os.Open(c.o.batch)
		if err != nil {
			c.errorf("--batch: %v", err)
			return exitUsage
		}
		defer f.Close()
		in = f
	}
	start := time.Now()
	var sent, failed atomic.Int64
	stopProgress := c.progress(c.progressTotal(), &sent, &failed)
	var pl *pipeline
	if !dry {
		pl = newPipeline(c, &sent, &failed)
	}
	invalid := 0
	lineFailed := func(n int, err error) {
		invalid++
		failed.Add(1)
		c.errorf("line %d: %v", n, err)
	}
	r := lineReader{r: bufio.NewReaderSize(in, readBufferBytes)}
	var (
		p       lineParser
		l       batchLine
		ops     operatorCache
		readErr error
	)
	// a dialect that writes JSON arguments straight into its encoding
	// gets them as text
	_, p.raw = c.d.(dialect.EmitAppender)
	p.raw = p.raw && !dry
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := r.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		if tooLong {
			lineFailed(lineNo, usagef("longer than %d bytes", maxLineBytes))
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := p.parse(line, &l); err != nil {
			lineFailed(lineNo, err)
			continue
		}
		if err := op.ValidateEvent(l.event); err != nil {
			lineFailed(lineNo, err)
			continue
		}
		t := c.lineTarget(&l)
		if dry {
			e := &op.Emit{Target: t, Event: l.event, Args: l.args, Volatile: c.o.volatile}
			msgs, err := c.d.Encode(e)
			if err != nil {
				lineFailed(lineNo, err)
				continue
			}
			c.printMsgs(msgs)
			sent.Add(1)
			continue
		}
		if err := pl.add(lineNo, ops.get(c, t), &l); err != nil {
			lineFailed(lineNo, err)
			continue
		}
		if pl.gaveUp() {
			n, first := pl.unsent()
			failed.Add(int64(n))
			c.errorf("giving up after %d failed publishes in a row: lines %d and after not sent", maxFailedChunks, first)
			break
		}
	}
	if pl != nil {
		pl.close()
	}
	stopProgress()
	if readErr != nil {
		c.errorf("reading --batch: %v", readErr)
		return exitUsage
	}
	el := time.Since(start)
	fmt.Fprintf(c.stdout, "sent %d, failed %d in %.2fs (%.0f msgs/s)\n", sent.Load(), failed.Load(), el.Seconds(), float64(sent.Load())/el.Seconds())
	switch {
	case invalid > 0:
		return exitUsage
	case failed.Load() > 0:
		return exitBroker
	}
	return exitOK
}

// lineTarget applies the command line's defaults to a line's selection.
func (c *cli) lineTarget(l *batchLine) op.Target {
	t := op.Target{Namespace: l.namespace, Rooms: c.o.to, Except: c.o.except}
	if t.Namespace == "" {
		t.Namespace = c.o.namespace
	}
	if l.hasTo {
		t.Rooms = l.to
	}
	if l.hasExcept {
		t.Except = l.except
	}
	return t
}

// operatorCache keeps the operator of the last selection: consecutive
// lines usually target the same rooms.
type operatorCache struct {
	ns, to, except []string
	opr            *emitter.Operator
}

func (k *operatorCache) get(c *cli, t op.Target) *emitter.Operator {
	if k.opr != nil && len(k.ns) == 1 && k.ns[0] == t.Namespace && slices.Equal(k.to, t.Rooms) && slices.Equal(k.except, t.Except) {
		return k.opr
	}
	k.ns = []string{t.Namespace}
	k.to, k.except = slices.Clone(t.Rooms), slices.Clone(t.Except)
	t.Namespace = op.NamespaceOrRoot(t.Namespace)
	k.opr = c.operator(t)
	return k.opr
}

// lineReader reads lines of at most maxLineBytes with a bounded buffer.
type lineReader struct {
	r    *bufio.Reader
	long []byte // a line longer than the read buffer
}

// next returns the next line, without its line end, valid until the next
// call. A longer line than maxLineBytes is skipped (without keeping it)
// and reported with tooLong. After the last line next returns io.EOF.
func (r *lineReader) next() (line []byte, tooLong bool, err error) {
	b, err := r.r.ReadSlice('\n')
	switch {
	case err == nil || errors.Is(err, io.EOF) && len(b) > 0:
		return b, false, nil
	case !errors.Is(err, bufio.ErrBufferFull):
		return nil, false, err
	}
	r.long = append(r.long[:0], b...)
	for errors.Is(err, bufio.ErrBufferFull) {
		b, err = r.r.ReadSlice('\n')
		switch n := len(r.long) + len(b); {
		case tooLong:
		case n > maxLineBytes+2: // + "\r\n"
			tooLong = true
			r.long = r.long[:0]
		case n > cap(r.long): // double, up to the limit: append's 1.25 would copy far more
			grown := make([]byte, len(r.long), min(max(2*cap(r.long), n), maxLineBytes+2))
			copy(grown, r.long)
			r.long = append(grown, b...)
		default:
			r.long = append(r.long, b...)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	if tooLong {
		return nil, true, nil
	}
	return r.long, false, nil
}

// pipeline publishes the chunks of a --batch run in order on its own
// goroutine while the next chunk fills. A chunk's emits are handed to the
// bus with Batch.PublishAsync: on a bus that queues them in order
// (adapter/redis) the chunk is free again at once and up to maxInFlight
// chunks wait for the broker together, keeping its connection busy; on
// the others PublishAsync publishes, one chunk at a time. Memory is
// bounded by two chunks being filled or handed over, plus what the bus
// holds of at most maxInFlight published chunks.
type pipeline struct {
	c            *cli
	cur, spare   *chunk
	todo         chan *chunk  // to the publishing goroutine
	done         chan *chunk  // handed to the bus, back from it
	busy         bool         // a chunk is being handed to the bus
	failedRun    atomic.Int64 // consecutive failed chunks
	sent, failed *atomic.Int64
	wg           sync.WaitGroup
}

// maxInFlight bounds the chunks waiting for the broker's replies.
const maxInFlight = 2

// chunk is a batch of emits from consecutive lines.
type chunk struct {
	b           *emitter.Batch
	n           int // emits
	first, last int // line numbers of the first and last emit
}

// inFlight is a published chunk waiting for the broker.
type inFlight struct {
	wait        func(context.Context) error
	ctx         context.Context
	cancel      context.CancelFunc
	n           int
	first, last int
}

func newPipeline(c *cli, sent, failed *atomic.Int64) *pipeline {
	p := &pipeline{
		c:      c,
		cur:    &chunk{b: c.em.NewBatch()},
		spare:  &chunk{b: c.em.NewBatch()},
		todo:   make(chan *chunk),
		done:   make(chan *chunk, 1),
		sent:   sent,
		failed: failed,
	}
	// on a bus that publishes before PublishAsync returns, the result is
	// there at once: count it before the next chunk, as gaveUp needs
	depth := 0
	if _, ok := c.bus.(queue.AsyncPublisher); ok {
		depth = maxInFlight
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var q []inFlight // oldest first
		for ch := range p.todo {
			f := inFlight{n: ch.n, first: ch.first, last: ch.last}
			f.ctx, f.cancel = context.WithTimeout(context.Background(), c.o.timeout)
			f.wait = ch.b.PublishAsync(f.ctx) // the batch is empty again
			q = append(q, f)
			for len(q) > depth {
				p.settle(q[0])
				q = q[1:]
			}
			p.done <- ch
		}
		for _, f := range q {
			p.settle(f)
		}
	}()
	return p
}

// settle waits for a published chunk's result and counts it.
func (p *pipeline) settle(f inFlight) {
	err := f.wait(f.ctx)
	f.cancel()
	if err != nil {
		p.failed.Add(int64(f.n))
		p.failedRun.Add(1)
		p.c.errorf("lines %d-%d: %v (%d emits not confirmed; the broker may have taken some)", f.first, f.last, err, f.n)
		return
	}
	p.sent.Add(int64(f.n))
	p.failedRun.Store(0)
}

// add encodes an emit of line lineNo into the current chunk, and starts
// publishing the chunk once it is full. An error is the line's own (the
// emit cannot be encoded).
func (p *pipeline) add(lineNo int, opr *emitter.Operator, l *batchLine) error {
	var err error
	if l.argsJSON != nil {
		err = p.cur.b.EmitJSON(opr, l.event, l.argsJSON)
	} else {
		err = p.cur.b.Emit(opr, l.event, l.args...)
	}
	if err != nil {
		return err
	}
	if p.cur.b.Len() == 1 {
		p.cur.first = lineNo
	}
	p.cur.last = lineNo
	if p.cur.b.Len() >= chunkEmits || p.cur.b.Bytes() >= chunkBytes {
		p.flush()
	}
	return nil
}

// flush hands the current chunk to the publishing goroutine once the
// previous one is handed to the bus.
func (p *pipeline) flush() {
	if p.cur.b.Len() == 0 {
		return
	}
	p.wait()
	if p.gaveUp() {
		return
	}
	ch := p.cur
	ch.n = ch.b.Len()
	p.busy = true
	p.todo <- ch
	p.cur, p.spare = p.spare, nil
}

// wait waits for the chunk being handed to the bus.
func (p *pipeline) wait() {
	if !p.busy {
		return
	}
	p.spare = <-p.done
	p.busy = false
}

// gaveUp reports whether too many publishes failed in a row to go on.
func (p *pipeline) gaveUp() bool { return p.failedRun.Load() >= maxFailedChunks }

// unsent returns the emits encoded but not handed to the bus, and the
// line of the first one (after giving up).
func (p *pipeline) unsent() (n, first int) { return p.cur.b.Len(), p.cur.first }

// close publishes what is left (unless it gave up), waits for every
// published chunk's result and stops the publishing goroutine.
func (p *pipeline) close() {
	p.flush()
	p.wait()
	close(p.todo)
	p.wg.Wait()
}

func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err != nil {
			return n
		}
	}
}

// progressTotal is the number of lines for the progress bar when stderr is
// a terminal (0: unknown, stdin), or -1 for no progress bar.
func (c *cli) progressTotal() int64 {
	st, ok := c.stderr.(*os.File)
	if !ok {
		return -1
	}
	fi, err := st.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return -1
	}
	if c.o.batch == "-" {
		return 0
	}
	return countLines(c.o.batch)
}

// progress draws a progress bar on stderr when it is a terminal (total >=
// 0); it returns a function that stops it.
func (c *cli) progress(total int64, sent, failed *atomic.Int64) func() {
	if total < 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	draw := func() {
		s, f := sent.Load(), failed.Load()
		c.outMu.Lock()
		defer c.outMu.Unlock()
		if total > 0 {
			const width = 30
			n := int((s + f) * width / total)
			n = min(n, width)
			fmt.Fprintf(c.stderr, "\r[%s%s] %d/%d sent, %d failed", strings.Repeat("#", n), strings.Repeat(".", width-n), s, total, f)
		} else {
			fmt.Fprintf(c.stderr, "\r%d sent, %d failed", s, f)
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-done:
				draw()
				fmt.Fprintln(c.stderr)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
