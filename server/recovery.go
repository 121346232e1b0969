package server

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/siobridge/siobridge/internal/jsonstr"
	"github.com/siobridge/siobridge/server/engineio"
)

// Bounds of connection-state recovery (WithConnectionStateRecovery,
// WithRecoveryLimits).
const (
	// DefaultRecoveryLogBytes bounds the packet log of one namespace: the
	// broadcasts kept for the clients that may come back. When a new
	// packet does not fit, the oldest ones are dropped (and the clients
	// whose offset they covered get a fresh session).
	DefaultRecoveryLogBytes = 4 << 20
	// DefaultRecoverySessionBytes bounds the sessions of disconnected
	// clients kept by a server, all namespaces together; past it, the
	// oldest are dropped. A session costs recoverySessionOverhead plus its
	// ids and room names (its Data is the application's value, counted as
	// part of the overhead).
	DefaultRecoverySessionBytes = 32 << 20

	recoverySessionOverhead = 128 // a session besides its strings
	recoveryRoomOverhead    = 16  // a string header
	recoveryEntryOverhead   = 96  // a log entry besides its bytes
	recoveryMaxOffset       = 64  // longer offsets are not ours: not even parsed
)

// WithConnectionStateRecovery turns on socket.io's connection state
// recovery (socket.io >= 4.6's connectionStateRecovery option): the
// CONNECT reply carries a private session id ("pid"), and every event
// broadcast without acknowledgement and not volatile gets an offset
// appended as its last argument (Socket.Emit goes through the same path,
// as Node does, so private emits get one too). When a client drops for a
// reason that is not its own choice ("transport close", "transport
// error", "ping timeout", "forced close", "server shutting down",
// "forced server close"), its session (id, rooms, Data) is kept for
// maxDisconnection; if it comes back within that time with {pid, offset}
// in its auth (socket.io-client does it by itself), it gets its id,
// rooms and Data back, then the packets it missed in order (those sent to
// no room or to one of its rooms, and not excluding it), and
// Socket.Recovered is true (socket.recovered on the client). With
// skipMiddlewares the namespace's middlewares (Use) do not run for a
// recovered socket; its connect handler does.
//
// A client whose offset is no longer in the log (pruned by size or age,
// or never issued), or whose session expired or is unknown, gets a fresh
// session: never a partial replay. The log of each namespace is bounded
// by DefaultRecoveryLogBytes and by maxDisconnection; the sessions by
// DefaultRecoverySessionBytes (WithRecoveryLimits changes both). Pruning
// happens as packets and sessions come and go: recovery has no goroutine
// of its own.
//
// The log and sessions are this process's (WithRecoveryStore shares them
// between nodes): with WithAdapter a client
// recovers when it comes back to the same node (the broadcasts of the
// other nodes that reached this one are in its log too); on another node
// it gets a fresh session. While recovery is on, the broadcasts of one
// namespace are encoded and queued one at a time, so that every client
// sees them in the order of their offsets. A replay larger than the
// client's send queue (engineio.Options.SendQueueSize, SendQueueBytes)
// drops the client again, with reason "send queue full" and no session
// kept. maxDisconnection <= 0 leaves recovery off.
func WithConnectionStateRecovery(maxDisconnection time.Duration, skipMiddlewares bool) Option {
	return func(c *config) {
		if maxDisconnection <= 0 {
			c.recovery = nil
			return
		}
		r := recoveryConfig{logBytes: DefaultRecoveryLogBytes, sessionBytes: DefaultRecoverySessionBytes}
		if c.recovery != nil {
			r = *c.recovery
		}
		r.maxAge, r.skipMW = maxDisconnection, skipMiddlewares
		c.recovery = &r
	}
}

// WithRecoveryLimits sets the bounds of connection state recovery: the
// bytes of one namespace's packet log (default DefaultRecoveryLogBytes)
// and of the kept sessions (default DefaultRecoverySessionBytes); zero
// keeps a default. Put it after WithConnectionStateRecovery; without it,
// it does nothing.
func WithRecoveryLimits(logBytes, sessionBytes int) Option {
	return func(c *config) {
		if c.recovery == nil {
			return
		}
		if logBytes > 0 {
			c.recovery.logBytes = logBytes
		}
		if sessionBytes > 0 {
			c.recovery.sessionBytes = sessionBytes
		}
	}
}

type recoveryConfig struct {
	maxAge       time.Duration
	skipMW       bool
	logBytes     int
	sessionBytes int
	store        RecoveryStore // WithRecoveryStore; nil: in memory
}

// recovery is a server's connection state recovery: the store of the
// sessions of disconnected clients (the packet logs are the namespaces',
// or shared's).
type recovery struct {
	recoveryConfig
	epoch  string           // starts every offset of this server
	now    func() time.Time // time.Now; tests move it
	store  RecoveryStore
	shared *sharedLog // the store's RecoveryLog, if it is one
}

func newRecovery(c *recoveryConfig) *recovery {
	if c == nil {
		return nil
	}
	r := &recovery{recoveryConfig: *c, epoch: engineio.NewID()[:8], now: time.Now, store: c.store}
	if r.store == nil {
		r.store = newMemoryStore(c.maxAge, c.sessionBytes, func() time.Time { return r.now() })
	}
	if l, ok := r.store.(RecoveryReplayer); ok {
		r.shared = newSharedLog(r, l)
	}
	return r
}

// socketCSR is a socket's part of recovery: its pid and its ordered
// outbox (with recovery on, everything a socket is sent goes through it,
// so that replayed and live packets leave in the order they were queued).
type socketCSR struct {
	pid       string
	recovered bool
	offset    string               // restored: the client's last offset
	rooms     []string             // restored: the rooms to join back
	out       [][]engineio.Message // guarded by Socket.mu
	flushing  bool                 // a goroutine is sending out
}

// Recovered reports whether the socket got back the state of a previous
// connection (WithConnectionStateRecovery), as Node's socket.recovered.
func (s *Socket) Recovered() bool { return s.csr.recovered }

// connectPayload is the CONNECT reply: {"sid":…}, plus "pid" with recovery.
func (s *Socket) connectPayload() json.RawMessage {
	if s.csr.pid == "" {
		return sidPayload(s.id)
	}
	b := append(make([]byte, 0, 20+len(s.id)+len(s.csr.pid)), `{"sid":`...)
	b = append(jsonstr.Append(b, s.id), `,"pid":`...)
	return append(jsonstr.Append(b, s.csr.pid), '}')
}

// ------------------------------------------------------------- sessions

// recoverable tells whether a disconnection with reason keeps the session
// (socket.io's RECOVERABLE_DISCONNECT_REASONS).
func recoverable(reason string) bool {
	switch reason {
	case "transport error", "transport close", "forced close", "ping timeout",
		"server shutting down", "forced server close":
		return true
	}
	return false
}

// persist keeps the session of s as it disconnects with reason
// (socket.io's reason, before WithPythonDisconnectReasons renames it),
// when the reason is recoverable: its id, pid, rooms and Data as they are
// before the disconnect handlers run (as Node persists before its
// "disconnect" event). A client that comes back before s has left its
// namespace gets a fresh session (see add).
func (r *recovery) persist(s *Socket, reason string) {
	if r == nil || s.csr.pid == "" || !recoverable(reason) {
		return
	}
	sess := RecoverySession{PID: s.csr.pid, SID: s.id, Namespace: s.n.name, Rooms: s.Rooms(), Data: s.Data(), At: r.now()}
	ctx, cancel := context.WithTimeout(context.Background(), RecoveryStoreTimeout)
	defer cancel()
	if err := r.store.Save(ctx, sess); err != nil {
		s.n.s.stats.sessionsNotSaved.Add(1)
		s.n.s.log.Warn("socket.io: recovery: session not kept", "sid", s.id, "err", err)
		return
	}
	s.n.s.stats.sessionsSaved.Add(1)
}

// recoveryAuth is what a reconnecting client adds to its auth.
type recoveryAuth struct {
	PID    *string `json:"pid"`
	Offset *string `json:"offset"`
}

// restore gives s the session its auth asks for, if it is kept, not
// expired, of s's namespace and its offset still in the log; it is taken
// out of the store either way. Otherwise s gets a fresh pid. It reports
// whether s was restored (its packets are queued by add).
func (r *recovery) restore(s *Socket, auth json.RawMessage) bool {
	if r == nil {
		return false
	}
	s.csr.pid = engineio.NewID()
	var a recoveryAuth
	if json.Unmarshal(auth, &a) != nil || a.PID == nil || a.Offset == nil || len(*a.Offset) > recoveryMaxOffset {
		return false
	}
	var seq uint64
	ok := false
	if r.shared != nil {
		_, ok = r.shared.log.CompareOffsets(*a.Offset, *a.Offset)
	} else {
		seq, ok = r.parseOffset(*a.Offset)
	}
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), RecoveryStoreTimeout)
	defer cancel()
	sess, ok, err := r.store.Take(ctx, *a.PID)
	if err != nil {
		s.n.s.log.Warn("socket.io: recovery: session not read", "err", err)
	}
	now := r.now()
	// a store shared with Node keeps no namespace (Node's sessions have none)
	if !ok || sess.Namespace != "" && sess.Namespace != s.n.name || now.Sub(sess.At) > r.maxAge || (r.shared == nil && !s.n.plog.holds(seq, now)) {
		return false
	}
	s.id, s.csr.pid, s.data, s.csr.recovered = sess.SID, sess.PID, sess.Data, true
	s.csr.offset, s.csr.rooms = *a.Offset, sess.Rooms
	return true
}

// add adds s to its namespace (Namespace.add). A restored socket joins its
// rooms and gets its missed packets queued atomically with the
// namespace's broadcasts, so that none is missed or sent twice. False when
// s could not be added: its namespace was removed, or the packets after
// its offset were pruned since restore (then its client connects afresh).
func (r *recovery) add(n *Namespace, s *Socket) bool {
	if r == nil || !s.csr.recovered {
		return n.add(s)
	}
	if r.shared != nil {
		return r.shared.add(n, s)
	}
	seq, _ := r.parseOffset(s.csr.offset) // checked by restore
	l := n.plog
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.holdsLocked(seq, r.now()) {
		return false
	}
	n.mu.Lock()
	if _, taken := n.sockets[s.id]; taken { // the same session restored twice at once
		n.mu.Unlock()
		return false
	}
	n.mu.Unlock()
	if !n.add(s) {
		return false
	}
	s.Join(s.csr.rooms...)
	rooms := make(map[string]struct{}, len(s.csr.rooms))
	for _, room := range s.csr.rooms {
		rooms[room] = struct{}{}
	}
	s.csr.rooms = nil
	for _, e := range l.after(seq) {
		if e.reaches(rooms) {
			s.mu.Lock()
			s.csr.out = append(s.csr.out, e.msgs) // s is connecting: sent after the CONNECT reply
			s.mu.Unlock()
		}
	}
	return true
}

// ---------------------------------------------------------- packet log

// packetLog is a namespace's broadcasts, kept for recovery: entries with
// consecutive sequence numbers, oldest first.
type packetLog struct {
	r *recovery

	mu      sync.Mutex // also held while a broadcast is queued to its sockets
	entries []logEntry // from head
	head    int
	next    uint64 // sequence number of the next entry (the first is 1)
	first   uint64 // of the oldest entry kept (next when none)
	bytes   int
}

type logEntry struct {
	seq           uint64
	at            time.Time
	rooms, except []string
	msgs          []engineio.Message
	cost          int
}

func (r *recovery) newLog() *packetLog {
	if r == nil {
		return nil
	}
	return &packetLog{r: r, next: 1, first: 1}
}

// offset is the string form of seq: the server's epoch, then base 36.
func (r *recovery) offset(seq uint64) string { return r.epoch + strconv.FormatUint(seq, 36) }

// parseOffset is the sequence number of an offset of this server.
func (r *recovery) parseOffset(o string) (uint64, bool) {
	if len(o) > recoveryMaxOffset || len(o) <= len(r.epoch) || o[:len(r.epoch)] != r.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(o[len(r.epoch):], 36, 64)
	return seq, err == nil && seq > 0
}

// holds tells whether every entry after seq is still in the log (and seq
// was issued).
func (l *packetLog) holds(seq uint64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holdsLocked(seq, now)
}

func (l *packetLog) holdsLocked(seq uint64, now time.Time) bool {
	l.pruneLocked(now)
	return seq >= 1 && seq < l.next && seq+1 >= l.first
}

// after returns the entries after seq (l.mu held; holdsLocked(seq)).
func (l *packetLog) after(seq uint64) []logEntry {
	return l.entries[l.head+int(seq+1-l.first):]
}

func (l *packetLog) pruneLocked(now time.Time) {
	for l.head < len(l.entries) && now.Sub(l.entries[l.head].at) > l.r.maxAge {
		l.popLocked()
	}
}

func (l *packetLog) popLocked() {
	e := &l.entries[l.head]
	l.bytes -= e.cost
	*e = logEntry{}
	l.head++
	l.first++
	if l.head > 32 && l.head*2 > len(l.entries) {
		l.entries = append(l.entries[:0], l.entries[l.head:]...)
		clear(l.entries[len(l.entries):cap(l.entries)])
		l.head = 0
	}
}

// reaches tells whether e goes to a socket in rooms (socket.io's
// shouldIncludePacket): to no room or one of them, and except none.
func (e *logEntry) reaches(rooms map[string]struct{}) bool {
	for _, x := range e.except {
		if _, in := rooms[x]; in {
			return false
		}
	}
	if len(e.rooms) == 0 {
		return true
	}
	for _, x := range e.rooms {
		if _, in := rooms[x]; in {
			return true
		}
	}
	return false
}

// --------------------------------------------------- recorded broadcasts

// recording is a broadcast being logged: it holds its namespace's log
// lock from Broadcast.record to done, and the sockets it queued to, which
// done flushes once the lock is released (sending may close a client,
// whose disconnect handler may broadcast again).
type recording struct {
	l      *packetLog
	b      *Broadcast
	seq    uint64 // in the namespace's own log
	queued []*Socket
}

// record starts logging b's emit; nil (a no-op recording) without
// recovery, for volatile broadcasts, and with a shared log (which
// delivers its packets itself; its Local broadcasts fed by the adapter
// get no offset, as Node's local ones).
func (b *Broadcast) record() *recording {
	l := b.n.plog
	if l == nil || b.volatile || l.r.shared != nil { // a shared log delivers its packets itself
		return nil
	}
	l.mu.Lock()
	return &recording{l: l, b: b, seq: l.next}
}

// args is the event's data: event and args, then the offset.
func (r *recording) args(event string, args []any) []any {
	out := make([]any, 0, len(args)+2)
	out = append(append(out, event), args...)
	if r != nil {
		out = append(out, r.l.r.offset(r.seq))
	}
	return out
}

// keep logs the encoded packet.
func (r *recording) keep(msgs []engineio.Message) {
	if r == nil {
		return
	}
	l := r.l
	now := l.r.now()
	l.pruneLocked(now)
	e := logEntry{seq: r.seq, at: now, rooms: r.b.rooms, except: r.b.except, msgs: msgs, cost: recoveryEntryOverhead}
	for _, m := range msgs {
		e.cost += 2*len(m.Data) + recoveryRoomOverhead // the data and its prepared frame
	}
	for _, x := range e.rooms {
		e.cost += recoveryRoomOverhead + len(x)
	}
	for _, x := range e.except {
		e.cost += recoveryRoomOverhead + len(x)
	}
	l.next++
	if e.cost > l.r.logBytes { // never fits: those before it cannot be replayed either
		for l.head < len(l.entries) {
			l.popLocked()
		}
		l.first = l.next
		return
	}
	for l.bytes+e.cost > l.r.logBytes {
		l.popLocked()
	}
	l.entries = append(l.entries, e)
	l.bytes += e.cost
}

// send queues msgs to s (or sends them at once without recovery).
func (r *recording) send(s *Socket, msgs []engineio.Message) {
	if r == nil {
		s.sendMessages(msgs)
		return
	}
	s.n.s.hooks.packetOut(msgs)
	s.mu.Lock()
	s.csr.out = append(s.csr.out, msgs)
	start := !s.connecting && !s.csr.flushing
	if start {
		s.csr.flushing = true
	}
	s.mu.Unlock()
	if start {
		r.queued = append(r.queued, s)
	}
}

// done releases the log and sends what was queued.
func (r *recording) done() {
	if r == nil {
		return
	}
	r.l.mu.Unlock()
	for _, s := range r.queued {
		s.flushOut()
	}
}

// sendOrdered queues msgs in s's outbox and sends it, unless another
// goroutine is sending it (then that one sends msgs too, in order).
func (s *Socket) sendOrdered(msgs []engineio.Message) {
	s.mu.Lock()
	s.csr.out = append(s.csr.out, msgs)
	if s.connecting || s.csr.flushing {
		s.mu.Unlock()
		return
	}
	s.csr.flushing = true
	s.mu.Unlock()
	s.flushOut()
}

// startOrdered ends s's connecting state and sends its outbox.
func (s *Socket) startOrdered() {
	s.mu.Lock()
	s.connecting = false
	if s.csr.flushing {
		s.mu.Unlock()
		return
	}
	s.csr.flushing = true
	s.mu.Unlock()
	s.flushOut()
}

// flushOut sends s's outbox until it is empty (the caller set flushing).
func (s *Socket) flushOut() {
	for {
		s.mu.Lock()
		q := s.csr.out
		s.csr.out = nil
		if len(q) == 0 {
			s.csr.flushing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, msgs := range q {
			s.c.conn.SendBatch(msgs)
		}
	}
}

// middlewares restores s when its auth asks for it (see restore) and
// returns the middlewares of n to run for it: none for a restored socket
// with skipMiddlewares.
func (r *recovery) middlewares(n *Namespace, s *Socket, auth json.RawMessage) []func(*Socket, json.RawMessage) error {
	if r.restore(s, auth) && r.skipMW {
		return nil
	}
	return n.middlewares()
}
