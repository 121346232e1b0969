package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/siobridge/siobridge/queue"
)

// MaxPublishBacklog bounds the bytes of broadcasts a cluster member has
// queued for the broker and not yet published (WithAdapter): Emit does not
// wait for the broker, so while it is slow or away the broadcasts wait
// here; beyond the bound Emit returns ErrPublishBacklog and publishes
// nothing (this node's clients were served).
const MaxPublishBacklog = 16 << 20

// ErrPublishBacklog is returned by a cluster member's Emit when its
// broadcasts waiting for the broker exceed MaxPublishBacklog bytes.
var ErrPublishBacklog = errors.New("server: the cluster's publish backlog is full (the broker is slow or away); the other nodes were not sent this broadcast")

// Bounds of the broadcasts queued one after another that the member
// publishes in one Publish call (one round trip to the broker).
const (
	maxCoalescedMsgs  = 1024
	maxCoalescedBytes = 1 << 20
)

// publishLogEvery spaces the log lines of failed background publishes.
const publishLogEvery = 10 * time.Second

// pubJob is one publish, in the member's order.
type pubJob struct {
	ctx  context.Context
	msgs []queue.Message
	size int
	done chan error // nil for a broadcast nobody waits for
}

// publisher publishes a member's messages in the order they were made,
// on one goroutine: broadcasts without waiting (Emit returns once this
// node's clients are served, as Node's adapter does), other operations
// waiting for their turn and their result, so that nothing overtakes an
// earlier broadcast on its way to the other nodes.
type publisher struct {
	m       *member
	mu      sync.Mutex
	q       []pubJob
	pending int // bytes of the queued jobs
	wake    chan struct{}
	batch   []queue.Message // the broadcasts of one Publish (run's)

	failMu     sync.Mutex
	lastLog    time.Time
	suppressed int
}

func newPublisher(m *member) *publisher {
	return &publisher{m: m, wake: make(chan struct{}, 1)}
}

func sizeOf(msgs []queue.Message) int {
	n := 0
	for _, msg := range msgs {
		n += len(msg.Channel) + len(msg.Data) + 64
	}
	return n
}

// async queues msgs without waiting; ErrPublishBacklog when the queue is
// over MaxPublishBacklog bytes.
func (p *publisher) async(msgs []queue.Message) error {
	size := sizeOf(msgs)
	p.mu.Lock()
	if p.pending > 0 && p.pending+size > MaxPublishBacklog {
		p.mu.Unlock()
		p.m.s.queue.publishErrs.Add(1)
		p.failed(ErrPublishBacklog)
		return ErrPublishBacklog
	}
	p.push(pubJob{ctx: p.m.ctx, msgs: msgs, size: size})
	return nil
}

// sync queues msgs and waits for them to be published after every earlier
// job, or for ctx to end.
func (p *publisher) sync(ctx context.Context, msgs []queue.Message) error {
	done := make(chan error, 1)
	p.mu.Lock()
	p.push(pubJob{ctx: ctx, msgs: msgs, size: sizeOf(msgs), done: done})
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-p.m.ctx.Done():
		return queue.ErrClosed
	}
}

// push appends j and wakes the publishing goroutine; callers hold p.mu,
// which push releases.
func (p *publisher) push(j pubJob) {
	p.q = append(p.q, j)
	p.pending += j.size
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run publishes the queued jobs in order until the member stops.
func (p *publisher) run() {
	for {
		p.mu.Lock()
		if len(p.q) == 0 {
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-p.m.ctx.Done():
				p.drop()
				return
			}
		}
		j := p.q[0]
		p.q[0] = pubJob{}
		p.q = p.q[1:]
		msgs, size := j.msgs, j.size
		if j.done == nil {
			// the broadcasts queued behind it go in the same Publish:
			// one round trip to the broker for all of them, in order
			for len(p.q) > 0 && p.q[0].done == nil && p.q[0].ctx == j.ctx &&
				len(msgs)+len(p.q[0].msgs) <= maxCoalescedMsgs && size+p.q[0].size <= maxCoalescedBytes {
				if len(p.batch) == 0 {
					p.batch = append(p.batch, msgs...)
				}
				p.batch = append(p.batch, p.q[0].msgs...)
				msgs, size = p.batch, size+p.q[0].size
				p.q[0] = pubJob{}
				p.q = p.q[1:]
			}
		}
		if len(p.q) == 0 {
			p.q = nil
		}
		p.mu.Unlock()
		var err error
		if err = j.ctx.Err(); err == nil { // a waiter that gave up needs nothing published
			err = p.m.publishCtx(j.ctx, msgs)
		}
		clear(p.batch) // the payloads are the broker's now: keep no reference
		p.batch = p.batch[:0]
		p.mu.Lock()
		p.pending -= size
		p.mu.Unlock()
		if j.done != nil {
			j.done <- err
		} else if err != nil {
			p.failed(err)
		}
	}
}

// drop answers the waiters of what is left when the member stops.
func (p *publisher) drop() {
	p.mu.Lock()
	q := p.q
	p.q, p.pending = nil, 0
	p.mu.Unlock()
	for _, j := range q {
		if j.done != nil {
			j.done <- queue.ErrClosed
		}
	}
}

// failed logs a broadcast that did not reach the other nodes: the first
// at once, then one line every publishLogEvery saying how many more.
func (p *publisher) failed(err error) {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	if time.Since(p.lastLog) < publishLogEvery {
		p.suppressed++
		return
	}
	p.m.s.log.Warn("server: a broadcast did not reach the other nodes (counted in QueueStats().PublishErrs)",
		"err", err, "more_since_last_line", p.suppressed)
	p.lastLog, p.suppressed = time.Now(), 0
}
