// Package queue defines the bus: what siobridge needs from a message broker.
// A bus publishes opaque messages to named channels and delivers the messages
// of subscribed channels (and, where the broker supports it, channel
// patterns). Concrete buses live in adapter/redis, adapter/amqp and
// adapter/nats; queue/memory is an in-process bus for unit tests.
//
// Channels are the dialect's names (python: "flask-socketio"; node:
// "socket.io#/#room#"); each bus maps them onto its broker's own objects
// (Redis channels, AMQP fanout exchanges, NATS subjects).
package queue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one queue message.
type Message struct {
	// Channel is the dialect-level channel name.
	Channel string
	// Data is the payload, opaque to the bus.
	Data []byte
	// ContentType and ContentEncoding are message properties for brokers
	// that carry them (AMQP); other buses ignore them on publish and leave
	// them empty on delivery.
	ContentType     string
	ContentEncoding string
	// Pattern is the subscription pattern that matched, on delivery of a
	// pattern subscription; empty otherwise.
	Pattern string
	// Sharded publishes the message on Redis sharded Pub/Sub (SPUBLISH,
	// Redis >= 7): only the subscribers of a Sharded subscription to the
	// channel receive it. Buses of other brokers have one kind of channel
	// and deliver it like any message (see each bus); on delivery it tells
	// the message came through a Sharded subscription.
	Sharded bool
	// Stream appends the message as an entry of the stream named Channel
	// (Redis Streams: XADD, as @socket.io/redis-streams-adapter does)
	// instead of publishing it; Data holds the entry's field/value pairs,
	// written with AppendStreamField. On delivery (a Subscription's
	// Streams) it is set, with ID. Buses without streams refuse such a
	// message with an error wrapping ErrStreamsUnsupported.
	Stream bool
	// MaxLen, for a Stream message, trims the stream to about MaxLen
	// entries as the entry is added (XADD MAXLEN ~ MaxLen); 0 does not trim.
	MaxLen int64
	// ID is the stream entry's id, on delivery of a Stream message
	// ("1700000000000-0" on Redis); empty otherwise.
	ID string
}

// Subscription lists what to receive.
type Subscription struct {
	// Channels are exact channel names.
	Channels []string
	// Patterns are Redis-style glob patterns ("socket.io#/#*"). Buses that
	// cannot match patterns return ErrPatternsUnsupported.
	Patterns []string
	// Sharded subscribes to the channels on Redis sharded Pub/Sub
	// (SSUBSCRIBE, Redis >= 7), to receive the messages published Sharded.
	// Sharded Pub/Sub has no patterns: a Sharded subscription with
	// Patterns is refused (ErrPatternsUnsupported).
	Sharded bool
	// Streams are streams to read (Redis Streams: XREAD), from the entries
	// appended after Subscribe returns, in order, resuming after the last
	// entry read when the connection comes back; each entry is delivered as
	// a Message with Stream and ID set and Channel the stream's name. Buses
	// without streams refuse such a subscription with an error wrapping
	// ErrStreamsUnsupported. A subscription may hold channels and streams:
	// its handler is still called one message at a time.
	Streams []string
}

// Handler receives the messages of a subscription. The bus calls it from one
// goroutine per subscription, one message at a time; it must not block for
// long. The Message and its Data belong to the handler.
type Handler func(Message)

// Bus is a connection to a message broker. Implementations are safe for
// concurrent use, reconnect by themselves after a broker outage and
// re-establish every live subscription.
type Bus interface {
	// Publish sends the messages in order. It returns when the broker has
	// taken them (or the bus has handed them to the broker's connection,
	// for brokers without publish confirmation), or with an error when ctx
	// ends first or the broker refuses. Like io.Writer, it must not keep
	// msgs or their Data once it returns: callers reuse the buffers.
	Publish(ctx context.Context, msgs ...Message) error
	// Subscribe starts delivering the messages of sub to h. It returns once
	// the broker has confirmed the subscription, so that a message published
	// after Subscribe returns is delivered.
	Subscribe(ctx context.Context, sub Subscription, h Handler) (Subscriber, error)
	// Close stops every goroutine of the bus and closes its connections.
	Close() error
}

// Subscriber is a live subscription.
type Subscriber interface {
	// Close ends the subscription; no handler call starts after it returns.
	Close() error
}

// StreamReader is implemented by the Subscribers of subscriptions with
// Streams. StreamStart returns the id of the entry after which the
// subscription started reading stream (the first entry it delivers comes
// after it; "0-0" for a stream that was empty); ok is false for a stream
// it does not read.
type StreamReader interface {
	StreamStart(stream string) (id string, ok bool)
}

// AsyncPublisher is implemented by buses that can queue messages for the
// broker without waiting for it: PublishAsync queues msgs after every
// earlier publish of the bus and returns at once (or with an error, and
// nothing queued); wait returns what Publish would have returned, or
// ctx's error when ctx ends first. Several batches may be in flight, and
// reach the broker in the order PublishAsync queued them. Like Publish,
// PublishAsync keeps neither msgs nor their Data once it returns.
// (adapter/redis's buses implement it.)
type AsyncPublisher interface {
	PublishAsync(msgs ...Message) (wait func(ctx context.Context) error, err error)
}

// SubscriberCounter is implemented by buses that can count the subscribers
// of a channel (Redis PUBSUB NUMSUB). The node dialect uses it to know how
// many servers will answer a request.
type SubscriberCounter interface {
	NumSub(ctx context.Context, channel string) (int, error)
}

// Stats are counters a bus keeps about itself.
type Stats struct {
	Published   uint64 // messages handed to the broker
	Delivered   uint64 // messages passed to handlers
	Reconnects  uint64 // successful reconnections after a failure
	PublishErrs uint64 // Publish calls that returned an error
	// Disconnected is the time the bus has spent without its broker,
	// the outage under way included.
	Disconnected time.Duration
}

// Counters are the atomic counters behind Stats, for buses to keep.
type Counters struct {
	Published, Delivered, Reconnects, PublishErrs atomic.Uint64
	// DownNanos is the length of the outages that ended; DownSince the
	// start of the one under way (Unix nanoseconds), 0 when connected.
	DownNanos, DownSince atomic.Int64
}

// Snapshot returns the counters as Stats.
func (c *Counters) Snapshot() Stats {
	return Stats{
		Published:    c.Published.Load(),
		Delivered:    c.Delivered.Load(),
		Reconnects:   c.Reconnects.Load(),
		PublishErrs:  c.PublishErrs.Load(),
		Disconnected: c.disconnected(),
	}
}

// disconnected is DownNanos plus the outage under way.
func (c *Counters) disconnected() time.Duration {
	d := c.DownNanos.Load()
	if since := c.DownSince.Load(); since != 0 {
		if now := time.Now().UnixNano(); now > since {
			d += now - since
		}
	}
	return time.Duration(d)
}

// StatsReporter is implemented by buses that keep Stats.
type StatsReporter interface {
	Stats() Stats
}

// HealthReporter is implemented by buses that know whether their broker
// connection is up at the moment.
type HealthReporter interface {
	Connected() bool
}

// ErrPatternsUnsupported is returned by Subscribe on buses whose broker
// cannot match channel patterns.
var ErrPatternsUnsupported = errors.New("queue: this bus does not support pattern subscriptions")

// ErrStreamsUnsupported is wrapped by the errors of Publish and Subscribe
// on buses whose broker has no streams (Message.Stream,
// Subscription.Streams).
var ErrStreamsUnsupported = errors.New("queue: this bus does not support streams")

// ErrClosed is returned by operations on a closed bus.
var ErrClosed = errors.New("queue: bus is closed")

// ErrForbidden is wrapped by the errors of subscriptions and publishes
// that the broker refused for lack of permission (a Redis ACL user without
// the channel, NOPERM; a NATS user without the subject): retrying does not
// help until the broker's permissions change.
var ErrForbidden = errors.New("queue: the broker refused access")

// Opener opens a bus from a URL.
type Opener func(ctx context.Context, u *url.URL) (Bus, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
)

// Register makes a bus available to Open under a URL scheme. Adapters call
// it from their init function; importing an adapter package registers it.
func Register(scheme string, open Opener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[scheme]; dup {
		panic("queue: Register called twice for scheme " + scheme)
	}
	registry[scheme] = open
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens a bus from a URL whose scheme an imported adapter registered
// ("redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672/",
// "nats://127.0.0.1:4222").
func Open(ctx context.Context, rawURL string) (Bus, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("queue: invalid broker URL: %w", err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("queue: broker URL %q has no scheme (want one of %s)", Redact(rawURL), strings.Join(Schemes(), ", "))
	}
	registryMu.RLock()
	open, ok := registry[strings.ToLower(u.Scheme)]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("queue: unsupported broker URL scheme %q (registered: %s; import the adapter package)", u.Scheme, strings.Join(Schemes(), ", "))
	}
	return open(ctx, u)
}

// Redact returns rawURL with any password replaced, for error messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<invalid URL>"
	}
	return u.Redacted()
}
