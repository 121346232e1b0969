package testenv

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/queue"
)

// Sink collects the messages a subscription delivers, for bus tests.
type Sink struct {
	mu   sync.Mutex
	msgs []queue.Message
}

// Handle is the queue.Handler that records a message.
func (s *Sink) Handle(m queue.Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
}

// Count returns how many messages arrived.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Wait waits until at least n messages arrived and returns them; the test
// fails after within.
func (s *Sink) Wait(t testing.TB, n int, within time.Duration) []queue.Message {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]queue.Message(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("got %d messages, want %d", s.Count(), n)
	return nil
}

// CheckShardedIgnored checks a bus whose broker has one kind of channel
// (not Redis): a sharded message on ch reaches a Sharded and a classic
// subscription alike, and only the Sharded subscription's delivery has
// Sharded set.
func CheckShardedIgnored(t testing.TB, b queue.Bus, ch string) {
	t.Helper()
	var sh, cl Sink
	ctx := context.Background()
	for _, s := range []struct {
		sink    *Sink
		sharded bool
	}{{&sh, true}, {&cl, false}} {
		sub, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}, Sharded: s.sharded}, s.sink.Handle)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("x"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	if g := sh.Wait(t, 1, 10*time.Second); string(g[0].Data) != "x" || !g[0].Sharded {
		t.Fatalf("sharded subscription got %+v", g)
	}
	if g := cl.Wait(t, 1, 10*time.Second); string(g[0].Data) != "x" || g[0].Sharded {
		t.Fatalf("classic subscription got %+v", g)
	}
}

// CheckStreamsRefused checks a bus without streams: a Stream message and
// a subscription to a stream are refused with errors wrapping
// queue.ErrStreamsUnsupported, and nothing of the refused Publish call
// reaches a subscriber of ch.
func CheckStreamsRefused(t testing.TB, b queue.Bus, ch string) {
	t.Helper()
	ctx := context.Background()
	var s Sink
	sub, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	entry := queue.Message{Channel: ch, Stream: true, Data: queue.AppendStreamField(nil, "f", "v")}
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("before")}, entry); !errors.Is(err, queue.ErrStreamsUnsupported) {
		t.Fatalf("Stream message: %v", err)
	}
	if _, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}, Streams: []string{ch}}, s.Handle); !errors.Is(err, queue.ErrStreamsUnsupported) {
		t.Fatalf("stream subscription: %v", err)
	}
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if g := s.Wait(t, 1, 10*time.Second); string(g[0].Data) != "after" {
		t.Fatalf("got %q first", g[0].Data)
	}
}
