package server

import (
	"context"
	"sync"
	"time"
)

// RecoveryStoreTimeout bounds each call connection state recovery makes
// to its RecoveryStore (a session saved as a client drops, taken as it
// comes back; a replay): past it, the session is not kept, or the client
// gets a fresh one.
const RecoveryStoreTimeout = 5 * time.Second

// RecoverySession is the state of a disconnected socket that connection
// state recovery keeps for it (WithConnectionStateRecovery).
type RecoverySession struct {
	PID       string    // the private session id the client comes back with
	SID       string    // the socket's id
	Namespace string    // its namespace
	Rooms     []string  // its rooms, its id included
	Data      any       // Socket.Data; a store shared by processes keeps its JSON form
	At        time.Time // when the socket disconnected
}

// RecoveryStore keeps the sessions of disconnected clients for connection
// state recovery (WithRecoveryStore). The default keeps them in the
// process, bounded by DefaultRecoverySessionBytes; a store shared by the
// nodes of a cluster (adapter/nats/jetstream) lets a client come back to
// another node. Implementations are safe for concurrent use and bound
// what they keep in bytes and in age.
type RecoveryStore interface {
	// Save keeps sess under sess.PID.
	Save(ctx context.Context, sess RecoverySession) error
	// Take removes and returns the session kept under pid: a session is
	// taken once, even by two nodes at the same time. ok is false when
	// there is none (unknown, expired or already taken).
	Take(ctx context.Context, pid string) (sess RecoverySession, ok bool, err error)
}

// LoggedPacket is a broadcast in a shared packet log (RecoveryReplayer).
type LoggedPacket struct {
	Offset      string   // its place in the log, given by the log: the offset its clients get
	Namespace   string   // its namespace
	Rooms       []string // Broadcast.To: none for every socket
	Except      []string // Broadcast.Except
	Data        []byte   // the event and its arguments: a JSON array, placeholders for binary
	Attachments [][]byte // the binary arguments
	Origin      string   // the node that appended it
	Local       bool     // Broadcast.Local: delivered live by Origin only (replayed by any node)
}

// RecoveryReplayer is a packet log shared by the nodes of a cluster, as
// connection state recovery reads it: a RecoveryStore that also replays
// the broadcasts a client missed and orders the offsets it gave, which
// mean the same on every node, so that a client recovers on any of them.
// Only broadcasts without acknowledgement and not volatile are logged.
//
// Its packets get into the log in one of two ways. A RecoveryLog carries
// them itself (adapter/nats/jetstream). Otherwise they are the cluster's
// own broadcasts, which the adapter's dialect writes in the log and reads
// back with their offsets (node-streams: the Redis stream of
// @socket.io/redis-streams-adapter, whose entry ids are the offsets;
// adapter/redis/streamstore): WithAdapter with such a dialect is then
// needed, each node's broadcasts reach its own sockets when they come
// back from the log, and its private emits (Socket.Emit) go through the
// log as well, as Node's do.
type RecoveryReplayer interface {
	RecoveryStore
	// Replay calls f, in order, for the packets of namespace nsp after
	// offset after, up to upto included. complete is false when after is
	// not in the log, or some packets after it are no longer kept
	// (pruned by size or age), or there are more than the log replays at
	// once: then none of what f was given may be used.
	Replay(ctx context.Context, nsp, after, upto string, f func(LoggedPacket)) (complete bool, err error)
	// CompareOffsets orders two offsets of the log: negative when a comes
	// first, zero when they are the same, positive otherwise. ok is false
	// when either is not an offset of this log.
	CompareOffsets(a, b string) (c int, ok bool)
}

// RecoveryLog is a RecoveryReplayer that carries the logged broadcasts of
// every node in one order itself: Broadcast.Emit appends the packet;
// every node, the appending one included, delivers it to its sockets when
// Follow hands it back.
type RecoveryLog interface {
	RecoveryReplayer
	// Append adds p (Offset unset) to the log.
	Append(ctx context.Context, p LoggedPacket) error
	// Follow calls deliver, from one goroutine, for every packet appended
	// from the time the store was opened, in log order, until ctx ends;
	// it returns then (or on a fatal error).
	Follow(ctx context.Context, deliver func(LoggedPacket)) error
}

// WithRecoveryStore makes connection state recovery keep its sessions in
// store instead of in the process (put it with WithConnectionStateRecovery;
// without it, it does nothing). When store also implements RecoveryLog,
// the broadcasts are logged there instead of in the process: a client
// dropped from one node recovers on another, with its id, rooms, Data
// (as JSON decodes it) and every packet it missed, in order; the same
// for a RecoveryReplayer fed by the adapter's dialect (see there). Such a
// store's log and sessions have their own bounds (see its constructor);
// WithRecoveryLimits does not apply to them. The server follows the log
// from New to Shutdown.
func WithRecoveryStore(store RecoveryStore) Option {
	return func(c *config) {
		if c.recovery != nil {
			c.recovery.store = store
		}
	}
}

// memoryStore is the default RecoveryStore: the sessions in the process,
// bounded in bytes (recoveryConfig.sessionBytes) and age (maxAge).
type memoryStore struct {
	maxAge time.Duration
	limit  int
	now    func() time.Time

	mu       sync.Mutex
	sessions map[string]*memSession // by pid
	order    []*memSession          // by disconnection time, from head
	head     int
	bytes    int // of order[head:], taken sessions included until they leave it
}

type memSession struct {
	RecoverySession
	cost int
}

func newMemoryStore(maxAge time.Duration, limit int, now func() time.Time) *memoryStore {
	return &memoryStore{maxAge: maxAge, limit: limit, now: now, sessions: map[string]*memSession{}}
}

// sessionCost is what a session counts against the bound.
func sessionCost(s *RecoverySession) int {
	cost := recoverySessionOverhead + len(s.PID) + len(s.SID) + len(s.Namespace)
	for _, room := range s.Rooms {
		cost += recoveryRoomOverhead + len(room)
	}
	return cost
}

func (m *memoryStore) Save(_ context.Context, s RecoverySession) error {
	sess := &memSession{RecoverySession: s, cost: sessionCost(&s)}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(m.now())
	m.sessions[sess.PID] = sess
	m.order = append(m.order, sess)
	m.bytes += sess.cost
	for m.bytes > m.limit && m.head < len(m.order) {
		m.popLocked()
	}
	return nil
}

func (m *memoryStore) Take(_ context.Context, pid string) (RecoverySession, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(m.now())
	sess := m.sessions[pid]
	if sess == nil {
		return RecoverySession{}, false, nil
	}
	delete(m.sessions, pid) // its bytes leave with it from order
	return sess.RecoverySession, true, nil
}

// pruneLocked drops the sessions older than maxAge.
func (m *memoryStore) pruneLocked(now time.Time) {
	for m.head < len(m.order) && now.Sub(m.order[m.head].At) > m.maxAge {
		m.popLocked()
	}
}

func (m *memoryStore) popLocked() {
	old := m.order[m.head]
	m.order[m.head] = nil
	m.head++
	m.bytes -= old.cost
	if m.sessions[old.PID] == old {
		delete(m.sessions, old.PID)
	}
	if m.head > 32 && m.head*2 > len(m.order) { // compact: the slice stays within twice what it holds
		m.order = append(m.order[:0], m.order[m.head:]...)
		clear(m.order[len(m.order):cap(m.order)])
		m.head = 0
	}
}
