// Package outage tracks whether a bus is connected to its broker, for the
// adapters: it logs when the connection is lost and when it is back, with
// how long the bus was away, and counts the reconnections in the bus's
// queue.Counters.
package outage

import (
	"log/slog"
	"sync"
	"time"

	"github.com/siobridge/siobridge/queue"
)

// Tracker is the connection state of one bus. The zero value is not
// usable: set Log, Bus, URL and Counters.
type Tracker struct {
	Log      *slog.Logger
	Bus      string // "redis", "amqp", "nats": the log messages' prefix
	URL      string // the broker URL without password
	Counters *queue.Counters

	mu    sync.Mutex
	down  bool
	since time.Time
}

// Lost records that the broker connection is lost. Only the first call of
// an outage logs; it reports whether this call started the outage.
func (t *Tracker) Lost(err error) bool {
	t.mu.Lock()
	if t.down {
		t.mu.Unlock()
		return false
	}
	t.down, t.since = true, time.Now()
	t.Counters.DownSince.Store(t.since.UnixNano())
	t.mu.Unlock()
	t.Log.Warn(t.Bus+": lost the broker; reconnecting", "url", t.URL, "err", err)
	return true
}

// Back records that the broker connection is up again after Lost: it
// counts a reconnection and logs how long the bus was away. It does
// nothing when no outage was recorded.
func (t *Tracker) Back() {
	t.mu.Lock()
	if !t.down {
		t.mu.Unlock()
		return
	}
	t.down = false
	away := time.Since(t.since)
	t.Counters.DownNanos.Add(int64(away))
	t.Counters.DownSince.Store(0)
	t.mu.Unlock()
	t.Counters.Reconnects.Add(1)
	t.Log.Info(t.Bus+": broker connection back", "url", t.URL, "away", away.Round(time.Millisecond))
}

// Down reports whether an outage is under way.
func (t *Tracker) Down() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down
}
