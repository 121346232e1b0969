package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/siobridge/siobridge/internal/jsonstr"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

const (
	// recoveryCatchUp is how long a restore waits for this node to have
	// delivered the client's offset (the client may come from a node
	// ahead of this one); past it, the session is fresh.
	recoveryCatchUp = time.Second
	// sharedRetry is the pause before following the log again after it
	// failed.
	sharedRetry = time.Second
)

// streamDialect is implemented by dialects whose broadcasts are entries
// of a log whose ids are the offsets (node-streams): Stream names the log
// of namespace ns.
type streamDialect interface {
	Stream(ns string) string
}

// sharedLog is a server's side of a RecoveryReplayer: it follows the log
// (a RecoveryLog) or takes the logged broadcasts the adapter brings back,
// and delivers them to the local sockets, in log order.
type sharedLog struct {
	r      *recovery
	log    RecoveryReplayer
	follow RecoveryLog            // nil: the packets come through the adapter
	logOf  func(ns string) string // the log of a namespace (the adapter's stream); nil: one log
	node   string                 // Origin of this server's packets

	mu        sync.Mutex
	delivered map[string]string // per log: offset of the last packet processed; set with its namespace's log lock held
	tick      chan struct{}     // closed when delivered moves, for waitDelivered; nil when nobody waits

	cancel context.CancelFunc
	done   chan struct{}
}

func newSharedLog(r *recovery, l RecoveryReplayer) *sharedLog {
	sl := &sharedLog{r: r, log: l, node: engineio.NewID(), delivered: map[string]string{}}
	sl.follow, _ = l.(RecoveryLog)
	return sl
}

// fed returns the shared log when its packets come through the adapter.
func (r *recovery) fed() *sharedLog {
	if r == nil || r.shared == nil || r.shared.follow != nil || r.shared.logOf == nil {
		return nil
	}
	return r.shared
}

// start binds the recovery to s's adapter and follows a RecoveryLog until
// stop (Server.New). A store whose packets come through the adapter needs
// one whose dialect writes them (node-streams); without it the sessions
// and packets are kept in the process, and the error is logged.
func (r *recovery) start(s *Server) {
	if r == nil || r.shared == nil {
		return
	}
	sl := r.shared
	if sl.follow == nil {
		var sd streamDialect
		if s.member != nil {
			sd, _ = s.member.d.(streamDialect)
		}
		if sd == nil {
			s.log.Error("socket.io: recovery: the store's packets come through the adapter, which needs WithAdapter with a dialect that logs broadcasts (node-streams): sessions and packets kept in the process instead")
			r.shared, r.store = nil, newMemoryStore(r.maxAge, r.sessionBytes, func() time.Time { return r.now() })
			return
		}
		sl.logOf = sd.Stream
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	sl.cancel, sl.done = cancel, make(chan struct{})
	go func() {
		defer close(sl.done)
		for {
			err := sl.follow.Follow(ctx, func(p LoggedPacket) { sl.deliver(s, p) })
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("socket.io: recovery: following the packet log", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(sharedRetry):
			}
		}
	}()
}

// stop ends start's goroutine (Server.Shutdown), waiting for it until
// ctx ends (a RecoveryLog whose Follow does not return leaves it behind).
func (r *recovery) stop(ctx context.Context) error {
	if r == nil || r.shared == nil || r.shared.cancel == nil {
		return nil
	}
	r.shared.cancel()
	select {
	case <-r.shared.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("socket.io: shutdown: the recovery log's Follow did not return: %w", ctx.Err())
	}
}

// emitShared logs b's emit, if there is a shared log and the broadcast is
// logged; handled is false otherwise (b.Emit goes on). A RecoveryLog
// takes the packet; a log fed by the adapter gets it through the
// adapter, without delivering it here now: it comes back from the log.
func (b *Broadcast) emitShared(event string, args []any) (handled bool, err error) {
	r := b.n.s.recovery
	if r == nil || r.shared == nil || b.volatile {
		return false, nil
	}
	if r.shared.follow == nil {
		if b.local && !b.private { // Node's local flag: this node's sockets, no offset
			return false, nil
		}
		return true, b.n.s.member.publishEmit(b, event, args)
	}
	data, atts, err := parser.EncodeData(append(append(make([]any, 0, len(args)+1), event), args...))
	if err != nil {
		return true, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), RecoveryStoreTimeout)
	defer cancel()
	p := LoggedPacket{Namespace: b.n.name, Rooms: b.rooms, Except: b.except, Data: data, Attachments: atts,
		Origin: r.shared.node, Local: b.local}
	if err := r.shared.follow.Append(ctx, p); err != nil {
		return true, fmt.Errorf("socket.io: emit %q: recovery log: %w", event, err)
	}
	return true, nil
}

// withOffset is p's data with its offset appended as the last argument.
func withOffset(data []byte, offset string) json.RawMessage {
	d := bytes.TrimRight(data, " \t\r\n")
	if len(d) < 2 || d[len(d)-1] != ']' {
		return json.RawMessage(data)
	}
	out := append(make([]byte, 0, len(d)+len(offset)+8), d[:len(d)-1]...)
	out = append(jsonstr.Append(append(out, ','), offset), ']')
	return out
}

// encodeLogged is the packet of p in namespace n, with its offset.
func (r *recovery) encodeLogged(n *Namespace, p *LoggedPacket) (json.RawMessage, []engineio.Message, error) {
	data := withOffset(p.Data, p.Offset)
	msgs, err := n.s.encode(&parser.Packet{Type: parser.Event, Namespace: n.name, Data: data, Attachments: p.Attachments})
	if err != nil {
		return nil, nil, err
	}
	engineio.PrepareBroadcast(msgs)
	return data, msgs, nil
}

// eventName is the first element of data, when a string.
func eventName(data []byte) string {
	var head []json.RawMessage
	var name string
	if json.Unmarshal(data, &head) == nil && len(head) > 0 {
		json.Unmarshal(head[0], &name)
	}
	return name
}

// key is the log of namespace ns ("" for a RecoveryLog: one log).
func (sl *sharedLog) key(ns string) string {
	if sl.logOf == nil {
		return ""
	}
	return sl.logOf(ns)
}

// deliverEmit delivers a logged broadcast the adapter brought back with
// its offset (a fed log), this node's own included.
func (sl *sharedLog) deliverEmit(s *Server, e *op.Emit) error {
	data, atts, err := parser.EncodeData(append(append(make([]any, 0, len(e.Args)+1), e.Event), e.Args...))
	if err != nil {
		sl.moved(sl.key(e.Namespace), e.Offset)
		return err
	}
	sl.deliver(s, LoggedPacket{Offset: e.Offset, Namespace: op.NamespaceOrRoot(e.Namespace), Rooms: e.Rooms, Except: e.Except,
		Data: data, Attachments: atts, Origin: e.Origin})
	return nil
}

// deliver sends p to this server's sockets it selects (Follow's callback).
func (sl *sharedLog) deliver(s *Server, p LoggedPacket) {
	key := sl.key(p.Namespace)
	n := s.existing(p.Namespace)
	if n == nil || n.plog == nil || (p.Local && p.Origin != sl.node) {
		sl.moved(key, p.Offset)
		return
	}
	b := &Broadcast{n: n, rooms: p.Rooms, except: p.Except}
	start := s.stats.startBroadcast(false, time.Time{})
	l := n.plog
	l.mu.Lock()
	rec := &recording{l: l, b: b}
	defer rec.done()
	defer sl.moved(key, p.Offset) // before the log lock is released: a restore then cuts exactly
	data, msgs, err := sl.r.encodeLogged(n, &p)
	if err != nil {
		s.log.Warn("socket.io: recovery: packet not delivered", "offset", p.Offset, "err", err)
		return
	}
	event := ""
	if s.hooks.list.Load() != nil {
		event = eventName(p.Data)
	}
	delivered := 0
	for _, sock := range b.targets() {
		s.hooks.eventSent(sock, event, data, p.Attachments)
		rec.send(sock, msgs)
		delivered++
	}
	s.stats.broadcast(delivered, start, false)
}

// moved records that the packets of log key up to offset were processed
// (offsets only move forward: the start of a new subscription to the
// log may come after packets already delivered).
func (sl *sharedLog) moved(key, offset string) {
	if offset == "" {
		return
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if cur, ok := sl.delivered[key]; ok {
		if c, valid := sl.log.CompareOffsets(cur, offset); !valid || c >= 0 {
			return
		}
	}
	sl.delivered[key] = offset
	if sl.tick != nil {
		close(sl.tick)
		sl.tick = nil
	}
}

// waitDelivered waits, up to recoveryCatchUp, until the packets of log
// key up to offset were processed here.
func (sl *sharedLog) waitDelivered(key, offset string) bool {
	timer := time.NewTimer(recoveryCatchUp)
	defer timer.Stop()
	for {
		sl.mu.Lock()
		if cur, ok := sl.delivered[key]; ok {
			if c, _ := sl.log.CompareOffsets(cur, offset); c >= 0 {
				sl.mu.Unlock()
				return true
			}
		}
		if sl.tick == nil {
			sl.tick = make(chan struct{})
		}
		ch := sl.tick
		sl.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// add is recovery.add with a shared log: the missed packets are read from
// the log up to the last one processed here, under n's log lock, so that
// the next one reaches s live.
func (sl *sharedLog) add(n *Namespace, s *Socket) bool {
	key := sl.key(n.name)
	if !sl.waitDelivered(key, s.csr.offset) {
		return false
	}
	rooms := make(map[string]struct{}, len(s.csr.rooms))
	for _, room := range s.csr.rooms {
		rooms[room] = struct{}{}
	}
	l := n.plog
	l.mu.Lock()
	defer l.mu.Unlock()
	n.mu.Lock()
	_, taken := n.sockets[s.id] // the same session restored twice at once
	n.mu.Unlock()
	if taken {
		return false
	}
	sl.mu.Lock()
	upto := sl.delivered[key]
	sl.mu.Unlock()
	var missed [][]engineio.Message
	var failed error
	ctx, cancel := context.WithTimeout(context.Background(), RecoveryStoreTimeout)
	defer cancel()
	complete, err := sl.log.Replay(ctx, n.name, s.csr.offset, upto, func(p LoggedPacket) {
		e := logEntry{rooms: p.Rooms, except: p.Except}
		if failed != nil || !e.reaches(rooms) || (p.Local && p.Origin != sl.node && !sl.r.reachesLocal(&p, s)) {
			return
		}
		_, msgs, err := sl.r.encodeLogged(n, &p)
		if err != nil {
			failed = err
			return
		}
		missed = append(missed, msgs)
	})
	if err == nil {
		err = failed
	}
	if err != nil || !complete {
		if err != nil {
			n.s.log.Warn("socket.io: recovery: replay", "sid", s.id, "err", err)
		}
		return false
	}
	if !n.add(s) {
		return false
	}
	s.Join(s.csr.rooms...)
	s.csr.rooms = nil
	s.mu.Lock()
	s.csr.out = append(s.csr.out, missed...) // s is connecting: sent after the CONNECT reply
	s.mu.Unlock()
	return true
}

// reachesLocal tells whether a Local packet of another node reached s
// there: only a packet to s's own id can be known to have (the others
// went to that node's sockets, s was one of them only if it was there).
func (r *recovery) reachesLocal(p *LoggedPacket, s *Socket) bool {
	for _, room := range p.Rooms {
		if room == s.id {
			return true
		}
	}
	return false
}

// errNoAdapter is publishEmit's error without a publishing member.
var errNoAdapter = errors.New("socket.io: the recovery store's packets go through the adapter: WithAdapter is needed")
