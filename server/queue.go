package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// QueueSubscription returns what a server must subscribe to, in dialect d,
// to receive the operations addressed to namespaces nss (the root
// namespace when none is given): for the node dialect the channels of
// @socket.io/redis-adapter, for the python dialects the one channel of
// python-socketio's managers.
func QueueSubscription(d dialect.Dialect, nss ...string) queue.Subscription {
	if len(nss) == 0 {
		nss = []string{"/"}
	}
	type serverSubscriber interface {
		ServerSubscription(ns string) queue.Subscription
	}
	var sub queue.Subscription
	seen := map[string]bool{}
	for _, ns := range nss {
		var s queue.Subscription
		if ss, ok := d.(serverSubscriber); ok {
			s = ss.ServerSubscription(ns)
		} else {
			s = d.ReplySubscription(ns)
		}
		for _, c := range s.Channels {
			if !seen["c"+c] {
				seen["c"+c] = true
				sub.Channels = append(sub.Channels, c)
			}
		}
		for _, p := range s.Patterns {
			if !seen["p"+p] {
				seen["p"+p] = true
				sub.Patterns = append(sub.Patterns, p)
			}
		}
	}
	return sub
}

// QueueStats counts what ConsumeQueue did with the messages it received.
type QueueStats struct {
	Applied     uint64 // operations performed on this server's clients
	Malformed   uint64 // messages that could not be decoded (logged, dropped)
	Unsupported uint64 // well-formed messages of kinds this server ignores
}

type queueCounters struct{ applied, malformed, unsupported atomic.Uint64 }

// QueueStats returns the counters of the server's queue consumers.
func (s *Server) QueueStats() QueueStats {
	return QueueStats{
		Applied:     s.queue.applied.Load(),
		Malformed:   s.queue.malformed.Load(),
		Unsupported: s.queue.unsupported.Load(),
	}
}

// ConsumeQueue makes the server perform the operations that other
// processes publish on a message queue for its clients — an emitter.Emitter
// in a worker, the sioemit command, python-socketio's write-only managers,
// @socket.io/redis-emitter: emits to namespaces, rooms and single clients
// (with except and volatile), joins and leaves, disconnects and room
// closing. sub is usually QueueSubscription(d, namespaces...). It returns
// once the subscription is live; closing the returned Subscriber stops it.
//
// Malformed messages are counted (QueueStats), logged and dropped; the
// subscription goes on. Not yet supported: acknowledgements requested
// through the queue (the event is delivered, no reply is published), and
// publishing this server's own broadcasts for other server nodes.
func (s *Server) ConsumeQueue(ctx context.Context, bus queue.Bus, d dialect.Dialect, sub queue.Subscription) (queue.Subscriber, error) {
	subscriber, err := bus.Subscribe(ctx, sub, func(m queue.Message) { s.applyQueued(d, m) })
	if err != nil {
		return nil, fmt.Errorf("server: consume queue (%s dialect): %w", d.Name(), err)
	}
	return subscriber, nil
}

// applyQueued decodes one queue message and performs it.
func (s *Server) applyQueued(d dialect.Dialect, m queue.Message) {
	o, err := d.Decode(m)
	if err != nil {
		if errors.Is(err, dialect.ErrUnsupported) {
			s.queue.unsupported.Add(1)
			return
		}
		s.queue.malformed.Add(1)
		s.log.Warn("server: dropped a malformed queue message", "channel", m.Channel, "bytes", len(m.Data), "err", err)
		return
	}
	if applyOp(s, d.Origin(), o) {
		s.queue.applied.Add(1)
	} else {
		s.queue.unsupported.Add(1)
	}
}

// applyOp performs o on this server's sockets; false for ops a server does
// not perform (replies, counts, server-side emits) or its own ops.
func applyOp(s *Server, self string, o op.Op) bool {
	switch o := o.(type) {
	case *op.Emit:
		if o.Origin != "" && o.Origin == self {
			return false
		}
		b := s.selection(o.Target)
		if b == nil {
			return true // no such namespace here: nobody to deliver to
		}
		if o.Volatile {
			b = b.Volatile()
		}
		if err := b.Emit(o.Event, o.Args...); err != nil {
			s.log.Warn("server: queued emit failed", "event", o.Event, "err", err)
		}
	case *op.Join:
		if b := s.selection(o.Target); b != nil {
			b.SocketsJoin(o.Rooms...)
		}
	case *op.Leave:
		if b := s.selection(o.Target); b != nil {
			b.SocketsLeave(o.Rooms...)
		}
	case *op.Disconnect:
		if b := s.selection(o.Target); b != nil {
			b.DisconnectSockets(o.Close)
		}
	case *op.CloseRoom:
		if n := s.lookup(op.NamespaceOrRoot(o.Namespace)); n != nil {
			n.CloseRoom(o.Room)
		}
	default:
		return false
	}
	return true
}

// selection is the broadcast an op's target describes, or nil when the
// namespace does not exist on this server.
func (s *Server) selection(t op.Target) *Broadcast {
	n := s.lookup(op.NamespaceOrRoot(t.Namespace))
	if n == nil {
		return nil
	}
	b := &Broadcast{n: n}
	if len(t.Rooms) > 0 {
		b = b.To(t.Rooms...)
	}
	if len(t.Except) > 0 {
		b = b.Except(t.Except...)
	}
	return b
}
