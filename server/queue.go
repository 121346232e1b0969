package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/siobridge/siobridge/dialect"
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
		sub.Sharded = sub.Sharded || s.Sharded // node-sharded: every channel is
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
		for _, st := range s.Streams {
			if !seen["s"+st] {
				seen["s"+st] = true
				sub.Streams = append(sub.Streams, st)
			}
		}
	}
	return sub
}

// QueueStats counts what the server did with the messages it received
// from the queue (WithAdapter and ConsumeQueue).
type QueueStats struct {
	Applied     uint64 // operations performed on this server's clients
	Malformed   uint64 // messages that could not be decoded (logged, dropped)
	Unsupported uint64 // well-formed messages of kinds this server ignores, or addressed to others
	Own         uint64 // this server's own messages coming back (skipped)
	Replies     uint64 // acknowledgements and client counts routed to a waiting EmitWithAck
	PublishErrs uint64 // failed publishes (logged)
}

type queueCounters struct{ applied, malformed, unsupported, own, replies, publishErrs atomic.Uint64 }

// QueueStats returns the counters of the server's queue members.
func (s *Server) QueueStats() QueueStats {
	return QueueStats{
		Applied:     s.queue.applied.Load(),
		Malformed:   s.queue.malformed.Load(),
		Unsupported: s.queue.unsupported.Load(),
		Own:         s.queue.own.Load(),
		Replies:     s.queue.replies.Load(),
		PublishErrs: s.queue.publishErrs.Load(),
	}
}

// ConsumeQueue is the receive-only mode: the server performs the
// operations that other processes publish on a message queue for its
// clients — an emitter.Emitter in a worker, the sioemit command,
// python-socketio's write-only managers, @socket.io/redis-emitter: emits to
// namespaces, rooms and single clients (with except and volatile), joins
// and leaves, disconnects and room closing — and answers their
// acknowledgement requests, but its own broadcasts stay local. sub is
// usually QueueSubscription(d, namespaces...). It returns once the
// subscription is live; closing the returned Subscriber stops it.
//
// Like WithAdapter (which includes all of this; do not use both on one
// channel), the server uses a copy of d with its own random identity.
// Malformed messages are counted (QueueStats), logged and dropped; the
// subscription goes on.
func (s *Server) ConsumeQueue(ctx context.Context, bus queue.Bus, d dialect.Dialect, sub queue.Subscription) (queue.Subscriber, error) {
	m := newMember(s, adapterConfig{bus: bus, d: d}, false)
	subscriber, err := bus.Subscribe(ctx, sub, m.receive)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("server: consume queue (%s dialect): %w", d.Name(), err)
	}
	return &consumer{sub: subscriber, m: m}, nil
}

// consumer is ConsumeQueue's subscription and member.
type consumer struct {
	sub  queue.Subscriber
	m    *member
	once sync.Once
}

// Close ends the subscription and the member's pending work.
func (c *consumer) Close() error {
	var err error
	c.once.Do(func() {
		err = c.sub.Close()
		c.m.close()
	})
	return err
}
