package server

import (
	"testing"
	"time"

	"github.com/siobridge/siobridge/server/parser"
)

// BenchmarkBroadcastCounters is what Stats adds to one broadcast (and to
// one event sent): the counters and the sampled clock readings, alone,
// so that their cost can be compared with BenchmarkBroadcast's without
// the noise of a whole broadcast.
func BenchmarkBroadcastCounters(b *testing.B) {
	var c serverCounters
	b.Run("broadcast", func(b *testing.B) {
		for range b.N {
			c.broadcast(1, c.startBroadcast(false, time.Time{}), false)
		}
	})
	b.Run("event", func(b *testing.B) {
		for range b.N {
			c.sent(parser.Event)
		}
	})
}
