// Package emitter emits to Socket.IO clients through a message queue,
// without running a Socket.IO server: the Go equivalent of a Celery worker
// using Flask-SocketIO's write-only SocketIO(message_queue=...), of
// python-socketio's RedisManager(write_only=True) and of Node's
// @socket.io/redis-emitter.
//
// An Emitter combines a queue.Bus (adapter/redis, adapter/amqp,
// adapter/nats) with a dialect.Dialect (dialect/python, dialect/node) that
// decides the bytes. Operators built with Of, To, In and Except select the
// namespace and the sockets; they are immutable and safe to share.
//
//	bus, _ := queue.Open(ctx, "redis://127.0.0.1:6379/0")
//	em := emitter.New(bus, python.NewPickle(python.Options{}))
//	err := em.Of("/chat").To("room1").Emit(ctx, "news", map[string]any{"n": 1})
//
// Acknowledgements travel back through the queue: EmitWithAck subscribes to
// the dialect's reply channels and returns the clients' replies.
package emitter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/bufpool"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// DefaultAckTimeout is how long EmitWithAck waits when no Timeout is set.
const DefaultAckTimeout = 5 * time.Second

// ErrAckTimeout is wrapped by EmitWithAck's error when the timeout ended
// before every expected reply arrived. The replies that did arrive are
// returned with it.
var ErrAckTimeout = errors.New("emitter: acknowledgement timeout")

// ErrClosed is returned by operations on a closed Emitter.
var ErrClosed = errors.New("emitter: closed")

// Emitter publishes ops through a bus in one dialect. It is safe for
// concurrent use.
type Emitter struct {
	bus  queue.Bus
	d    dialect.Dialect
	log  *slog.Logger
	root *Operator

	mu      sync.Mutex
	closed  bool                        // guarded by mu
	isDone  atomic.Bool                 // mirrors closed for the lock-free emit path
	subs    map[string]queue.Subscriber // reply subscriptions by key
	pending map[string]*ackWait         // by ack ID

	published   atomic.Uint64
	publishErrs atomic.Uint64
	malformed   atomic.Uint64
	replies     atomic.Uint64
	ackTimeouts atomic.Uint64
}

// Option configures an Emitter.
type Option func(*Emitter)

// WithLogger sets the logger for dropped reply messages and other
// diagnostics. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(e *Emitter) {
		if l != nil {
			e.log = l
		}
	}
}

// New returns an Emitter that publishes through bus in dialect d. The
// Emitter does not own the bus: closing the Emitter leaves the bus open.
func New(bus queue.Bus, d dialect.Dialect, opts ...Option) *Emitter {
	e := &Emitter{
		bus:     bus,
		d:       d,
		log:     slog.New(slog.DiscardHandler),
		subs:    map[string]queue.Subscriber{},
		pending: map[string]*ackWait{},
	}
	for _, o := range opts {
		o(e)
	}
	e.root = &Operator{e: e, ns: "/"}
	return e
}

// Dialect returns the emitter's dialect.
func (e *Emitter) Dialect() dialect.Dialect { return e.d }

// Stats are the emitter's counters.
type Stats struct {
	Published   uint64 // queue messages published
	PublishErrs uint64 // failed publish calls
	Malformed   uint64 // reply-channel messages that could not be decoded (dropped)
	Replies     uint64 // acknowledgements received and routed
	AckTimeouts uint64 // EmitWithAck calls that ended without every reply
}

// Stats returns a snapshot of the counters.
func (e *Emitter) Stats() Stats {
	return Stats{
		Published:   e.published.Load(),
		PublishErrs: e.publishErrs.Load(),
		Malformed:   e.malformed.Load(),
		Replies:     e.replies.Load(),
		AckTimeouts: e.ackTimeouts.Load(),
	}
}

// Of returns an operator for namespace ns ("/chat"; "chat" means "/chat").
func (e *Emitter) Of(ns string) *Operator { return e.root.Of(ns) }

// To returns an operator for the sockets in any of rooms (room names or
// socket ids), in namespace "/".
func (e *Emitter) To(rooms ...string) *Operator { return e.root.To(rooms...) }

// In is the same as To.
func (e *Emitter) In(rooms ...string) *Operator { return e.root.To(rooms...) }

// Except returns an operator that excludes the sockets in rooms.
func (e *Emitter) Except(rooms ...string) *Operator { return e.root.Except(rooms...) }

// Emit emits event to every socket of namespace "/".
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	return e.root.Emit(ctx, event, args...)
}

// EmitWithAck emits event to every socket of namespace "/" and waits for
// their acknowledgements; see Operator.EmitWithAck.
func (e *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	return e.root.EmitWithAck(ctx, event, args...)
}

// Close ends the reply subscriptions and fails pending EmitWithAck calls.
// The bus stays open. The Emitter cannot be used afterwards.
func (e *Emitter) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.isDone.Store(true)
	subs := e.subs
	e.subs = nil
	pending := e.pending
	e.pending = map[string]*ackWait{}
	e.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range pending {
		w.finish()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("emitter: close: %w", err)
	}
	return nil
}

// publish encodes o and publishes the result.
func (e *Emitter) publish(ctx context.Context, o op.Op) error {
	msgs, err := e.d.Encode(o)
	if err != nil {
		return err
	}
	return e.send(ctx, msgs)
}

// send publishes already encoded messages whose payloads come from
// bufpool: they go back to it once published.
func (e *Emitter) send(ctx context.Context, msgs []queue.Message) error {
	if err := e.sendOwned(ctx, msgs); err != nil {
		return err
	}
	for _, m := range msgs { // published: the payload buffers can be reused
		bufpool.Put(m.Data)
	}
	return nil
}

// sendOwned publishes already encoded messages; their payloads stay the
// caller's.
func (e *Emitter) sendOwned(ctx context.Context, msgs []queue.Message) error {
	if e.isDone.Load() {
		return ErrClosed
	}
	if err := e.bus.Publish(ctx, msgs...); err != nil {
		e.publishErrs.Add(1)
		return err
	}
	e.published.Add(uint64(len(msgs)))
	return nil
}

// subscribeReplies makes sure the reply subscription of namespace ns is live.
func (e *Emitter) subscribeReplies(ctx context.Context, ns string) error {
	sub := e.d.ReplySubscription(ns)
	key := subKey(sub)
	e.mu.Lock()
	defer e.mu.Unlock() // held during Subscribe: only the first ack per namespace waits
	if e.closed {
		return ErrClosed
	}
	if _, ok := e.subs[key]; ok {
		return nil
	}
	s, err := e.bus.Subscribe(ctx, sub, e.onReply)
	if err != nil {
		return fmt.Errorf("subscribe to replies on %s: %w", key, err)
	}
	e.subs[key] = s
	return nil
}

func subKey(s queue.Subscription) string {
	parts := append(append([]string(nil), s.Channels...), s.Patterns...)
	for _, st := range s.Streams {
		parts = append(parts, "stream:"+st)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// onReply routes one message of a reply subscription.
func (e *Emitter) onReply(m queue.Message) {
	o, err := e.d.Decode(m)
	if err != nil {
		if errors.Is(err, dialect.ErrUnsupported) {
			return // well-formed traffic the emitter has no use for
		}
		e.malformed.Add(1)
		e.log.Debug("emitter: dropped undecodable reply-channel message",
			"channel", m.Channel, "bytes", len(m.Data), "err", err)
		return
	}
	switch r := o.(type) {
	case *op.AckReply:
		if r.Host != "" && r.Host != e.d.Origin() {
			return // addressed to another process
		}
		if w := e.waiter(r.ID); w != nil {
			e.replies.Add(1)
			w.addReply(Reply{Sid: r.Sid, Args: r.Args})
		}
	case *op.ClientCount:
		if w := e.waiter(r.ID); w != nil {
			w.addCount(r.Count)
		}
	}
}

func (e *Emitter) waiter(id string) *ackWait {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending[id]
}

// Reply is one client's acknowledgement.
type Reply struct {
	// Sid is the socket that answered, when the dialect says it; empty
	// otherwise.
	Sid string `json:"sid,omitempty"`
	// Args are the acknowledgement arguments.
	Args []any `json:"args"`
}

// ackWait collects the replies of one EmitWithAck call.
type ackWait struct {
	mu sync.Mutex
	// servers is how many servers answer with a client count; -1 when the
	// dialect reports no counts (then one reply completes the call).
	servers int
	counts  int // client-count messages received
	clients int // sum of the client counts
	replies []Reply
	done    chan struct{}
	closed  bool
}

func (w *ackWait) addReply(r Reply) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replies = append(w.replies, r)
	w.check()
}

func (w *ackWait) addCount(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts++
	w.clients += n
	w.check()
}

// check closes done when every expected reply is in. Callers hold mu.
func (w *ackWait) check() {
	if w.closed {
		return
	}
	complete := false
	switch {
	case w.servers < 0:
		complete = len(w.replies) >= 1
	case w.servers > 0:
		complete = w.counts >= w.servers && len(w.replies) >= w.clients
	}
	if complete {
		w.closed = true
		close(w.done)
	}
}

func (w *ackWait) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.done)
	}
}

func (w *ackWait) result() (replies []Reply, complete bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.servers < 0:
		complete = len(w.replies) >= 1
	case w.servers > 0:
		complete = w.counts >= w.servers && len(w.replies) >= w.clients
	default: // unknown number of servers: complete if anything answered
		complete = len(w.replies) > 0
	}
	return append([]Reply(nil), w.replies...), complete
}

// serverCounter is implemented by dialects whose servers report how many
// clients they asked for an acknowledgement (node): each server subscribes
// to ServerCountChannel (counted with PUBSUB NUMSUB).
type serverCounter interface {
	ServerCountChannel(ns string) string
}

// shardedServerCounter is the same for dialects on sharded Pub/Sub
// (node-sharded: counted with PUBSUB SHARDNUMSUB over the masters).
type shardedServerCounter interface {
	ShardedServerCountChannel(ns string) string
}

// shardSubscriberCounter is a bus that counts sharded subscribers (Redis).
type shardSubscriberCounter interface {
	NumShardSub(ctx context.Context, channel string) (int, error)
}

// serverCount returns the channel every server of ns subscribes to, and
// the bus's way of counting its subscribers (nil when the bus cannot);
// "" when the dialect's servers do not report client counts.
func (e *Emitter) serverCount(ns string) (string, func(context.Context, string) (int, error)) {
	if sc, ok := e.d.(shardedServerCounter); ok {
		if c, ok := e.bus.(shardSubscriberCounter); ok {
			return sc.ShardedServerCountChannel(ns), c.NumShardSub
		}
		return sc.ShardedServerCountChannel(ns), nil
	}
	if sc, ok := e.d.(serverCounter); ok {
		if c, ok := e.bus.(queue.SubscriberCounter); ok {
			return sc.ServerCountChannel(ns), c.NumSub
		}
		return sc.ServerCountChannel(ns), nil
	}
	return "", nil
}
