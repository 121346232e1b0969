// Package streamstore is the connection-state-recovery store of the
// node-streams dialect (server.WithRecoveryStore): the sessions of
// disconnected clients and the replay of the broadcasts they missed, on
// the Redis stream of @socket.io/redis-streams-adapter, exactly as its
// Node servers keep and read them, so that a client dropped from a Node
// node recovers on a Go node and the other way round.
//
//   - The offsets are the stream's entry ids ("1700000000000-0"): every
//     node, Go or Node, appends its broadcasts to the stream and delivers
//     them with their entry id as last argument (a Go server does it when
//     the entry comes back through its adapter).
//   - A session is SET sio:session:<pid> <base64 of the msgpack map {sid,
//     pid, rooms, data}> PX <MaxAge>, and is taken with MULTI GET DEL.
//   - A restore checks that the client's offset is still in the stream
//     (XRANGE offset offset: otherwise a fresh session, never a partial
//     replay), then reads the entries after it (XRANGE, pages of
//     ReplayPage) up to the last one the server delivered, and keeps the
//     broadcasts of the namespace (type 3 entries) with their entry id.
//     Volatile broadcasts are not replayed (Node's adapter replays them,
//     though they carry no offset: a client may get them twice).
//
// Bounds: the stream is trimmed by the writers (the dialect's MaxLen,
// XADD MAXLEN ~); sessions expire after MaxAge (the server's
// maxDisconnection) and are at most MaxSessionBytes each; a replay reads
// at most ReplayPages pages of ReplayPage entries and ReplayBytes bytes of
// entries, beyond which the client gets a fresh session.
package streamstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/parser"
)

// Defaults of Options.
const (
	// DefaultSessionKeyPrefix is the adapter's sessionKeyPrefix.
	DefaultSessionKeyPrefix = "sio:session:"
	// DefaultMaxAge is socket.io's default maxDisconnectionDuration: set
	// MaxAge to the server's maxDisconnection.
	DefaultMaxAge = 2 * time.Minute
	// DefaultMaxSessionBytes bounds one session as kept (its base64):
	// a larger one is not kept (Save fails) and one found larger is
	// ignored (a fresh session).
	DefaultMaxSessionBytes = 1 << 20
	// ReplayPage is how many entries one XRANGE of a replay reads.
	ReplayPage = 100
	// DefaultReplayPages bounds the XRANGE calls of one replay, as Node's
	// restoreSession makes at most 100.
	DefaultReplayPages = 100
	// DefaultReplayBytes bounds the bytes of the entries one replay reads.
	DefaultReplayBytes = 16 << 20
	// maxPID bounds the pids looked up (longer ones are not ours).
	maxPID = 64
)

// Options configure a Store; zero values take the defaults.
type Options struct {
	// SessionKeyPrefix starts the sessions' keys (DefaultSessionKeyPrefix):
	// the Node servers' sessionKeyPrefix.
	SessionKeyPrefix string
	// MaxAge is how long a session is kept (PX): the server's
	// maxDisconnection (DefaultMaxAge).
	MaxAge time.Duration
	// MaxSessionBytes bounds a session (DefaultMaxSessionBytes).
	MaxSessionBytes int
	// ReplayPages and ReplayBytes bound a replay (DefaultReplayPages,
	// DefaultReplayBytes).
	ReplayPages, ReplayBytes int
}

// Store is a server.RecoveryReplayer on the stream of a node-streams
// dialect. Safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	d      *nodestreams.Dialect
	o      Options
}

var _ server.RecoveryReplayer = (*Store)(nil)

// New returns the store of the stream that d writes, on client (a Redis
// bus's Client(): the server, Sentinel or Cluster the cluster's bus uses).
// The server that uses it needs WithAdapter with d (or a dialect of the
// same options).
func New(client goredis.UniversalClient, d *nodestreams.Dialect, o Options) *Store {
	if o.SessionKeyPrefix == "" {
		o.SessionKeyPrefix = DefaultSessionKeyPrefix
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxSessionBytes <= 0 {
		o.MaxSessionBytes = DefaultMaxSessionBytes
	}
	if o.ReplayPages <= 0 {
		o.ReplayPages = DefaultReplayPages
	}
	if o.ReplayBytes <= 0 {
		o.ReplayBytes = DefaultReplayBytes
	}
	return &Store{client: client, d: d, o: o}
}

// Save implements server.RecoveryStore: the session as the adapter's
// persistSession writes it. Data is converted to plain data (as encoding/json
// sees Go values); nil is written {} (Node's default socket.data).
func (s *Store) Save(ctx context.Context, sess server.RecoverySession) error {
	data, err := op.Normalize(sess.Data)
	if err != nil {
		return fmt.Errorf("streams recovery store: session %s: data: %w", sess.SID, err)
	}
	if data == nil {
		data = map[string]any{}
	}
	m := node.Map{{Key: "sid", Value: sess.SID}, {Key: "pid", Value: sess.PID}, {Key: "rooms", Value: node.RoomList(sess.Rooms)}, {Key: "data", Value: data}}
	b, err := node.AppendMsgpack(nil, m)
	if err != nil {
		return fmt.Errorf("streams recovery store: session %s: %w", sess.SID, err)
	}
	v := base64.StdEncoding.EncodeToString(b)
	if len(v) > s.o.MaxSessionBytes {
		return fmt.Errorf("streams recovery store: session %s: %d bytes, more than %d", sess.SID, len(v), s.o.MaxSessionBytes)
	}
	if err := s.client.Set(ctx, s.o.SessionKeyPrefix+sess.PID, v, s.o.MaxAge).Err(); err != nil {
		return fmt.Errorf("streams recovery store: session %s: %w", sess.SID, err)
	}
	return nil
}

// Take implements server.RecoveryStore with MULTI GET DEL, as the
// adapter's restoreSession: one node gets it. The session has no
// namespace (Node's have none) and At is now (Redis expired it otherwise).
func (s *Store) Take(ctx context.Context, pid string) (server.RecoverySession, bool, error) {
	if pid == "" || len(pid) > maxPID {
		return server.RecoverySession{}, false, nil
	}
	key := s.o.SessionKeyPrefix + pid
	var get *goredis.StringCmd
	if _, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, key)
		p.Del(ctx, key)
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return server.RecoverySession{}, false, fmt.Errorf("streams recovery store: take session: %w", err)
	}
	v, err := get.Result()
	if errors.Is(err, goredis.Nil) || len(v) > s.o.MaxSessionBytes {
		return server.RecoverySession{}, false, nil
	}
	if err != nil {
		return server.RecoverySession{}, false, fmt.Errorf("streams recovery store: take session: %w", err)
	}
	sess, err := decodeSession(v)
	if err != nil {
		return server.RecoverySession{}, false, fmt.Errorf("streams recovery store: session %s: %w", pid, err)
	}
	sess.PID, sess.At = pid, time.Now()
	return sess, true, nil
}

// decodeSession reads base64 of the msgpack map {sid, pid, rooms, data}.
func decodeSession(v string) (server.RecoverySession, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return server.RecoverySession{}, err
	}
	x, err := node.DecodeMsgpack(b)
	if err != nil {
		return server.RecoverySession{}, err
	}
	m, ok := x.(map[string]any)
	if !ok {
		return server.RecoverySession{}, fmt.Errorf("a %T, not a map", x)
	}
	sid, _ := m["sid"].(string)
	rooms, err := node.RoomNames(m["rooms"])
	if sid == "" || err != nil {
		return server.RecoverySession{}, errors.New("no sid, or bad rooms")
	}
	return server.RecoverySession{SID: sid, Rooms: rooms, Data: m["data"]}, nil
}

// streamID is a parsed entry id ms-seq.
type streamID struct{ ms, seq uint64 }

// parseID reads an entry id as the adapter accepts offsets
// (^[0-9]+-[0-9]+$), within 64-bit numbers.
func parseID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || !digits(a) || !digits(b) {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}, err1 == nil && err2 == nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// next is the id right after id (the adapter's nextOffset, with the
// carry).
func (id streamID) next() string {
	if id.seq == ^uint64(0) {
		return strconv.FormatUint(id.ms+1, 10) + "-0"
	}
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq+1, 10)
}

// CompareOffsets implements server.RecoveryReplayer: entry ids in stream
// order.
func (s *Store) CompareOffsets(a, b string) (int, bool) {
	x, ok1 := parseID(a)
	y, ok2 := parseID(b)
	if c := cmp.Compare(x.ms, y.ms); c != 0 {
		return c, ok1 && ok2
	}
	return cmp.Compare(x.seq, y.seq), ok1 && ok2
}

// Replay implements server.RecoveryReplayer: XRANGE after after (it must
// be in the stream), then the entries after it up to upto, in pages; the
// broadcasts of nsp without acknowledgement and not volatile are given
// to f with their entry id as Offset.
func (s *Store) Replay(ctx context.Context, nsp, after, upto string, f func(server.LoggedPacket)) (bool, error) {
	from, ok := parseID(after)
	if !ok {
		return false, nil
	}
	stream := s.d.Stream(nsp)
	at, err := s.client.XRangeN(ctx, stream, after, after, 1).Result()
	if err != nil {
		return false, fmt.Errorf("streams recovery store: replay: %w", err)
	}
	if len(at) == 0 {
		return false, nil // trimmed, or never in the stream
	}
	if c, ok := s.CompareOffsets(upto, after); !ok || c <= 0 {
		return true, nil
	}
	start, read := from.next(), 0
	for range s.o.ReplayPages {
		page, err := s.client.XRangeN(ctx, stream, start, upto, ReplayPage).Result()
		if err != nil {
			return false, fmt.Errorf("streams recovery store: replay: %w", err)
		}
		for _, e := range page {
			for k, v := range e.Values {
				vs, _ := v.(string)
				read += len(k) + len(vs)
			}
			if read > s.o.ReplayBytes {
				return false, nil
			}
			if p, ok := s.packet(nsp, stream, e); ok {
				f(p)
			}
		}
		if len(page) < ReplayPage || page[len(page)-1].ID == upto {
			return true, nil
		}
		last, _ := parseID(page[len(page)-1].ID)
		start = last.next()
	}
	return false, nil // more than a replay reads
}

// packet is the LoggedPacket of a broadcast entry of nsp; false for the
// other entries.
func (s *Store) packet(nsp, stream string, e goredis.XMessage) (server.LoggedPacket, bool) {
	o, err := s.d.Decode(redis.StreamMessage(stream, e))
	x, ok := o.(*op.Emit)
	if err != nil || !ok || x.Ack != nil || x.Volatile || op.NamespaceOrRoot(x.Namespace) != nsp {
		return server.LoggedPacket{}, false
	}
	data, atts, err := parser.EncodeData(append([]any{x.Event}, x.Args...))
	if err != nil {
		return server.LoggedPacket{}, false
	}
	return server.LoggedPacket{Offset: e.ID, Namespace: nsp, Rooms: x.Rooms, Except: x.Except,
		Data: data, Attachments: atts, Origin: x.Origin}, true
}
