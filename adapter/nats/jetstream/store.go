// Package jetstream is a connection-state-recovery store on NATS
// JetStream (server.WithRecoveryStore): the sessions of disconnected
// clients in a key-value bucket and the logged broadcasts in a stream,
// shared by every Go node of a cluster, so that a client dropped from one
// node recovers on another with its id, rooms, Data and the packets it
// missed, in order.
package jetstream

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/siobridge/siobridge/server"
)

// Defaults of Options.
const (
	// DefaultName names the stream (DefaultName+"-recovery"), its
	// subjects (DefaultName+".recovery.>") and the session bucket
	// (DefaultName+"-sessions").
	DefaultName = "siobridge"
	// DefaultMaxAge is how long the packets and the sessions are kept:
	// set it to the server's maxDisconnection.
	DefaultMaxAge = 2 * time.Minute
	// DefaultLogBytes bounds the stream, all namespaces together; the
	// oldest packets go first (the clients whose offset they covered get
	// a fresh session).
	DefaultLogBytes = 64 << 20
	// DefaultSessionBytes bounds the session bucket (MaxBytes of its
	// stream). When a session does not fit, it is not kept: Save fails,
	// the server logs it and counts it (server.Stats Recovery.NotSaved),
	// the disconnect goes on, and the client gets a fresh session when it
	// comes back. The sessions already kept stay recoverable (taking one
	// makes room) until they expire (MaxAge).
	DefaultSessionBytes = 32 << 20
	// maxPID bounds the pids looked up (longer ones are not ours).
	maxPID = 64
	// replayBatch is how many packets a replay fetches at a time.
	replayBatch = 256
)

// Options configures a Store; zero values take the defaults.
type Options struct {
	// Name of the stream and bucket (see DefaultName): every node of a
	// cluster uses the same. Letters, digits, '-' and '_' only.
	Name string
	// MaxAge: the server's maxDisconnection (DefaultMaxAge).
	MaxAge time.Duration
	// LogBytes bounds the packet stream (DefaultLogBytes).
	LogBytes int64
	// SessionBytes bounds the session bucket, in bytes as JetStream
	// counts them (a session is its JSON, Data included, plus its key
	// and about 100 bytes): see DefaultSessionBytes for what happens
	// when it is full.
	SessionBytes int64
	// Replicas of the stream and bucket in a JetStream cluster (1).
	Replicas int
}

// ErrUnavailable is what the store's calls return while its NATS
// connection is down (reconnecting): they fail at once instead of
// leaving a request in nats.go's reconnect buffer, which would be sent
// after the reconnection (an emit reported failed but delivered later,
// out of order; a session reported lost but kept).
var ErrUnavailable = errors.New("NATS connection down")

// Store is a server.RecoveryLog on JetStream. Safe for concurrent use.
type Store struct {
	nc      *nats.Conn
	js      js.JetStream
	stream  js.Stream
	kv      js.KeyValue
	name    string // of the stream
	subject string // prefix of the packets' subjects, with its final '.'
	next    uint64 // first sequence Follow delivers (after the last one it delivered)
}

var _ server.RecoveryLog = (*Store)(nil)

// New creates (or updates) the stream and the bucket of o on nc's
// JetStream and returns the store; Follow starts at the packets appended
// from now on.
func New(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if strings.Trim(o.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return nil, fmt.Errorf("jetstream recovery store: name %q: letters, digits, '-' and '_' only", o.Name)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.LogBytes <= 0 {
		o.LogBytes = DefaultLogBytes
	}
	if o.SessionBytes <= 0 {
		o.SessionBytes = DefaultSessionBytes
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	j, err := js.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream recovery store: %w", err)
	}
	s := &Store{nc: nc, js: j, name: o.Name + "-recovery", subject: o.Name + ".recovery."}
	s.stream, err = j.CreateOrUpdateStream(ctx, js.StreamConfig{Name: s.name, Subjects: []string{s.subject + ">"},
		MaxBytes: o.LogBytes, MaxAge: o.MaxAge, Discard: js.DiscardOld, Replicas: o.Replicas})
	if err != nil {
		return nil, fmt.Errorf("jetstream recovery store: stream %s: %w", s.name, err)
	}
	s.next = s.stream.CachedInfo().State.LastSeq + 1
	s.kv, err = j.CreateOrUpdateKeyValue(ctx, js.KeyValueConfig{Bucket: o.Name + "-sessions", TTL: o.MaxAge,
		MaxBytes: o.SessionBytes, History: 1, Replicas: o.Replicas})
	if err != nil {
		return nil, fmt.Errorf("jetstream recovery store: bucket %s-sessions: %w", o.Name, err)
	}
	return s, nil
}

// up returns ErrUnavailable, for op, unless the connection is up.
func (s *Store) up(op string) error {
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("jetstream recovery store: %s: %w (%s)", op, ErrUnavailable, st)
	}
	return nil
}

// nspSubject is the subject of namespace nsp's packets.
func (s *Store) nspSubject(nsp string) string {
	return s.subject + base64.RawURLEncoding.EncodeToString([]byte(nsp))
}

// session is a RecoverySession as the bucket keeps it.
type session struct {
	SID   string    `json:"sid"`
	Nsp   string    `json:"nsp"`
	Rooms []string  `json:"rooms"`
	Data  any       `json:"data"`
	At    time.Time `json:"at"`
}

// Save implements server.RecoveryStore: Data is kept as JSON.
func (s *Store) Save(ctx context.Context, sess server.RecoverySession) error {
	b, err := json.Marshal(session{SID: sess.SID, Nsp: sess.Namespace, Rooms: sess.Rooms, Data: sess.Data, At: sess.At})
	if err != nil {
		return fmt.Errorf("jetstream recovery store: session %s: %w", sess.SID, err)
	}
	if err := s.up("session " + sess.SID); err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, sess.PID, b); err != nil {
		return fmt.Errorf("jetstream recovery store: session %s: %w", sess.SID, err)
	}
	return nil
}

// Take implements server.RecoveryStore: the entry is deleted at the
// revision read, so that only one node gets it.
func (s *Store) Take(ctx context.Context, pid string) (server.RecoverySession, bool, error) {
	if pid == "" || len(pid) > maxPID {
		return server.RecoverySession{}, false, nil
	}
	if err := s.up("take session"); err != nil {
		return server.RecoverySession{}, false, err
	}
	e, err := s.kv.Get(ctx, pid)
	if errors.Is(err, js.ErrKeyNotFound) || errors.Is(err, js.ErrInvalidKey) {
		return server.RecoverySession{}, false, nil
	}
	if err != nil {
		return server.RecoverySession{}, false, fmt.Errorf("jetstream recovery store: take session: %w", err)
	}
	if err := s.kv.Delete(ctx, pid, js.LastRevision(e.Revision())); err != nil {
		return server.RecoverySession{}, false, nil // taken by another node meanwhile (or gone)
	}
	var v session
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return server.RecoverySession{}, false, fmt.Errorf("jetstream recovery store: session: %w", err)
	}
	return server.RecoverySession{PID: pid, SID: v.SID, Namespace: v.Nsp, Rooms: v.Rooms, Data: v.Data, At: v.At}, true, nil
}

// packet is a LoggedPacket as the stream keeps it.
type packet struct {
	Nsp    string          `json:"n"`
	Rooms  []string        `json:"r,omitempty"`
	Except []string        `json:"x,omitempty"`
	Data   json.RawMessage `json:"d"`
	Atts   [][]byte        `json:"a,omitempty"`
	Origin string          `json:"o"`
	Local  bool            `json:"l,omitempty"`
}

// Append implements server.RecoveryLog.
func (s *Store) Append(ctx context.Context, p server.LoggedPacket) error {
	b, err := json.Marshal(packet{Nsp: p.Namespace, Rooms: p.Rooms, Except: p.Except, Data: p.Data,
		Atts: p.Attachments, Origin: p.Origin, Local: p.Local})
	if err != nil {
		return fmt.Errorf("jetstream recovery store: append: %w", err)
	}
	if err := s.up("append"); err != nil {
		return err
	}
	if _, err := s.js.Publish(ctx, s.nspSubject(p.Namespace), b); err != nil {
		return fmt.Errorf("jetstream recovery store: append: %w", err)
	}
	return nil
}

// Offsets are "~" then the packet's stream sequence in base 36.
const offsetPrefix = "~"

func offset(seq uint64) string { return offsetPrefix + strconv.FormatUint(seq, 36) }

// sequence is the stream sequence of an offset (0, false when it is not one).
func sequence(o string) (uint64, bool) {
	rest, ok := strings.CutPrefix(o, offsetPrefix)
	if !ok || len(rest) == 0 || len(rest) > 13 { // 13 base-36 digits hold a uint64
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 36, 64)
	return seq, err == nil && seq > 0
}

// CompareOffsets implements server.RecoveryReplayer.
func (s *Store) CompareOffsets(a, b string) (int, bool) {
	x, ok1 := sequence(a)
	y, ok2 := sequence(b)
	return cmp.Compare(x, y), ok1 && ok2
}

// decode is the stream sequence and LoggedPacket of m (seq 0 when m has
// no metadata).
func decode(m js.Msg) (uint64, server.LoggedPacket, error) {
	meta, err := m.Metadata()
	if err != nil {
		return 0, server.LoggedPacket{}, fmt.Errorf("jetstream recovery store: packet: %w", err)
	}
	seq := meta.Sequence.Stream
	var p packet
	if err := json.Unmarshal(m.Data(), &p); err != nil {
		return seq, server.LoggedPacket{Offset: offset(seq)}, fmt.Errorf("jetstream recovery store: packet %d: %w", seq, err)
	}
	return seq, server.LoggedPacket{Offset: offset(seq), Namespace: p.Nsp, Rooms: p.Rooms, Except: p.Except,
		Data: p.Data, Attachments: p.Atts, Origin: p.Origin, Local: p.Local}, nil
}

// Follow implements server.RecoveryLog: an ordered consumer from the
// packet after the last one delivered (the stream's end when New ran).
// Malformed packets are skipped. One Follow at a time.
//
// While the connection is down, Follow waits; once it is back, it makes
// a new consumer from the same place (the stream is kept on disk by the
// NATS server, so nothing logged is skipped or delivered twice). When
// that fails (JetStream not answering), Follow returns the error, and
// the server calls it again a second later, from the same place.
func (s *Store) Follow(ctx context.Context, deliver func(server.LoggedPacket)) error {
	c, err := s.js.OrderedConsumer(ctx, s.name, js.OrderedConsumerConfig{
		DeliverPolicy: js.DeliverByStartSequencePolicy, OptStartSeq: s.next, MaxResetAttempts: 1})
	if err != nil {
		return fmt.Errorf("jetstream recovery store: follow: %w", err)
	}
	it, err := c.Messages()
	if err != nil {
		return fmt.Errorf("jetstream recovery store: follow: %w", err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(js.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("jetstream recovery store: follow: %w", err)
		}
		seq, p, err := decode(m)
		if seq == 0 {
			continue
		}
		s.next = seq + 1
		if err != nil {
			p = server.LoggedPacket{Offset: p.Offset} // to no namespace: moves the cut only
		}
		deliver(p)
	}
}

// Replay implements server.RecoveryReplayer with an ephemeral consumer
// on nsp's subject; complete is false when the stream's first packet is
// after after+1 once read (packets go from the front only).
func (s *Store) Replay(ctx context.Context, nsp, afterOffset, uptoOffset string, f func(server.LoggedPacket)) (bool, error) {
	if err := s.up("replay"); err != nil {
		return false, err
	}
	after, ok := sequence(afterOffset)
	if !ok {
		return false, nil
	}
	upto, _ := sequence(uptoOffset) // none delivered yet: 0
	if upto <= after {
		return s.kept(ctx, after)
	}
	c, err := s.stream.CreateConsumer(ctx, js.ConsumerConfig{FilterSubject: s.nspSubject(nsp),
		DeliverPolicy: js.DeliverByStartSequencePolicy, OptStartSeq: after + 1, AckPolicy: js.AckNonePolicy,
		InactiveThreshold: time.Minute, MemoryStorage: true})
	if err != nil {
		return false, fmt.Errorf("jetstream recovery store: replay: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.stream.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	pending := c.CachedInfo().NumPending
	for pending > 0 {
		deadline, ok := ctx.Deadline()
		wait := 5 * time.Second
		if ok {
			wait = time.Until(deadline)
		}
		batch, err := c.Fetch(int(min(pending, replayBatch)), js.FetchMaxWait(wait))
		if err != nil {
			return false, fmt.Errorf("jetstream recovery store: replay: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			pending--
			seq, p, err := decode(m)
			if seq > upto {
				pending = 0
				continue
			}
			if err == nil {
				f(p)
			}
		}
		if err := batch.Error(); err != nil {
			return false, fmt.Errorf("jetstream recovery store: replay: %w", err)
		}
		if got == 0 {
			return false, fmt.Errorf("jetstream recovery store: replay: no packet within %s", wait)
		}
	}
	return s.kept(ctx, after)
}

// kept tells whether every packet after after is still in the stream.
func (s *Store) kept(ctx context.Context, after uint64) (bool, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("jetstream recovery store: stream info: %w", err)
	}
	return info.State.FirstSeq <= after+1, nil
}
