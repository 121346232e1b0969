package server

import (
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/server/parser"
)

// Stats is a snapshot of what a server counts about itself (Server.Stats),
// for monitoring: the counters only grow (from the server's start), the
// gauges are read when Stats is called. Package server/metrics exports
// them to Prometheus.
//
// Counting costs an atomic addition or two per event and per broadcast
// (not per recipient), and two clock readings per sampled broadcast
// (LatencySampling); the gauges cost
// nothing until Stats is called, which then walks the namespaces and the
// Engine.IO sessions (O(namespaces + sessions), meant for a scrape every
// few seconds, not for a hot path).
type Stats struct {
	// EventsIn counts the EVENT packets received from clients (all
	// namespaces, handled or not).
	EventsIn uint64
	// EventsOut counts the EVENT packets queued to clients, one per
	// recipient: Socket.Emit, EmitWithAck, Send and SendJSON count one,
	// a broadcast counts its Deliveries.
	EventsOut uint64
	// Broadcasts counts the broadcasts this server performed for its own
	// clients: Namespace.Emit, Broadcast.Emit, Server.Emit and the emits
	// that arrive from the queue (WithAdapter, ConsumeQueue), whether or
	// not they matched a client.
	Broadcasts uint64
	// Deliveries counts the packets that broadcasts queued to sockets (a
	// broadcast to three sockets counts three). Volatile broadcasts'
	// skipped sockets are not counted.
	Deliveries uint64
	// Connects counts the namespace connections accepted (CONNECT
	// answered with its sid); ConnectErrors those refused with
	// CONNECT_ERROR (a middleware or connect handler said no, unknown
	// namespace, too many namespaces).
	Connects, ConnectErrors uint64

	// Polling and WebSocket are the Engine.IO sessions open now by
	// transport (a session being upgraded counts as polling until the
	// upgrade completes).
	Polling, WebSocket int
	// Sockets is the namespace connections open now, over all namespaces.
	Sockets int
	// Namespaces is the number of namespaces that exist now ("/" always).
	Namespaces int
	// Rooms is the number of rooms with at least one socket now, summed
	// over the namespaces; each socket's own room (its id) is not counted.
	Rooms int

	// Queue is QueueStats: what the server did with the queue's messages.
	Queue QueueStats

	// Recovery counts what connection state recovery did with the
	// sessions of disconnected clients (WithConnectionStateRecovery).
	Recovery RecoveryStats

	// LocalLatency and QueueLatency are the broadcast delivery latencies
	// of a sample of the broadcasts (see LatencySampling, LatencyBuckets): LocalLatency for broadcasts made through the
	// server's API, from the call of Emit on this server to the moment
	// the packet is queued to the last selected socket; QueueLatency for
	// emits received from the queue (WithAdapter, ConsumeQueue), from the
	// moment the bus handed the message to the server (before decoding)
	// to the moment the packet is queued to the last selected socket.
	// Queued means handed to the socket's Engine.IO send queue, not
	// written to the network. Broadcasts that selected no socket are not
	// observed. The time the message spent in the broker and in the
	// emitter's process is not included: messages carry no send time.
	LocalLatency, QueueLatency Histogram
}

// RecoveryStats counts the sessions of connection state recovery
// (Stats.Recovery).
type RecoveryStats struct {
	// Saved counts the sessions kept as their client dropped (for a
	// recoverable reason); NotSaved those its RecoveryStore refused or
	// failed to keep: its byte bound reached, its broker unreachable, or
	// past RecoveryStoreTimeout. Their client gets a fresh session when
	// it comes back. (The default store keeps every session it is given
	// and drops the oldest when full: those are not counted.)
	Saved, NotSaved uint64
	// Restored counts the clients that came back and got their session.
	Restored uint64
}

// Received is the number of queue messages the server received: each is
// counted in exactly one of the other fields.
func (q QueueStats) Received() uint64 {
	return q.Applied + q.Malformed + q.Unsupported + q.Own + q.Replies
}

// LatencySampling is how many broadcasts the delivery latency histograms
// see one of: the first, then one in LatencySampling of the broadcasts
// made through the API (the 1st, 17th, 33rd... broadcast of the server,
// when it is one of them), and the 1st, 17th, 33rd... message received
// from the queue (when it is an emit). Reading the clock twice costs
// 250 to 400 ns on the virtual machines where this was measured
// (kvm-clock), a third of a broadcast to one socket; sampled, it is lost
// in the noise. The histograms' counts are therefore about
// 1/LatencySampling of the broadcasts.
const LatencySampling = 16

// LatencyBuckets are the upper bounds of the buckets of the delivery
// latency histograms (Stats.LocalLatency, Stats.QueueLatency), from 10 µs
// to 2.5 s; slower deliveries go to a last bucket without bound.
var LatencyBuckets = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond,
}

// Histogram is a snapshot of a latency histogram.
type Histogram struct {
	// Count is the number of observations, Sum their total.
	Count uint64
	Sum   time.Duration
	// Buckets[i] counts the observations of at most LatencyBuckets[i] and
	// more than LatencyBuckets[i-1] (not cumulative); the last entry counts
	// those over the last bound.
	Buckets [len(LatencyBuckets) + 1]uint64
}

// counter is an atomic counter alone on its cache line, so that counters
// bumped by different goroutines (read loops, broadcasters) do not slow
// each other down.
type counter struct {
	atomic.Uint64
	_ [56]byte
}

// histogram is a latency histogram updated atomically.
type histogram struct {
	count, sum counter
	buckets    [len(LatencyBuckets) + 1]atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(uint64(max(d, 0)))
	h.count.Add(1)
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Count: h.count.Load(), Sum: time.Duration(h.sum.Load())}
	for i := range h.buckets {
		out.Buckets[i] = h.buckets[i].Load()
	}
	return out
}

// serverCounters are the counters behind Stats.
type serverCounters struct {
	eventsIn, eventsOut, broadcasts, deliveries, connects, connectErrors counter
	sessionsSaved, sessionsNotSaved, sessionsRestored                    counter
	queueSeq                                                             counter // queue messages, for sampling
	local, queue                                                         histogram
}

// sent counts a packet of type t sent to one client.
func (c *serverCounters) sent(t parser.Type) {
	switch t {
	case parser.Event, parser.BinaryEvent:
		c.eventsOut.Add(1)
	case parser.Connect:
		c.connects.Add(1)
	case parser.ConnectError:
		c.connectErrors.Add(1)
	}
}

// startBroadcast counts a broadcast and returns the start of its latency
// observation, or the zero time when it is not sampled: the time the
// queue message arrived (received, zero when not sampled), or now for one
// broadcast in LatencySampling of the others.
func (c *serverCounters) startBroadcast(fromQueue bool, received time.Time) time.Time {
	n := c.broadcasts.Add(1)
	switch {
	case fromQueue:
		return received
	case n%LatencySampling == 1:
		return time.Now()
	}
	return time.Time{}
}

// queueReceipt is the time a queue message arrived for one message in
// LatencySampling, else the zero time.
func (c *serverCounters) queueReceipt() time.Time {
	if c.queueSeq.Add(1)%LatencySampling == 1 {
		return time.Now()
	}
	return time.Time{}
}

// broadcast records that a broadcast queued its packet to delivered
// sockets; start is its startBroadcast, fromQueue tells which histogram.
func (c *serverCounters) broadcast(delivered int, start time.Time, fromQueue bool) {
	if delivered == 0 {
		return
	}
	c.deliveries.Add(uint64(delivered))
	if start.IsZero() { // not sampled
		return
	}
	if fromQueue {
		c.queue.observe(time.Since(start))
	} else {
		c.local.observe(time.Since(start))
	}
}

// Stats returns the server's counters and gauges; see Stats.
func (s *Server) Stats() Stats {
	st := Stats{
		EventsIn:      s.stats.eventsIn.Load(),
		Broadcasts:    s.stats.broadcasts.Load(),
		Deliveries:    s.stats.deliveries.Load(),
		Connects:      s.stats.connects.Load(),
		ConnectErrors: s.stats.connectErrors.Load(),
		Queue:         s.QueueStats(),
		Recovery: RecoveryStats{Saved: s.stats.sessionsSaved.Load(), NotSaved: s.stats.sessionsNotSaved.Load(),
			Restored: s.stats.sessionsRestored.Load()},
		LocalLatency: s.stats.local.snapshot(),
		QueueLatency: s.stats.queue.snapshot(),
	}
	st.EventsOut = s.stats.eventsOut.Load() + st.Deliveries
	st.Polling, st.WebSocket = s.eio.CountByTransport()
	s.mu.RLock()
	nsps := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		nsps = append(nsps, n)
	}
	s.mu.RUnlock()
	st.Namespaces = len(nsps)
	for _, n := range nsps {
		n.mu.RLock()
		st.Sockets += len(n.sockets)
		st.Rooms += len(n.rooms)
		n.mu.RUnlock()
	}
	return st
}
