package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server/parser"
)

// Defaults of the cluster member.
const (
	// publishTimeout bounds one publish of a broadcast or room operation.
	publishTimeout = 10 * time.Second
	// defaultAckTimeout is how long acknowledgements are awaited when
	// neither the caller's context nor the request says.
	defaultAckTimeout = 30 * time.Second
	// maxRemoteAckWaits bounds the acknowledgement requests of other
	// processes that this server waits on at once (one goroutine and one
	// entry per asked socket each); beyond it, events are delivered
	// without asking for acknowledgements, and logged.
	maxRemoteAckWaits = 1024
)

type adapterConfig struct {
	bus queue.Bus
	d   dialect.Dialect
}

// WithAdapter makes the server one node of a cluster: every broadcast and
// room operation made through the server's API (Namespace.Emit,
// Broadcast.Emit, Socket.To(..).Emit, Except, Volatile, SocketsJoin,
// SocketsLeave, DisconnectSockets, CloseRoom, EmitWithAck) reaches the
// matching clients of every node exactly once, and the server performs
// what other processes publish for its clients (other nodes, emitter.Emitter,
// sioemit, python-socketio and Node peers of the same dialect), answering
// their acknowledgement requests.
//
// d decides the wire format and the channel (python.New(python.Options{Channel:
// "my-app"}), node.New(node.Options{Key: "socket.io"}), ...). The server
// never uses d's own identity: it takes a copy with a fresh random host id
// or uid (dialect.Member), so the default dialect values, which carry an
// emitter's identity, are fine. The bus is not owned: Shutdown leaves it
// open.
//
// What each dialect allows, as its peers do:
//   - python dialects: the node delivers to its own clients, then
//     publishes; every other node delivers on receipt and skips its own
//     host id (python-socketio >= 5.10; older peers deliver on receipt
//     everywhere, which also gives each client the event once). The
//     pickle dialect's close-room and disconnect messages carry no host
//     id, so they are performed again when they come back: harmless,
//     except that a socket joining the room in between leaves it again. Except must name socket ids (skip_sid). EmitWithAck needs one
//     room or socket id and no Except, and completes with the first
//     answer (python-socketio's callbacks). SocketsJoin/SocketsLeave and
//     DisconnectSockets of other nodes' sockets need socket ids; the pickle
//     dialect (python-socketio < 5.10) cannot join or leave remote sockets.
//   - node dialect (@socket.io/redis-adapter 8): the node delivers to its
//     own clients, publishes, and ignores its own uid; EmitWithAck counts
//     the servers with PUBSUB NUMSUB (Redis) and each client's first
//     acknowledgement argument comes back. Needs a bus with pattern
//     subscriptions (Redis, in-memory).
//
// Operations the dialect cannot express return an error wrapping
// dialect.ErrUnsupported and do nothing. A node publishes its operations
// in the order they were made. Broadcasts (Emit) do not wait for the
// broker, as Node's adapter does: Emit returns once this node's clients
// are served and the broadcast is queued; a publish that fails later is
// counted in QueueStats().PublishErrs and logged, and while the broker is
// slow or away at most MaxPublishBacklog bytes wait (beyond it Emit
// returns ErrPublishBacklog). Every other operation (SocketsJoin,
// SocketsLeave, DisconnectSockets, CloseRoom, EmitWithAck, ServerSideEmit,
// FetchSockets, AllRooms) waits for its publish, after the broadcasts made
// before it; when that fails, this node's clients were served and the
// error says the other nodes may not have been. Selections made only of socket
// ids connected to this node stay local (nothing is published).
//
// Subscribing happens in the background, per namespace as namespaces are
// created; AdapterReady waits for it and BusConnected reports it.
func WithAdapter(bus queue.Bus, d dialect.Dialect) Option {
	return func(c *config) { c.adapter = &adapterConfig{bus: bus, d: d} }
}

// member is this server as a process of a cluster: it decodes what the
// queue brings, publishes what the server's API does (when publishing),
// and answers the requests of other processes.
type member struct {
	s          *Server
	bus        queue.Bus
	d          dialect.Dialect
	self       string
	publishing bool // false for ConsumeQueue's receive-only members

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	wanted  map[string]queue.Subscription // by subKey
	refs    map[string]int                // namespaces (or rooms) per wanted subscription
	subs    map[string]queue.Subscriber
	failed  map[string]error // subscriptions that cannot work (patterns unsupported)
	lastErr error
	changed chan struct{} // closed when subscriptions change
	wake    chan struct{}
	waits   map[string]*ackWait

	inFlight atomic.Int64 // requests of other processes being answered
	pub      *publisher   // publishing members: their operations, in order
}

func newMember(s *Server, c adapterConfig, publishing bool) *member {
	d := c.d
	if md, ok := d.(dialect.Member); ok {
		d = md.NewMember()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{s: s, bus: c.bus, d: d, self: d.Origin(), publishing: publishing, ctx: ctx, cancel: cancel,
		wanted: map[string]queue.Subscription{}, refs: map[string]int{}, subs: map[string]queue.Subscriber{}, failed: map[string]error{},
		changed: make(chan struct{}), wake: make(chan struct{}, 1), waits: map[string]*ackWait{}}
	if publishing {
		m.pub = newPublisher(m)
	}
	return m
}

// start starts a publishing member's subscription loop and publisher
// (Server.New, once the server's recovery is bound to the member: the
// loop reads it when its stream subscriptions start).
func (m *member) start() {
	if !m.publishing {
		return
	}
	m.wg.Add(2)
	go m.run()
	go func() {
		defer m.wg.Done()
		m.pub.run()
	}()
}

func originOf(o op.Op) string {
	switch x := o.(type) {
	case *op.Emit:
		return x.Origin
	case *op.Join:
		return x.Origin
	case *op.Leave:
		return x.Origin
	case *op.Disconnect:
		return x.Origin
	case *op.CloseRoom:
		return x.Origin
	case *op.ServerSideEmit:
		return x.Origin
	case *op.FetchSockets:
		return x.Origin
	case *op.AllRooms:
		return x.Origin
	}
	return ""
}

// close stops the member: subscriptions, waits and goroutines.
func (m *member) close() {
	m.cancel()
	m.mu.Lock()
	m.closed = true
	subs := m.subs
	m.subs = map[string]queue.Subscriber{}
	m.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	m.wg.Wait()
}

// spawn runs f on a goroutine of the member; false when the member is
// closed (f does not run).
func (m *member) spawn(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// ------------------------------------------------------ subscriptions

// addNamespace asks for the subscription of namespace ns (a no-op for
// servers without adapter). It never blocks: it is called under s.mu.
// Namespaces that share a subscription (the python dialects' one channel)
// count as references to it.
func (m *member) addNamespace(ns string) {
	if m == nil || !m.publishing {
		return
	}
	m.want(QueueSubscription(m.d, ns))
}

// removeNamespace drops the subscription of namespace ns (a dynamic
// namespace removed when empty) once no other namespace needs it, so that
// the names clients invent cannot grow the subscriptions without bound.
// It never blocks on the bus: the subscriber is closed on its own goroutine.
func (m *member) removeNamespace(ns string) {
	if m == nil || !m.publishing {
		return
	}
	m.unwant(QueueSubscription(m.d, ns))
}

// roomSubscriber is implemented by dialects whose servers subscribe to a
// channel per room they hold (node-sharded in its dynamic modes).
type roomSubscriber interface {
	RoomSubscription(ns, room string, private bool) (queue.Subscription, bool)
}

// roomCreated subscribes to the channel of room in namespace ns, when the
// dialect has room channels: the room now has a member on this server
// (private: the room is the id of a socket of this server). It never
// blocks: it is called under the namespace's lock. There is one
// subscription per room held, so rooms cost what the bus charges for a
// subscription (on the Redis bus, an SSUBSCRIBE on the shard's shared
// connection each); they are bounded by the sockets and the rooms per
// socket the server accepts.
func (m *member) roomCreated(ns, room string, private bool) {
	if m == nil || !m.publishing {
		return
	}
	if rs, ok := m.d.(roomSubscriber); ok {
		if sub, ok := rs.RoomSubscription(ns, room, private); ok {
			m.want(sub)
		}
	}
}

// roomDeleted drops what roomCreated subscribed: the last member of room
// on this server left it. It never blocks.
func (m *member) roomDeleted(ns, room string, private bool) {
	if m == nil || !m.publishing {
		return
	}
	if rs, ok := m.d.(roomSubscriber); ok {
		if sub, ok := rs.RoomSubscription(ns, room, private); ok {
			m.unwant(sub)
		}
	}
}

// want adds a reference to sub, which run subscribes in the background.
func (m *member) want(sub queue.Subscription) {
	key := subKey(sub)
	m.mu.Lock()
	if _, ok := m.wanted[key]; !ok {
		m.wanted[key] = sub
	}
	m.refs[key]++
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// unwant drops a reference to sub, and the subscription with the last one
// (closed on its own goroutine).
func (m *member) unwant(sub queue.Subscription) {
	key := subKey(sub)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refs[key]--; m.refs[key] > 0 {
		return
	}
	delete(m.refs, key)
	delete(m.wanted, key)
	delete(m.failed, key)
	if sub, ok := m.subs[key]; ok {
		delete(m.subs, key)
		if !m.closed {
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				sub.Close()
			}()
		}
	}
	m.notifyLocked()
}

func subKey(s queue.Subscription) string {
	parts := make([]string, 0, len(s.Channels)+len(s.Patterns))
	for _, c := range s.Channels {
		parts = append(parts, "c:"+c)
	}
	for _, p := range s.Patterns {
		parts = append(parts, "p:"+p)
	}
	for _, st := range s.Streams {
		parts = append(parts, "s:"+st)
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// missing returns the wanted subscriptions that are not live.
func (m *member) missing() map[string]queue.Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]queue.Subscription{}
	for k, s := range m.wanted {
		if _, ok := m.subs[k]; !ok && m.failed[k] == nil {
			out[k] = s
		}
	}
	return out
}

func (m *member) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// run subscribes what is wanted, retrying with back-off, until close.
func (m *member) run() {
	defer m.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		retry := false
		for key, sub := range m.missing() {
			ctx, cancel := context.WithTimeout(m.ctx, publishTimeout)
			s, err := m.bus.Subscribe(ctx, sub, m.receive)
			cancel()
			m.mu.Lock()
			_, wanted := m.wanted[key]
			switch {
			case err == nil && m.ctx.Err() != nil:
				m.mu.Unlock()
				s.Close()
				return
			case err == nil && !wanted:
				// its namespace (or room) was removed while subscribing
				m.wg.Add(1)
				go func() {
					defer m.wg.Done()
					s.Close()
				}()
			case err == nil:
				m.subs[key] = s
				m.lastErr = nil
				m.streamsStarted(sub, s)
			case errors.Is(err, queue.ErrPatternsUnsupported):
				m.failed[key] = fmt.Errorf("server: the %s dialect needs pattern subscriptions: %w", m.d.Name(), err)
				m.lastErr = m.failed[key]
			case errors.Is(err, queue.ErrStreamsUnsupported):
				m.failed[key] = fmt.Errorf("server: the %s dialect needs a bus with streams (Redis): %w", m.d.Name(), err)
				m.lastErr = m.failed[key]
			case errors.Is(err, queue.ErrForbidden):
				// retrying cannot help until the broker's permissions change
				m.failed[key] = fmt.Errorf("server: the broker refused the cluster's subscription: %w", err)
				m.lastErr = m.failed[key]
			default:
				m.lastErr = err
				retry = true
			}
			m.notifyLocked()
			m.mu.Unlock()
			if err != nil && m.ctx.Err() == nil {
				m.s.log.Error("server: cluster subscription failed", "dialect", m.d.Name(), "channels", sub.Channels, "patterns", sub.Patterns, "streams", sub.Streams, "err", err)
			}
		}
		var after <-chan time.Time
		if retry {
			after = time.After(backoff)
			backoff = min(2*backoff, 30*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-m.wake:
		case <-after:
		case <-m.ctx.Done():
			return
		}
	}
}

// streamsStarted moves the cut of a recovery log fed by the adapter to
// where the new subscription s starts reading its streams: the entries
// before were not delivered here (a restore reads them from the log), those
// after will be.
func (m *member) streamsStarted(sub queue.Subscription, s queue.Subscriber) {
	sl := m.s.recovery.fed()
	sr, ok := s.(queue.StreamReader)
	if sl == nil || !ok {
		return
	}
	for _, st := range sub.Streams {
		if id, ok := sr.StreamStart(st); ok {
			sl.moved(st, id)
		}
	}
}

// AdapterReady waits until the subscriptions of the adapter (WithAdapter)
// are live for every namespace created so far, so that what other
// processes publish from now on reaches this server. It returns nil at
// once without adapter, and an error when ctx ends first or a
// subscription cannot work (e.g. the node dialect on a bus without
// pattern subscriptions).
func (s *Server) AdapterReady(ctx context.Context) error {
	m := s.member
	if m == nil {
		return nil
	}
	for {
		m.mu.Lock()
		ch := m.changed
		var failed error
		ready := true
		for k := range m.wanted {
			if err := m.failed[k]; err != nil {
				failed = err
			} else if _, ok := m.subs[k]; !ok {
				ready = false
			}
		}
		last := m.lastErr
		m.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case ready:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("server: adapter not ready: %w (last error: %v)", ctx.Err(), last)
			}
			return fmt.Errorf("server: adapter not ready: %w", ctx.Err())
		}
	}
}

// BusConnected reports whether the server is a live member of its
// cluster: an adapter is configured (WithAdapter), every subscription is
// established, and the bus (when it can tell) is connected to its broker.
func (s *Server) BusConnected() bool {
	m := s.member
	if m == nil || m.ctx.Err() != nil {
		return false
	}
	m.mu.Lock()
	for k := range m.wanted {
		if _, ok := m.subs[k]; !ok {
			m.mu.Unlock()
			return false
		}
	}
	m.mu.Unlock()
	if h, ok := m.bus.(queue.HealthReporter); ok {
		return h.Connected()
	}
	return true
}

// ------------------------------------------------------------ receiving

// receive decodes one queue message and performs it.
func (m *member) receive(msg queue.Message) {
	received := m.s.stats.queueReceipt()
	if sl := m.s.recovery.fed(); sl != nil && msg.Stream {
		defer sl.moved(msg.Channel, msg.ID) // every entry read moves the log's cut
	}
	o, err := m.d.Decode(msg)
	if err != nil {
		if errors.Is(err, dialect.ErrUnsupported) {
			m.s.queue.unsupported.Add(1)
			return
		}
		m.s.queue.malformed.Add(1)
		m.s.log.Warn("server: dropped a malformed queue message", "channel", msg.Channel, "bytes", len(msg.Data), "err", err)
		return
	}
	switch m.handle(o, received) {
	case applied:
		m.s.queue.applied.Add(1)
	case own:
		m.s.queue.own.Add(1)
	case reply:
		m.s.queue.replies.Add(1)
	default:
		m.s.queue.unsupported.Add(1)
	}
}

type outcome int

const (
	ignored outcome = iota // not for this server
	applied                // performed on this server's clients
	own                    // this server's own message, back from the queue
	reply                  // an acknowledgement or count routed to a waiting call
)

func (m *member) isOwn(o op.Op) bool {
	origin := originOf(o)
	return origin != "" && origin == m.self
}

// handle performs one decoded op, received at received (for Stats; zero
// when not sampled).
func (m *member) handle(o op.Op, received time.Time) outcome {
	if e, ok := o.(*op.Emit); ok && e.Offset != "" && e.Ack == nil && !e.Volatile {
		if sl := m.s.recovery.fed(); sl != nil { // a logged broadcast: every node delivers it, its sender too
			if err := sl.deliverEmit(m.s, e); err != nil {
				m.s.log.Warn("server: logged emit not delivered", "event", e.Event, "offset", e.Offset, "err", err)
			}
			return applied
		}
	}
	if m.isOwn(o) {
		return own
	}
	switch o := o.(type) {
	case *op.Emit:
		if o.Ack != nil {
			m.answer(o)
			return applied
		}
		if b := m.s.selection(o.Target); b != nil {
			if o.Volatile {
				b = b.Volatile()
			}
			b.fromQueue, b.received = true, received
			if err := b.emitLocal(o.Event, o.Args); err != nil {
				m.s.log.Warn("server: queued emit failed", "event", o.Event, "err", err)
			}
		}
	case *op.Join:
		if b := m.s.selection(o.Target); b != nil {
			b.socketsJoinLocal(o.Rooms)
		}
	case *op.Leave:
		if b := m.s.selection(o.Target); b != nil {
			b.socketsLeaveLocal(o.Rooms)
		}
	case *op.Disconnect:
		if b := m.s.selection(o.Target); b != nil {
			b.disconnectLocal(o.Close)
		}
	case *op.CloseRoom:
		if n := m.s.existing(op.NamespaceOrRoot(o.Namespace)); n != nil {
			n.closeRoomLocal(o.Room)
		}
	case *op.AckReply:
		if o.Host != "" && o.Host != m.self {
			return ignored // addressed to another process
		}
		if w := m.wait(o.ID); w != nil {
			w.add(o.Args, 0, false)
			return reply
		}
		return ignored
	case *op.ClientCount:
		if w := m.wait(o.ID); w != nil {
			w.add(nil, o.Count, true)
			return reply
		}
		return ignored
	case *op.SocketsReply, *op.RoomsReply, *op.ServerSideEmitReply:
		if w := m.wait(answerID(o)); w != nil {
			w.addAnswer(o)
			return reply
		}
		return ignored
	default:
		if m.respond(o) {
			return applied
		}
		return ignored
	}
	return applied
}

// existing returns namespace name if it exists (queue messages never
// create namespaces, dynamic ones included).
func (s *Server) existing(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nsps[name]
}

// selection is the broadcast an op's target describes, or nil when the
// namespace does not exist on this server.
func (s *Server) selection(t op.Target) *Broadcast {
	n := s.existing(op.NamespaceOrRoot(t.Namespace))
	if n == nil {
		return nil
	}
	return &Broadcast{n: n, rooms: t.Rooms, except: t.Except}
}

// answer delivers an emit that asks for acknowledgements to this server's
// clients and publishes their answers (and, for dialects that count, how
// many clients were asked) to the requester.
func (m *member) answer(o *op.Emit) {
	var targets []*Socket
	b := m.s.selection(o.Target)
	if b != nil {
		b.volatile = o.Volatile
		targets = b.targets()
	}
	if m.inFlight.Add(1) > maxRemoteAckWaits {
		m.inFlight.Add(-1)
		m.s.log.Warn("server: too many acknowledgement requests waiting; delivering without asking", "event", o.Event, "limit", maxRemoteAckWaits)
		if b != nil {
			b.emitLocal(o.Event, o.Args)
		}
		return
	}
	ch, asked, cleanup, err := askLocal(targets, o.Event, o.Args, o.Volatile)
	if err != nil {
		m.inFlight.Add(-1)
		m.s.log.Warn("server: queued emit failed", "event", o.Event, "err", err)
		return
	}
	timeout := o.Ack.Timeout
	if timeout <= 0 {
		timeout = defaultAckTimeout
	}
	ns := op.NamespaceOrRoot(o.Namespace)
	sid := ""
	if len(o.Rooms) == 1 {
		sid = o.Rooms[0]
	}
	done := func() {
		cleanup()
		m.inFlight.Add(-1)
	}
	if !m.spawn(func() {
		defer done()
		if msgs, err := m.d.Encode(&op.ClientCount{Namespace: ns, ID: o.Ack.ID, Count: asked, Origin: m.self, Host: originOf(o)}); err == nil {
			m.publish(msgs) // node: sent even when 0, the requester waits for every server
		}
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		for range asked {
			select {
			case args := <-ch:
				msgs, err := m.d.Encode(&op.AckReply{Namespace: ns, Host: originOf(o), Sid: sid, ID: o.Ack.ID, Args: args})
				if err != nil {
					m.s.log.Warn("server: cannot encode an acknowledgement", "event", o.Event, "err", err)
					continue
				}
				m.publish(msgs)
			case <-timer.C:
				return
			case <-m.ctx.Done():
				return
			}
		}
	}) {
		done()
	}
}

// askLocal sends event to targets with an acknowledgement id each; their
// answers arrive on the returned channel (one per socket at most: an id is
// answered once). cleanup forgets the ids that were not answered.
func askLocal(targets []*Socket, event string, args []any, volatile bool) (answers <-chan []any, asked int, cleanup func(), err error) {
	ch := make(chan []any, len(targets))
	if len(targets) == 0 {
		return ch, 0, func() {}, nil
	}
	data, atts, err := parser.EncodeData(append([]any{event}, args...))
	if err != nil {
		return nil, 0, nil, err
	}
	type asking struct {
		s  *Socket
		id uint64
	}
	forget := func(regs []asking) {
		for _, r := range regs {
			r.s.mu.Lock()
			delete(r.s.acks, r.id)
			r.s.mu.Unlock()
		}
	}
	regs := make([]asking, 0, len(targets))
	for _, s := range targets {
		if volatile && !s.c.conn.Writable() {
			continue
		}
		id := s.newAck(ch)
		s.n.s.hooks.eventSent(s, event, data, atts)
		regs = append(regs, asking{s, id})
		msgs, err := s.n.s.encode(&parser.Packet{Type: parser.Event, Namespace: s.n.name, ID: id, HasID: true, Data: data, Attachments: atts})
		if err != nil {
			forget(regs)
			return nil, 0, nil, err
		}
		s.n.s.stats.sent(parser.Event)
		s.sendMessages(msgs)
	}
	return ch, len(regs), func() { forget(regs) }, nil
}

// newAck allocates an acknowledgement id whose answer goes to ch.
func (s *Socket) newAck(ch chan []any) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackSeq++
	if s.acks == nil {
		s.acks = map[uint64]chan []any{}
	}
	s.acks[s.ackSeq] = ch
	return s.ackSeq
}

// ------------------------------------------------------------ publishing

// publish sends msgs, logging failures.
func (m *member) publish(msgs []queue.Message) error {
	err := m.publishCtx(m.ctx, msgs)
	if err != nil && m.pub != nil {
		m.pub.failed(err)
	}
	return err
}

// publishCtx is publish for a caller with a context: it also gives up
// when ctx ends (a broker outage must not hold the call longer).
func (m *member) publishCtx(ctx context.Context, msgs []queue.Message) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	if err := m.bus.Publish(ctx, msgs...); err != nil {
		m.s.queue.publishErrs.Add(1)
		return fmt.Errorf("server: publish to the cluster (%s dialect): %w", m.d.Name(), err)
	}
	return nil
}

// send encodes o, performs local (when not nil) and publishes o after
// every earlier operation of this member: a broadcast (wait false) without
// waiting for the broker, anything else waiting for its publish. Nothing
// is done when the dialect cannot express o.
func (m *member) send(o op.Op, local func(), wait bool) error {
	msgs, err := m.d.Encode(o)
	if err != nil {
		return fmt.Errorf("server: %s across the cluster (%s dialect): %w", o.Kind(), m.d.Name(), err)
	}
	if local != nil {
		local()
	}
	if !wait {
		return m.pub.async(msgs)
	}
	return m.pub.sync(m.ctx, msgs)
}

func (b *Broadcast) target() op.Target {
	return op.Target{Namespace: b.n.name, Rooms: b.rooms, Except: b.except}
}

// localOnly reports whether b selects sockets of this server only: it is
// Local, or every room it names is the id of a socket connected here.
func (b *Broadcast) localOnly() bool {
	if b.local {
		return true
	}
	if len(b.rooms) == 0 {
		return false
	}
	b.n.mu.RLock()
	defer b.n.mu.RUnlock()
	for _, r := range b.rooms {
		if b.n.sockets[r] == nil {
			return false
		}
	}
	return true
}

// publishEmit publishes b's emit without delivering it here: it comes
// back through the adapter with its offset (a recovery log fed by the
// adapter), after the operations made before it.
func (m *member) publishEmit(b *Broadcast, event string, args []any) error {
	if m == nil || !m.publishing {
		return errNoAdapter
	}
	plain, err := op.NormalizeArgs(args)
	if err != nil {
		return fmt.Errorf("server: emit %q: %w", event, err)
	}
	return m.send(&op.Emit{Target: b.target(), Event: event, Args: plain}, nil, false)
}

func (m *member) emit(b *Broadcast, event string, args []any) error {
	if b.localOnly() {
		return b.emitLocal(event, args)
	}
	plain, err := op.NormalizeArgs(args)
	if err != nil {
		return fmt.Errorf("server: emit %q: %w", event, err)
	}
	var localErr error
	err = m.send(&op.Emit{Target: b.target(), Event: event, Args: plain, Volatile: b.volatile},
		func() { localErr = b.emitLocal(event, args) }, false)
	return errors.Join(localErr, err)
}

func (m *member) join(b *Broadcast, rooms []string, join bool) error {
	local := func() { b.socketsLeaveLocal(rooms) }
	var o op.Op = &op.Leave{Target: b.target(), Rooms: rooms}
	if join {
		local = func() { b.socketsJoinLocal(rooms) }
		o = &op.Join{Target: b.target(), Rooms: rooms}
	}
	if b.localOnly() {
		local()
		return nil
	}
	return m.send(o, local, true)
}

func (m *member) disconnect(b *Broadcast, close bool) error {
	local := func() { b.disconnectLocal(close) }
	if b.localOnly() {
		local()
		return nil
	}
	return m.send(&op.Disconnect{Target: b.target(), Close: close}, local, true)
}

func (m *member) closeRoom(n *Namespace, room string) error {
	return m.send(&op.CloseRoom{Namespace: n.name, Room: room}, func() { n.closeRoomLocal(room) }, true)
}

// ------------------------------------------------------------ acks

// ackWait collects the remote answers to one EmitWithAck.
type ackWait struct {
	mu      sync.Mutex
	counts  int // client-count messages received
	clients int // sum of the counts
	replies [][]any
	answers []op.Op       // answers to a request (ask)
	notify  chan struct{} // cap 1
}

func (w *ackWait) add(args []any, count int, isCount bool) {
	w.mu.Lock()
	if isCount {
		w.counts++
		w.clients += count
	} else {
		w.replies = append(w.replies, args)
	}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *ackWait) addAnswer(o op.Op) {
	w.mu.Lock()
	w.answers = append(w.answers, o)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (m *member) wait(id string) *ackWait {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waits[id]
}

// emitWithAck is Broadcast.EmitWithAck across the cluster.
func (m *member) emitWithAck(ctx context.Context, b *Broadcast, event string, args []any) ([][]any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultAckTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	targets := b.targets()
	local := b.localOnly()
	// remote: -1 = complete at the first answer (python callbacks);
	// n >= 0 = n other servers each send a count, then that many answers;
	// -2 = unknown number of servers: wait until ctx ends.
	remote := 0
	var msgs []queue.Message
	var w *ackWait
	if !local {
		plain, err := op.NormalizeArgs(args)
		if err != nil {
			return nil, fmt.Errorf("server: emit %q: %w", event, err)
		}
		id := m.d.NewAckID()
		o := &op.Emit{Target: b.target(), Event: event, Args: plain, Volatile: b.volatile,
			Ack: &op.AckRequest{ID: id, Timeout: time.Until(deadline)}}
		if msgs, err = m.d.Encode(o); err != nil {
			return nil, fmt.Errorf("server: emit with ack across the cluster (%s dialect): %w", m.d.Name(), err)
		}
		remote = m.remoteServers(ctx, b.n.name)
		w = &ackWait{notify: make(chan struct{}, 1)}
		m.mu.Lock()
		m.waits[id] = w
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			delete(m.waits, id)
			m.mu.Unlock()
		}()
	}
	ch, asked, cleanup, err := askLocal(targets, event, args, b.volatile)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if msgs != nil {
		if err := m.pub.sync(ctx, msgs); err != nil {
			return nil, err
		}
	}
	var out [][]any
	got := 0
	for {
		var remoteReplies [][]any
		complete := false
		if w != nil {
			w.mu.Lock()
			remoteReplies = w.replies
			switch {
			case remote == -1:
				complete = got+len(w.replies) >= 1
			case remote >= 0:
				complete = got == asked && w.counts >= remote && len(w.replies) >= w.clients
			}
			w.mu.Unlock()
		} else {
			complete = got == asked
		}
		if complete {
			return append(out, remoteReplies...), nil
		}
		var notify chan struct{}
		if w != nil {
			notify = w.notify
		}
		select {
		case a := <-ch:
			out = append(out, a)
			got++
		case <-notify:
		case <-ctx.Done():
			out = append(out, remoteReplies...)
			if remote == -2 {
				return out, nil
			}
			return out, fmt.Errorf("socket.io: %d answers: %w: %v", len(out), ErrAckTimeout, ctx.Err())
		case <-m.ctx.Done():
			return append(out, remoteReplies...), errors.New("socket.io: server shut down")
		}
	}
}

// serverCounter is implemented by dialects whose servers report how many
// clients they asked for an acknowledgement (node).
type serverCounter interface {
	ServerCountChannel(ns string) string
}

// shardedServerCounter is implemented by dialects whose servers are
// counted by their sharded subscriptions (node-sharded: PUBSUB
// SHARDNUMSUB on the main channel).
type shardedServerCounter interface {
	ShardedServerCountChannel(ns string) string
}

// shardSubCounter is implemented by buses that count the sharded
// subscribers of a channel (the Redis bus, over the masters of a cluster).
type shardSubCounter interface {
	NumShardSub(ctx context.Context, channel string) (int, error)
}

// countServers counts the servers of namespace ns, this one included, as
// the dialect's peers do; ok is false when the dialect or the bus cannot.
func (m *member) countServers(ctx context.Context, ns string) (n int, ok bool, err error) {
	if sc, isSharded := m.d.(shardedServerCounter); isSharded {
		counter, can := m.bus.(shardSubCounter)
		if !can {
			return 0, false, nil
		}
		n, err = counter.NumShardSub(ctx, sc.ShardedServerCountChannel(ns))
		return n, true, err
	}
	sc, isCounted := m.d.(serverCounter)
	counter, can := m.bus.(queue.SubscriberCounter)
	if !isCounted || !can {
		return 0, false, nil
	}
	n, err = counter.NumSub(ctx, sc.ServerCountChannel(ns))
	return n, true, err
}

// counted reports whether the dialect's servers are counted (each
// answers a request, so the requester knows how many answers to await).
func (m *member) counted() bool {
	_, a := m.d.(serverCounter)
	_, b := m.d.(shardedServerCounter)
	return a || b
}

// remoteServers is how many other servers answer an acknowledgement
// request in namespace ns: -1 when the dialect has no counts (the first
// answer completes), -2 when they cannot be counted.
func (m *member) remoteServers(ctx context.Context, ns string) int {
	if !m.counted() {
		return -1
	}
	n, ok, err := m.countServers(ctx, ns)
	if !ok {
		return -2
	}
	if err != nil {
		m.s.log.Warn("server: cannot count the servers", "err", err)
		return -2
	}
	return max(n-1, 0) // this server is subscribed too
}
