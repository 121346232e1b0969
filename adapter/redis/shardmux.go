package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/queue"
)

// DefaultShardQueueBytes is the default bound of the messages waiting for
// the handler of one sharded subscription (WithShardQueueBytes). Sharded
// subscriptions share one connection per shard: a slow handler must not
// hold up the others, so what does not fit is dropped, counted
// (Bus.ShardDropped) and logged, as go-redis drops the messages of a
// classic subscription whose handler does not keep up.
const DefaultShardQueueBytes = 4 << 20

// DefaultShardQueueTotalBytes bounds the messages waiting for the handlers
// of all the sharded subscriptions of one bus together (a server holds one
// subscription per room), so that many stalled handlers cannot add up:
// beyond it, messages are dropped and counted as with one full queue.
const DefaultShardQueueTotalBytes = 64 << 20

// msgOverhead is what one queued message counts beyond its channel name
// and data.
const msgOverhead = 64

// WithShardQueueBytes bounds the messages waiting for the handler of one
// sharded subscription (default DefaultShardQueueBytes).
func WithShardQueueBytes(n int) Option { return func(c *config) { c.shardQueue = n } }

// WithShardQueueTotalBytes bounds the messages waiting for the handlers of
// all the bus's sharded subscriptions together (default
// DefaultShardQueueTotalBytes).
func WithShardQueueTotalBytes(n int) Option { return func(c *config) { c.shardTotal = n } }

// ShardDropped returns how many sharded messages were dropped because the
// handler of their subscription had DefaultShardQueueBytes (or the
// WithShardQueueBytes bound) waiting already, or all the handlers together
// DefaultShardQueueTotalBytes (WithShardQueueTotalBytes).
func (b *Bus) ShardDropped() uint64 { return b.mux.dropped.Load() }

// shardMux carries every sharded subscription of a bus on one PubSub per
// shard (the master of a cluster, or the one server), adding channels
// with SSUBSCRIBE and removing them with SUNSUBSCRIBE on the live
// connection, reference-counted per channel. All its state is guarded by
// mu; the Redis writes done under mu are single commands on an open
// connection (or its dial).
type shardMux struct {
	b        *Bus
	maxQ     int
	mu       sync.Mutex
	conns    map[string]*shardConn // by node address ("": the bus's server)
	chans    map[string]*shardChan
	kick     chan struct{} // wakes the mover
	reload   atomic.Bool   // the mover reads the cluster's slot map first
	readers  sync.WaitGroup
	dropped  atomic.Uint64
	queued   atomic.Int64 // bytes waiting in every inbox
	maxTotal int64        // their bound (WithShardQueueTotalBytes)
}

// shardChan is one channel and the subscriptions that want it.
type shardChan struct {
	name string
	conn *shardConn // nil: to be (re)subscribed by the mover
	subs []*subscriber
	ok   bool          // the conn's node confirmed it
	wait chan struct{} // closed when confirmed or refused (a new one for each move)
	err  error         // the refusal
}

// shardConn is the PubSub of one shard.
type shardConn struct {
	addr    string
	ps      *goredis.PubSub
	n       int            // channels placed on it
	expect  map[string]int // SUNSUBSCRIBE answers due to our own requests
	pending []string       // SSUBSCRIBE sent, answer awaited, in order
	closed  bool
	broken  atomic.Bool // the last receive failed (not an answer of the node)
}

func newShardMux(b *Bus, maxQ, total int) *shardMux {
	if maxQ < 1 {
		maxQ = DefaultShardQueueBytes
	}
	if total < 1 {
		total = DefaultShardQueueTotalBytes
	}
	return &shardMux{b: b, maxQ: maxQ, maxTotal: int64(total), conns: map[string]*shardConn{}, chans: map[string]*shardChan{}, kick: make(chan struct{}, 1)}
}

func (m *shardMux) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// add subscribes s to its channels (those not yet subscribed by another
// subscription) and waits until Redis confirmed each of them.
func (m *shardMux) add(ctx context.Context, s *subscriber) error {
	s.inbox = &inbox{max: m.maxQ, total: &m.queued, totalMax: m.maxTotal, wake: make(chan struct{}, 1)}
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go s.run()
	m.mu.Lock()
	var waits []chan struct{}
	var chans []*shardChan
	var err error
	for _, ch := range s.sub.Channels {
		c := m.chans[ch]
		if c == nil {
			c = &shardChan{name: ch}
			m.chans[ch] = c
		}
		if contains(c.subs, s) { // named twice
			continue
		}
		c.subs = append(c.subs, s)
		if c.conn == nil {
			if err = m.place(ctx, c); err != nil {
				break
			}
		}
		waits, chans = append(waits, c.wait), append(chans, c)
	}
	m.mu.Unlock()
	for i := 0; err == nil && i < len(waits); i++ {
		select {
		case <-waits[i]:
			m.mu.Lock()
			err = chans[i].err
			m.mu.Unlock()
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		m.remove(s)
		return fmt.Errorf("redis: subscribe to %s on %s: %w", describe(s.sub), m.b.url, forbidden(err))
	}
	return nil
}

func contains(l []*subscriber, s *subscriber) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// remove ends s: its channels that no other subscription wants are
// unsubscribed (SUNSUBSCRIBE), and its delivery goroutine has ended when
// remove returns.
func (m *shardMux) remove(s *subscriber) {
	m.mu.Lock()
	for _, ch := range s.sub.Channels {
		c := m.chans[ch]
		if c == nil {
			continue
		}
		for i, x := range c.subs {
			if x == s {
				c.subs = append(c.subs[:i], c.subs[i+1:]...)
				break
			}
		}
		if len(c.subs) == 0 {
			delete(m.chans, ch)
			m.unplace(c, true)
		}
	}
	m.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.inbox.take() // what was left no longer counts toward the bus's total
}

// place subscribes c on the connection of its shard, opening it when
// needed. The confirmation comes through the connection's reader.
func (m *shardMux) place(ctx context.Context, c *shardChan) error {
	addr := ""
	var node *goredis.Client
	if cc, ok := m.b.client.(*goredis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, c.name)
		if err != nil {
			return fmt.Errorf("no master for %q: %w", c.name, err)
		}
		node, addr = n, n.Options().Addr
	}
	conn := m.conns[addr]
	if conn == nil {
		conn = &shardConn{addr: addr, expect: map[string]int{}}
		if node != nil {
			conn.ps = node.SSubscribe(ctx)
		} else {
			conn.ps = m.b.client.SSubscribe(ctx)
		}
		m.conns[addr] = conn
		m.readers.Add(1)
		go m.read(conn)
	}
	if c.wait == nil || isClosed(c.wait) {
		c.wait, c.err = make(chan struct{}), nil
	}
	if err := conn.ps.SSubscribe(ctx, c.name); err != nil {
		if conn.n == 0 {
			m.closeConn(conn)
		}
		return err
	}
	c.conn = conn
	conn.n++
	conn.pending = append(conn.pending, c.name)
	return nil
}

// unplace takes c off its connection, with SUNSUBSCRIBE when tell; the
// connection closes with its last channel.
func (m *shardMux) unplace(c *shardChan, tell bool) {
	conn := c.conn
	if conn == nil {
		return
	}
	c.conn, c.ok = nil, false
	conn.n--
	if conn.n == 0 {
		m.closeConn(conn)
		return
	}
	if tell {
		conn.expect[c.name]++
		ctx, cancel := context.WithTimeout(m.b.ctx, 5*time.Second)
		if err := conn.ps.SUnsubscribe(ctx, c.name); err != nil {
			m.b.log.Warn("redis: SUNSUBSCRIBE failed", "url", m.b.url, "channel", c.name, "err", err)
		}
		cancel()
	}
}

func (m *shardMux) closeConn(conn *shardConn) {
	if conn.closed {
		return
	}
	conn.closed = true
	if m.conns[conn.addr] == conn {
		delete(m.conns, conn.addr)
	}
	conn.ps.Close()
}

// drop gives up conn (dead, or its node moved): its channels go to the
// mover.
func (m *shardMux) drop(conn *shardConn) {
	for _, c := range m.chans {
		if c.conn == conn {
			c.conn, c.ok = nil, false
		}
	}
	conn.n = 0
	m.closeConn(conn)
	m.poke()
}

// read passes what conn's node sends to the shard's subscriptions until
// conn closes. Without a word from the node for two health intervals
// (the second after a PING) the connection is given up and its channels
// subscribed again on a new one.
func (m *shardMux) read(conn *shardConn) {
	defer m.readers.Done()
	const health = 5 * time.Second
	silent := 0
	for {
		v, err := conn.ps.ReceiveTimeout(m.b.ctx, health)
		if err != nil {
			if errors.Is(err, goredis.ErrClosed) || m.b.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if silent++; silent >= 2 {
					m.b.log.Warn("redis: sharded Pub/Sub connection silent: reconnecting", "url", m.b.url, "node", conn.addr)
					m.mu.Lock()
					m.drop(conn)
					m.mu.Unlock()
					return
				}
				conn.ps.Ping(m.b.ctx)
				continue
			}
			var re goredis.Error
			if errors.As(err, &re) {
				m.refused(conn, err)
				continue
			}
			// go-redis reconnects (and resubscribes) by itself; on a
			// cluster the mover checks the node still serves the
			// channels (a killed master)
			conn.broken.Store(true)
			m.poke()
			select {
			case <-m.b.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		silent = 0
		conn.broken.Store(false)
		switch v := v.(type) {
		case *goredis.Message:
			m.dispatch(conn, v)
		case *goredis.Subscription:
			m.answered(conn, v)
		}
	}
}

// dispatch queues msg for every subscription of its channel, when it
// came through the connection the channel is on: after a move, what the
// old node still sends (a demoted master gets the new master's messages
// by replication, late) would come out of order.
func (m *shardMux) dispatch(conn *shardConn, msg *goredis.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.chans[msg.Channel]
	if c == nil || c.conn != conn {
		return
	}
	for _, s := range c.subs {
		if !s.inbox.push(queue.Message{Channel: msg.Channel, Data: []byte(msg.Payload), Sharded: true}) {
			if n := m.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, 8...: a slow handler is not a log flood
				m.b.log.Warn("redis: sharded subscription too slow: message dropped", "url", m.b.url, "channel", msg.Channel, "dropped", n, "queue_bytes", m.maxQ)
			}
		}
	}
}

// answered handles a (un)subscription answer of conn's node.
func (m *shardMux) answered(conn *shardConn, sub *goredis.Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.chans[sub.Channel]
	switch sub.Kind {
	case "ssubscribe":
		for i, p := range conn.pending {
			if p == sub.Channel {
				conn.pending = append(conn.pending[:i], conn.pending[i+1:]...)
				break
			}
		}
		if c != nil && c.conn == conn && !c.ok {
			c.ok = true
			if !isClosed(c.wait) {
				close(c.wait)
			}
		}
	case "sunsubscribe":
		if conn.expect[sub.Channel] > 0 {
			if conn.expect[sub.Channel]--; conn.expect[sub.Channel] == 0 {
				delete(conn.expect, sub.Channel)
			}
			return
		}
		if c == nil || c.conn != conn {
			return
		}
		// the node no longer serves the channel's slot (resharding,
		// failover): subscribe again where the slot map says
		m.b.log.Warn("redis: a node dropped a sharded subscription (slot moved): subscribing again", "url", m.b.url, "node", conn.addr, "channel", c.name)
		m.unplace(c, true) // and out of go-redis's list, which resubscribes after a reconnection
		m.reload.Store(true)
		m.poke()
	}
}

// refused handles an error answer of conn's node: to a resubscription of
// go-redis after a reconnection (CROSSSLOT: it names every channel in one
// SSUBSCRIBE, which a cluster refuses when they are of several slots), or
// to the oldest SSUBSCRIBE awaiting its answer.
func (m *shardMux) refused(conn *shardConn, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if conn.closed {
		return
	}
	msg := err.Error()
	if len(msg) >= 9 && msg[:9] == "CROSSSLOT" {
		ctx, cancel := context.WithTimeout(m.b.ctx, 5*time.Second)
		defer cancel()
		for _, c := range m.chans {
			if c.conn == conn {
				if err := conn.ps.SSubscribe(ctx, c.name); err != nil {
					m.b.log.Warn("redis: sharded resubscribe failed", "url", m.b.url, "channel", c.name, "err", err)
				}
				conn.pending = append(conn.pending, c.name)
			}
		}
		return
	}
	if len(conn.pending) == 0 {
		m.b.log.Warn("redis: sharded Pub/Sub error", "url", m.b.url, "node", conn.addr, "err", err)
		return
	}
	ch := conn.pending[0]
	conn.pending = conn.pending[1:]
	c := m.chans[ch]
	if c == nil || c.conn != conn {
		return
	}
	m.unplace(c, true)
	if redirected(err) { // a stale slot map: the mover reads it again
		m.reload.Store(true)
		m.poke()
		return
	}
	c.err = err
	if !isClosed(c.wait) {
		close(c.wait)
	}
	delete(m.chans, ch)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// move runs until the bus closes: it subscribes again the channels that
// lost their connection and, on a cluster, moves the channels whose slot
// changed master, at most every 50 ms, and every HealthInterval while
// some fail.
func (m *shardMux) move() {
	defer m.b.wg.Done()
	for {
		select {
		case <-m.b.stop:
			return
		case <-m.kick:
		}
		wait := 50 * time.Millisecond
		if !m.settle() {
			wait = HealthInterval
			m.poke()
		}
		select {
		case <-m.b.stop:
			return
		case <-time.After(wait):
		}
	}
}

// settle places every channel that lost its connection on the connection
// of its slot's master, and on a cluster moves the channels of a failing
// connection (or all after a redirection) whose slot changed master;
// false when some could not be placed.
func (m *shardMux) settle() bool {
	ctx, cancel := context.WithTimeout(m.b.ctx, 5*time.Second)
	defer cancel()
	cc, cluster := m.b.client.(*goredis.ClusterClient)
	reload := m.reload.Swap(false)
	if cluster && reload {
		cc.ReloadState(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ok := true
	if cluster {
		masters := map[uint16]string{}
		moved := map[*shardConn][]*shardChan{}
		for _, c := range m.chans {
			// only on evidence (a MOVED, a dropped channel, a
			// failing node): a slot map read in the middle of a
			// failover may still name the old master, now a replica
			// that hears the channel late, by replication
			if c.conn == nil || !reload && !c.conn.broken.Load() {
				continue
			}
			s := slot(c.name)
			addr, known := masters[s]
			if !known {
				n, err := cc.MasterForKey(ctx, c.name)
				if err != nil {
					ok = false
					continue
				}
				addr = n.Options().Addr
				masters[s] = addr
			}
			if addr != c.conn.addr {
				moved[c.conn] = append(moved[c.conn], c)
			}
		}
		for conn, l := range moved {
			var to []string
			for _, c := range l {
				if a := masters[slot(c.name)]; !slices.Contains(to, a) {
					to = append(to, a)
				}
			}
			m.b.log.Warn("redis: a slot changed master: moving the sharded subscriptions", "url", m.b.url, "from", conn.addr, "to", strings.Join(to, ","), "channels", len(l))
			if len(l) == conn.n { // the whole shard moved (a failover): no SUNSUBSCRIBE to a dead node
				m.drop(conn)
				continue
			}
			for _, c := range l {
				m.unplace(c, true)
			}
		}
	}
	for _, c := range m.chans {
		if c.conn == nil {
			if err := m.place(ctx, c); err != nil {
				ok = false
				m.b.log.Warn("redis: sharded resubscribe failed (tried again)", "url", m.b.url, "channel", c.name, "err", err)
			}
		}
	}
	return ok
}

// restart moves every sharded channel to a new connection (after a
// Sentinel failover: go-redis asks the sentinel for the master when it
// connects). Messages published in between are lost, as in any outage
// of Redis Pub/Sub.
func (m *shardMux) restart() {
	m.mu.Lock()
	for _, conn := range m.conns {
		m.drop(conn)
	}
	m.mu.Unlock()
}

// close waits for the readers (the bus closed every connection).
func (m *shardMux) close() {
	m.mu.Lock()
	for _, conn := range m.conns {
		m.closeConn(conn)
	}
	m.mu.Unlock()
	m.readers.Wait()
}

// inbox is the bounded queue between a shard connection and the handler
// of one sharded subscription.
type inbox struct {
	mu       sync.Mutex
	msgs     []queue.Message
	bytes    int
	max      int
	total    *atomic.Int64 // the bytes of every inbox of the bus
	totalMax int64
	wake     chan struct{}
}

// push queues msg, or reports false when the queue is full.
func (q *inbox) push(msg queue.Message) bool {
	n := len(msg.Channel) + len(msg.Data) + msgOverhead
	q.mu.Lock()
	if q.bytes+n > q.max || q.total.Load()+int64(n) > q.totalMax {
		q.mu.Unlock()
		return false
	}
	q.msgs = append(q.msgs, msg)
	q.bytes += n
	q.total.Add(int64(n))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued message.
func (q *inbox) take() []queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.msgs
	q.total.Add(-int64(q.bytes))
	q.msgs, q.bytes = nil, 0
	return l
}

// run calls the handler of a sharded subscription with its queued
// messages, one at a time, until the subscription stops.
func (s *subscriber) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.inbox.wake:
		}
		for _, msg := range s.inbox.take() {
			select {
			case <-s.stop:
				return
			default:
			}
			s.bus.ctr.Delivered.Add(1)
			s.h(msg)
		}
	}
}
