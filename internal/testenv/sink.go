package testenv

import (
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
