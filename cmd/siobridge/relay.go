package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

const (
	// maxRecent bounds the digests of relayed messages remembered per side
	// to recognise them when they come back (under 1 MiB per side when
	// full; TestRecentSetMemory).
	maxRecent = 4096
	// recentTTL is how long a relayed message is expected to come back.
	recentTTL = 30 * time.Second
	// publishTimeout bounds one relayed publish.
	publishTimeout = 10 * time.Second
	// maxGrowth and growthSlack bound what one received message may turn
	// into: at most maxGrowth times its size plus growthSlack bytes (a
	// python enter_room is one message per socket and room, so a node
	// REMOTE_JOIN naming many of both would otherwise multiply).
	maxGrowth   = 8
	growthSlack = 64 << 10
)

// side is one end of the bridge: a bus, a dialect and what to receive.
type side struct {
	name   string // "from" or "to", for logs
	bus    queue.Bus
	d      dialect.Dialect
	sub    queue.Subscription
	recent *recentSet // what the bridge published here
}

// newSide takes a copy of d with an identity of its own: a bridge never
// speaks as an emitter or a server of the cluster.
func newSide(name string, bus queue.Bus, d dialect.Dialect, namespaces []string, nodeRequests bool) *side {
	if m, ok := d.(dialect.Member); ok {
		d = m.NewMember()
	}
	return &side{name: name, bus: bus, d: d, sub: subscription(d, namespaces, nodeRequests), recent: newRecentSet(maxRecent, recentTTL)}
}

// subscription is what the bridge receives from d: python's one channel;
// for node the broadcast channels of each namespace, and with
// nodeRequests the request channels too (room operations of
// @socket.io/redis-emitter; the bridge is then counted as a server by
// PUBSUB NUMSUB).
func subscription(d dialect.Dialect, namespaces []string, nodeRequests bool) queue.Subscription {
	nd, ok := d.(*node.Dialect)
	if !ok {
		return d.ReplySubscription("/")
	}
	var sub queue.Subscription
	for _, ns := range namespaces {
		s := nd.ServerSubscription(ns)
		sub.Patterns = append(sub.Patterns, s.Patterns...)
		if nodeRequests {
			for _, c := range s.Channels {
				if strings.HasPrefix(c, nd.Key()+"-request#") {
					sub.Channels = append(sub.Channels, c)
				}
			}
		}
	}
	return sub
}

func isPython(d dialect.Dialect) bool { return strings.HasPrefix(d.Name(), "python") }

// Stats counts what a relay did, per direction.
type Stats struct {
	Relayed     uint64 // ops published on the other side
	Echoes      uint64 // the bridge's own messages back from the queue (dropped)
	Malformed   uint64 // messages that could not be decoded (dropped)
	Unsupported uint64 // ops not relayed: kinds no target can take, or the target dialect cannot express
	PublishErrs uint64 // relayed publishes that failed (logged)
}

type counters struct{ relayed, echoes, malformed, unsupported, publishErrs atomic.Uint64 }

func (c *counters) snapshot() Stats {
	return Stats{c.relayed.Load(), c.echoes.Load(), c.malformed.Load(), c.unsupported.Load(), c.publishErrs.Load()}
}

// relay copies every broadcast and room operation between two sides.
type relay struct {
	log    *slog.Logger
	a, b   *side
	oneWay bool
	ab, ba counters
	once   sync.Map // log keys already logged
	ctx    context.Context
	cancel context.CancelFunc
	subs   []queue.Subscriber
}

func newRelay(log *slog.Logger, a, b *side, oneWay bool) *relay {
	ctx, cancel := context.WithCancel(context.Background())
	return &relay{log: log, a: a, b: b, oneWay: oneWay, ctx: ctx, cancel: cancel}
}

// start subscribes both sides (only a with oneWay).
func (r *relay) start(ctx context.Context) error {
	s, err := r.a.bus.Subscribe(ctx, r.a.sub, func(m queue.Message) { r.handle(r.a, r.b, &r.ab, m) })
	if err != nil {
		return fmt.Errorf("siobridge: subscribe (from): %w", err)
	}
	r.subs = append(r.subs, s)
	if r.oneWay {
		return nil
	}
	s, err = r.b.bus.Subscribe(ctx, r.b.sub, func(m queue.Message) { r.handle(r.b, r.a, &r.ba, m) })
	if err != nil {
		r.close()
		return fmt.Errorf("siobridge: subscribe (to): %w", err)
	}
	r.subs = append(r.subs, s)
	return nil
}

func (r *relay) close() {
	r.cancel()
	for _, s := range r.subs {
		s.Close()
	}
	r.subs = nil
}

// logOnce logs msg the first time key is seen.
func (r *relay) logOnce(key, msg string, args ...any) {
	if _, seen := r.once.LoadOrStore(key, true); !seen {
		r.log.Warn(msg, args...)
	}
}

// handle relays one message received on from to to.
func (r *relay) handle(from, to *side, c *counters, m queue.Message) {
	if from.recent.take(digest(m)) {
		c.echoes.Add(1)
		return
	}
	o, err := from.d.Decode(m)
	switch {
	case errors.Is(err, dialect.ErrUnsupported):
		c.unsupported.Add(1)
		r.logOnce(from.name+" undecodable", "siobridge: messages of a kind the bridge does not relay are dropped (logged once)", "side", from.name, "err", err)
		return
	case err != nil:
		c.malformed.Add(1)
		r.logOnce(from.name+" malformed", "siobridge: malformed messages are counted and dropped (logged once)", "side", from.name, "bytes", len(m.Data), "err", err)
		return
	}
	o, why := relayable(o, from.d, to.d)
	if o == nil {
		c.unsupported.Add(1)
		r.logOnce(from.name+" kind "+why, "siobridge: not relayed (logged once per kind)", "from", from.d.Name(), "to", to.d.Name(), "why", why)
		return
	}
	if n := pairs(o); isPython(to.d) && n*64 > maxGrowth*len(m.Data)+growthSlack {
		// refused before encoding: python writes one message (>= 64
		// bytes) per socket and room
		r.tooLarge(c, from, to, o, len(m.Data), n*64, n)
		return
	}
	msgs, err := to.d.Encode(o)
	if err != nil {
		c.unsupported.Add(1)
		r.logOnce(to.name+" encode "+o.Kind(), "siobridge: the target dialect cannot express this op; not relayed (logged once per kind)", "op", o.Kind(), "to", to.d.Name(), "err", err)
		return
	}
	size := 0
	for _, msg := range msgs {
		size += len(msg.Channel) + len(msg.Data)
	}
	if size > maxGrowth*len(m.Data)+growthSlack {
		r.tooLarge(c, from, to, o, len(m.Data), size, len(msgs))
		return
	}
	if !r.oneWay { // what comes back on to is relayed back unless recognised
		for _, msg := range msgs {
			to.recent.add(digest(msg))
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, publishTimeout)
	defer cancel()
	if err := to.bus.Publish(ctx, msgs...); err != nil {
		c.publishErrs.Add(1)
		r.log.Warn("siobridge: publish failed", "side", to.name, "op", o.Kind(), "err", err)
		return
	}
	c.relayed.Add(1)
}

// tooLarge counts and logs (once per kind) an op that would grow too much.
func (r *relay) tooLarge(c *counters, from, to *side, o op.Op, received, encoded, msgs int) {
	c.unsupported.Add(1)
	r.logOnce(to.name+" too large "+o.Kind(), "siobridge: an op would grow too much in the target dialect; not relayed (logged once per kind)",
		"op", o.Kind(), "from", from.d.Name(), "to", to.d.Name(), "received_bytes", received, "encoded_bytes", encoded, "messages", msgs)
}

// pairs is the number of (socket, room) pairs of a join or leave.
func pairs(o op.Op) int {
	switch x := o.(type) {
	case *op.Join:
		return len(x.Target.Rooms) * len(x.Rooms)
	case *op.Leave:
		return len(x.Target.Rooms) * len(x.Rooms)
	}
	return 0
}

// relayable returns the op to publish on the other side, or nil and why
// not: broadcasts and room operations are relayed; acknowledgements only
// between python dialects (python-socketio routes the callback by host
// id, which the bridge keeps); everything else (requests and replies of
// node clusters) stays in its cluster.
func relayable(o op.Op, from, to dialect.Dialect) (op.Op, string) {
	bothPython := isPython(from) && isPython(to)
	switch x := o.(type) {
	case *op.Emit:
		if x.Ack != nil && !bothPython {
			c := *x
			c.Ack = nil
			return &c, ""
		}
		return x, ""
	case *op.Join, *op.Leave, *op.Disconnect, *op.CloseRoom:
		return o, ""
	case *op.AckReply:
		if bothPython {
			return o, ""
		}
	}
	return nil, o.Kind()
}

func digest(m queue.Message) [16]byte {
	h := sha256.New()
	h.Write([]byte(m.Channel))
	h.Write([]byte{0})
	h.Write(m.Data)
	var sum [sha256.Size]byte
	var d [16]byte // 128 bits: collisions are not a practical concern
	copy(d[:], h.Sum(sum[:0]))
	return d
}

// recentSet remembers the digests of published messages, each to be taken
// once when it comes back, for at most ttl and at most max entries (the
// oldest are forgotten first). Takes are attributed to the oldest entries
// of their digest, as evictions are, so two counters per digest suffice.
type recentSet struct {
	mu     sync.Mutex
	max    int
	ttl    time.Duration
	ring   []recentEntry // circular, allocated on first use
	head   int           // oldest entry
	n      int           // entries in ring
	counts map[[16]byte]recentCount
	now    func() time.Time
}

type recentEntry struct {
	d   [16]byte
	exp int64 // unix nanoseconds
}

type recentCount struct {
	live  uint32 // entries not taken yet
	taken uint32 // entries taken, still in the ring
}

func newRecentSet(max int, ttl time.Duration) *recentSet {
	return &recentSet{max: max, ttl: ttl, counts: map[[16]byte]recentCount{}, now: time.Now}
}

func (s *recentSet) add(d [16]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	if s.ring == nil {
		s.ring = make([]recentEntry, s.max)
	}
	if s.n == s.max {
		s.dropOldestLocked()
	}
	s.ring[(s.head+s.n)%s.max] = recentEntry{d: d, exp: now.Add(s.ttl).UnixNano()}
	s.n++
	c := s.counts[d]
	c.live++
	s.counts[d] = c
}

// take reports whether d was added and not taken yet, and takes it.
func (s *recentSet) take(d [16]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	c, ok := s.counts[d]
	if !ok || c.live == 0 {
		return false
	}
	c.live--
	c.taken++
	s.counts[d] = c
	return true
}

func (s *recentSet) expireLocked(now time.Time) {
	t := now.UnixNano()
	for s.n > 0 && t > s.ring[s.head].exp {
		s.dropOldestLocked()
	}
}

func (s *recentSet) dropOldestLocked() {
	e := s.ring[s.head]
	s.head = (s.head + 1) % s.max
	s.n--
	c := s.counts[e.d]
	if c.taken > 0 {
		c.taken--
	} else if c.live > 0 {
		c.live--
	}
	if c.live == 0 && c.taken == 0 {
		delete(s.counts, e.d)
	} else {
		s.counts[e.d] = c
	}
}

// len is the number of remembered entries (taken ones included until
// they are forgotten).
func (s *recentSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
