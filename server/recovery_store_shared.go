package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/siobridge/siobridge/internal/jsonstr"
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

const (
	// sharedEpoch starts the offsets of a shared log (then the packet's
	// Seq in base 36): the same on every node.
	sharedEpoch = "~"
	// recoveryCatchUp is how long a restore waits for this node to have
	// delivered the client's offset (the client may come from a node
	// ahead of this one); past it, the session is fresh.
	recoveryCatchUp = time.Second
	// sharedRetry is the pause before following the log again after it
	// failed.
	sharedRetry = time.Second
)

// sharedLog is a server's side of a RecoveryLog: it follows the log and
// delivers its packets to the local sockets, in log order.
type sharedLog struct {
	r    *recovery
	log  RecoveryLog
	node string // Origin of this server's packets

	mu        sync.Mutex
	delivered uint64        // Seq of the last packet followed; set with its namespace's log lock held
	tick      chan struct{} // closed when delivered moves, for waitDelivered; nil when nobody waits

	cancel context.CancelFunc
	done   chan struct{}
}

func newSharedLog(r *recovery, l RecoveryLog) *sharedLog {
	return &sharedLog{r: r, log: l, node: engineio.NewID()}
}

// start follows the log until stop (Server.New).
func (r *recovery) start(s *Server) {
	if r == nil || r.shared == nil {
		return
	}
	sl := r.shared
	ctx, cancel := context.WithCancel(context.Background())
	sl.cancel, sl.done = cancel, make(chan struct{})
	go func() {
		defer close(sl.done)
		for {
			err := sl.log.Follow(ctx, func(p LoggedPacket) { sl.deliver(s, p) })
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

// emitShared appends b's emit to the shared log, if there is one and the
// broadcast is logged; handled is false otherwise (b.Emit goes on).
func (b *Broadcast) emitShared(event string, args []any) (handled bool, err error) {
	r := b.n.s.recovery
	if r == nil || r.shared == nil || b.volatile {
		return false, nil
	}
	data, atts, err := parser.EncodeData(append(append(make([]any, 0, len(args)+1), event), args...))
	if err != nil {
		return true, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), RecoveryStoreTimeout)
	defer cancel()
	p := LoggedPacket{Namespace: b.n.name, Rooms: b.rooms, Except: b.except, Data: data, Attachments: atts,
		Origin: r.shared.node, Local: b.local}
	if err := r.shared.log.Append(ctx, p); err != nil {
		return true, fmt.Errorf("socket.io: emit %q: recovery log: %w", event, err)
	}
	return true, nil
}

// withOffset is p's data with its offset appended as the last argument.
func (r *recovery) withOffset(data []byte, seq uint64) json.RawMessage {
	d := bytes.TrimRight(data, " \t\r\n")
	if len(d) < 2 || d[len(d)-1] != ']' {
		return json.RawMessage(data)
	}
	out := append(make([]byte, 0, len(d)+16), d[:len(d)-1]...)
	out = append(jsonstr.Append(append(out, ','), r.offset(seq)), ']')
	return out
}

// encodeLogged is the packet of p in namespace n, with its offset.
func (r *recovery) encodeLogged(n *Namespace, p *LoggedPacket) (json.RawMessage, []engineio.Message, error) {
	data := r.withOffset(p.Data, p.Seq)
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

// deliver sends p to this server's sockets it selects (Follow's callback).
func (sl *sharedLog) deliver(s *Server, p LoggedPacket) {
	n := s.existing(p.Namespace)
	if n == nil || n.plog == nil || (p.Local && p.Origin != sl.node) {
		sl.moved(p.Seq)
		return
	}
	b := &Broadcast{n: n, rooms: p.Rooms, except: p.Except}
	start := s.stats.startBroadcast(false, time.Time{})
	l := n.plog
	l.mu.Lock()
	rec := &recording{l: l, b: b, seq: p.Seq}
	defer rec.done()
	defer sl.moved(p.Seq) // before the log lock is released: a restore then cuts exactly
	data, msgs, err := sl.r.encodeLogged(n, &p)
	if err != nil {
		s.log.Warn("socket.io: recovery: packet not delivered", "seq", p.Seq, "err", err)
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

// moved records that the packets up to seq were delivered.
func (sl *sharedLog) moved(seq uint64) {
	sl.mu.Lock()
	sl.delivered = seq
	if sl.tick != nil {
		close(sl.tick)
		sl.tick = nil
	}
	sl.mu.Unlock()
}

// waitDelivered waits, up to recoveryCatchUp, until the packets up to seq
// were delivered here.
func (sl *sharedLog) waitDelivered(seq uint64) bool {
	timer := time.NewTimer(recoveryCatchUp)
	defer timer.Stop()
	for {
		sl.mu.Lock()
		if sl.delivered >= seq {
			sl.mu.Unlock()
			return true
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
// the log up to the last one delivered here, under n's log lock, so that
// the next one reaches s live.
func (sl *sharedLog) add(n *Namespace, s *Socket) bool {
	if !sl.waitDelivered(s.csr.offset) {
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
	upto := sl.delivered
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
