// Package memory is an in-process bus for unit tests: messages published on
// one Bus are delivered to the subscribers of that same Bus. It supports
// channels and patterns and never loses a message while a subscriber exists.
// It is not a broker: integration tests use adapter/redis, adapter/amqp or
// adapter/nats against real servers.
package memory

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/siobridge/siobridge/queue"
)

// Bus is an in-memory queue.Bus.
type Bus struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	stats  queue.Stats
	lastMs int64 // of the last stream entry id
	seq    int64
}

// New returns an empty in-memory bus.
func New() *Bus {
	return &Bus{subs: map[*subscriber]struct{}{}}
}

type subscriber struct {
	bus   *Bus
	start string // the last stream entry id given when it subscribed
	sub   queue.Subscription
	h     queue.Handler
	ch    chan queue.Message
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// Publish delivers msgs to every matching subscriber, in order.
func (b *Bus) Publish(ctx context.Context, msgs ...queue.Message) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return queue.ErrClosed
	}
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.stats.Published += uint64(len(msgs))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		if m.Stream {
			ids[i] = b.nextIDLocked()
		}
	}
	b.mu.Unlock()
	for i, m := range msgs {
		for _, s := range subs {
			d, ok := s.matches(m)
			if !ok {
				continue
			}
			mm := m
			mm.Data = append([]byte(nil), m.Data...)
			mm.Pattern, mm.ID, mm.MaxLen = d, ids[i], 0
			select {
			case s.ch <- mm:
			case <-s.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// nextIDLocked returns a stream entry id after every one given (b.mu held).
func (b *Bus) nextIDLocked() string {
	ms := time.Now().UnixMilli()
	if ms > b.lastMs {
		b.lastMs, b.seq = ms, 0
	} else {
		b.seq++
	}
	return strconv.FormatInt(b.lastMs, 10) + "-" + strconv.FormatInt(b.seq, 10)
}

func (s *subscriber) matches(m queue.Message) (pattern string, ok bool) {
	if m.Stream {
		for _, st := range s.sub.Streams {
			if st == m.Channel {
				return "", true
			}
		}
		return "", false
	}
	channel := m.Channel
	for _, c := range s.sub.Channels {
		if c == channel {
			return "", true
		}
	}
	for _, p := range s.sub.Patterns {
		if queue.MatchPattern(p, channel) {
			return p, true
		}
	}
	return "", false
}

// Subscribe registers h for sub.
func (b *Bus) Subscribe(ctx context.Context, sub queue.Subscription, h queue.Handler) (queue.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &subscriber{bus: b, sub: sub, h: h, ch: make(chan queue.Message, 1024), done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, queue.ErrClosed
	}
	s.wg.Add(1) // before Close can find s: its Wait must not race this Add
	b.subs[s] = struct{}{}
	s.start = strconv.FormatInt(b.lastMs, 10) + "-" + strconv.FormatInt(b.seq, 10)
	b.mu.Unlock()
	go s.run()
	return s, nil
}

// StreamStart implements queue.StreamReader: the last id the bus gave
// when s subscribed ("0-0" before any).
func (s *subscriber) StreamStart(stream string) (string, bool) {
	for _, st := range s.sub.Streams {
		if st == stream {
			return s.start, true
		}
	}
	return "", false
}

func (s *subscriber) run() {
	defer s.wg.Done()
	for {
		select {
		case m := <-s.ch:
			s.bus.mu.Lock()
			s.bus.stats.Delivered++
			s.bus.mu.Unlock()
			s.h(m)
		case <-s.done:
			return
		}
	}
}

// Close ends the subscription.
func (s *subscriber) Close() error {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.done)
	})
	s.wg.Wait()
	return nil
}

// NumSub counts the subscribers listening on channel exactly.
func (b *Bus) NumSub(ctx context.Context, channel string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for s := range b.subs {
		for _, c := range s.sub.Channels {
			if c == channel {
				n++
				break
			}
		}
	}
	return n, nil
}

// Stats returns the bus counters.
func (b *Bus) Stats() queue.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Close ends every subscription.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	return nil
}

var (
	_ queue.Bus               = (*Bus)(nil)
	_ queue.SubscriberCounter = (*Bus)(nil)
	_ queue.StatsReporter     = (*Bus)(nil)
)
