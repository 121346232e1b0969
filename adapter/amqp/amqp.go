// Package amqp is the RabbitMQ (AMQP 0-9-1) bus of siobridge, on
// amqp091-go.
//
// The topology is exactly the one python-socketio's KombuManager declares,
// so Go processes and Python servers share it: a channel name C is a fanout
// exchange named C (durable=false, auto_delete=false, no arguments), and
// every subscriber has its own queue "siobridge.<uuid4>" (durable=false,
// x-expires 300000 ms like Kombu's) bound to the exchanges of its channels
// with routing key "". Messages are published with routing key "",
// delivery mode 2 and the Message's content type and encoding (Kombu turns
// the body into a str, bytes or dict by these).
//
// RabbitMQ has one kind of channel: queue.Message.Sharded and
// queue.Subscription.Sharded (Redis sharded Pub/Sub) are ignored for
// routing — a sharded message goes to its channel's exchange like any
// other, and a Sharded subscription receives every message of its
// channels, delivered with Sharded set. A dialect that publishes sharded
// (node-sharded) therefore works between siobridge processes on RabbitMQ.
//
// URLs: amqp://user:password@host:port/vhost and amqps://. Importing the
// package registers both schemes with queue.Open.
//
// The bus reconnects by itself with back-off, re-declares the exchanges and
// re-binds the same queues (messages published during an outage shorter
// than x-expires are delivered after it, unless the broker itself
// restarted: its non-durable queues are gone). It logs when it loses the
// broker and when it is back, with how long it was away, and counts each
// return in Stats().Reconnects. Publishes use publisher confirms:
// Publish returns once RabbitMQ has taken every message, or with an error
// when its context ends first.
package amqp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/siobridge/siobridge/internal/outage"
	"github.com/siobridge/siobridge/queue"
)

func init() {
	for _, s := range []string{"amqp", "amqps"} {
		queue.Register(s, func(ctx context.Context, u *url.URL) (queue.Bus, error) {
			return Open(ctx, u.String())
		})
	}
}

// QueueExpires is the x-expires argument of subscriber queues, as Kombu sets it.
const QueueExpires = 300000

// Option configures a Bus.
type Option func(*Bus)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(b *Bus) { b.log = l } }

// WithConnectionName sets the connection_name client property that
// RabbitMQ shows in its management tools (default "siobridge").
func WithConnectionName(name string) Option { return func(b *Bus) { b.connName = name } }

// Bus is an AMQP queue.Bus. It is safe for concurrent use.
type Bus struct {
	url  string
	safe string // URL without password, for messages
	log  *slog.Logger
	// connName is the connection_name client property.
	connName string

	mu       sync.Mutex
	conn     *amqp.Connection
	pub      *amqp.Channel
	declared map[string]bool
	up       chan struct{} // closed while connected
	subs     map[*subscriber]struct{}
	closed   bool
	pubMu    sync.Mutex // serializes publishes on the confirm channel
	stop     chan struct{}
	wg       sync.WaitGroup
	ctr      queue.Counters // Stats
	state    outage.Tracker
}

// Open connects to RabbitMQ at rawURL before ctx ends.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Bus, error) {
	if _, err := amqp.ParseURI(rawURL); err != nil {
		return nil, fmt.Errorf("amqp: invalid URL %s: %w", queue.Redact(rawURL), err)
	}
	b := &Bus{
		url:      rawURL,
		safe:     queue.Redact(rawURL),
		log:      slog.New(slog.DiscardHandler),
		declared: map[string]bool{},
		up:       make(chan struct{}),
		subs:     map[*subscriber]struct{}{},
		stop:     make(chan struct{}),
		connName: "siobridge",
	}
	for _, o := range opts {
		o(b)
	}
	b.state = outage.Tracker{Log: b.log, Bus: "amqp", URL: b.safe, Counters: &b.ctr}
	conn, pub, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	b.setConn(conn, pub) // no subscriber yet: cannot fail
	b.wg.Add(1)
	go b.watch(conn)
	return b, nil
}

func (b *Bus) dial(ctx context.Context) (*amqp.Connection, *amqp.Channel, error) {
	cfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: 10 * time.Second}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if dl, ok := ctx.Deadline(); ok {
				c.SetDeadline(dl) // bounds the handshake; amqp091 clears it once the connection is open
			}
			return c, nil
		},
		Properties: amqp.Table{"product": "siobridge", "connection_name": b.connName},
	}
	conn, err := amqp.DialConfig(b.url, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("amqp: connect to %s: %w", b.safe, err)
	}
	pub, err := conn.Channel()
	if err == nil {
		err = pub.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("amqp: open a confirm channel on %s: %w", b.safe, err)
	}
	return conn, pub, nil
}

// setConn re-establishes the subscribers on a new connection and installs
// it. When a subscriber cannot be restored it returns the error and
// installs nothing: the caller closes conn and tries again later, so that
// no subscription stays dead on a live connection.
func (b *Bus) setConn(conn *amqp.Connection, pub *amqp.Channel) error {
	b.mu.Lock()
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		if err := s.start(conn); err != nil {
			return fmt.Errorf("resubscribe queue %q: %w", s.queue, err)
		}
	}
	b.mu.Lock()
	b.conn, b.pub = conn, pub
	b.declared = map[string]bool{}
	close(b.up)
	b.mu.Unlock()
	return nil
}

// watch reconnects whenever the connection closes, until Close.
func (b *Bus) watch(conn *amqp.Connection) {
	defer b.wg.Done()
	for {
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-b.stop:
			return
		case err := <-closed:
			b.mu.Lock()
			if b.closed {
				b.mu.Unlock()
				return
			}
			b.up = make(chan struct{})
			b.conn, b.pub = nil, nil
			b.mu.Unlock()
			b.state.Lost(err)
		}
		backoff := 100 * time.Millisecond
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, pub, err := b.dial(ctx)
			cancel()
			if err == nil {
				if err = b.setConn(c, pub); err == nil {
					conn = c
					b.state.Back()
					break
				}
				c.Close()
				b.log.Warn("amqp: resubscribe failed; reconnecting to retry", "url", b.safe, "err", err, "retry_in", backoff)
			} else {
				b.log.Debug("amqp: reconnect failed", "err", err, "retry_in", backoff)
			}
			select {
			case <-b.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

// current waits for a live connection until ctx ends.
func (b *Bus) current(ctx context.Context) (*amqp.Connection, *amqp.Channel, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, nil, queue.ErrClosed
		}
		conn, pub, up := b.conn, b.pub, b.up
		b.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, pub, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("amqp: not connected to %s: %w", b.safe, ctx.Err())
		case <-b.stop:
			return nil, nil, queue.ErrClosed
		}
	}
}

// declareExchange declares the fanout exchange of channel as Kombu does.
func declareExchange(ch *amqp.Channel, name string) error {
	if err := ch.ExchangeDeclare(name, "fanout", false, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %q: %w", name, err)
	}
	return nil
}

// Publish publishes msgs to their channels' exchanges and waits for
// RabbitMQ's confirmations.
func (b *Bus) Publish(ctx context.Context, msgs ...queue.Message) error {
	if err := b.publish(ctx, msgs); err != nil {
		b.ctr.PublishErrs.Add(1)
		if errors.Is(err, queue.ErrClosed) {
			return err
		}
		return fmt.Errorf("amqp: publish to %s: %w", b.safe, err)
	}
	b.ctr.Published.Add(uint64(len(msgs)))
	return nil
}

func (b *Bus) publish(ctx context.Context, msgs []queue.Message) error {
	if err := queue.NoStreams(msgs); err != nil {
		return err
	}
	_, pub, err := b.current(ctx)
	if err != nil {
		return err
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	b.pubMu.Lock()
	for _, m := range msgs {
		b.mu.Lock()
		known := b.declared[m.Channel]
		b.mu.Unlock()
		if !known {
			if err := declareExchange(pub, m.Channel); err != nil {
				b.pubMu.Unlock()
				return err
			}
			b.mu.Lock()
			b.declared[m.Channel] = true
			b.mu.Unlock()
		}
		c, err := pub.PublishWithDeferredConfirmWithContext(ctx, m.Channel, "", false, false, amqp.Publishing{
			ContentType:     m.ContentType,
			ContentEncoding: m.ContentEncoding,
			DeliveryMode:    amqp.Persistent,
			Headers:         amqp.Table{},
			Body:            m.Data,
		})
		if err != nil {
			b.pubMu.Unlock()
			return err
		}
		confirms = append(confirms, c)
	}
	b.pubMu.Unlock()
	for _, c := range confirms {
		ok, err := c.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("RabbitMQ refused (nack) a message")
		}
	}
	return nil
}

// Subscribe declares a queue for sub's channels and consumes it. Patterns
// are not supported (queue.ErrPatternsUnsupported).
func (b *Bus) Subscribe(ctx context.Context, sub queue.Subscription, h queue.Handler) (queue.Subscriber, error) {
	if err := queue.NoStreamSubscription(sub); err != nil {
		return nil, fmt.Errorf("amqp: subscribe: %w", err)
	}
	if len(sub.Patterns) > 0 {
		return nil, queue.ErrPatternsUnsupported
	}
	if len(sub.Channels) == 0 {
		return nil, errors.New("amqp: subscribe: no channel")
	}
	conn, _, err := b.current(ctx)
	if err != nil {
		return nil, err
	}
	s := &subscriber{bus: b, channels: append([]string(nil), sub.Channels...), h: h, queue: "siobridge." + uuid4(), sharded: sub.Sharded}
	if err := s.start(conn); err != nil {
		return nil, fmt.Errorf("amqp: subscribe to %q on %s: %w", sub.Channels, b.safe, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.Close()
		return nil, queue.ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

type subscriber struct {
	bus      *Bus
	channels []string
	h        queue.Handler
	queue    string
	sharded  bool // queue.Subscription.Sharded, echoed on delivery

	mu     sync.Mutex
	ch     *amqp.Channel
	wg     sync.WaitGroup
	closed bool
	once   sync.Once
}

// start declares, binds and consumes on conn; the consumer goroutine ends
// when the channel closes (Close, or a lost connection).
func (s *subscriber) start(conn *amqp.Connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	fail := func(err error) error {
		ch.Close()
		return err
	}
	for _, c := range s.channels {
		if err := declareExchange(ch, c); err != nil {
			return fail(err)
		}
	}
	if _, err := ch.QueueDeclare(s.queue, false, false, false, false, amqp.Table{"x-expires": int32(QueueExpires)}); err != nil {
		return fail(fmt.Errorf("declare queue %q: %w", s.queue, err))
	}
	for _, c := range s.channels {
		if err := ch.QueueBind(s.queue, "", c, false, nil); err != nil {
			return fail(fmt.Errorf("bind queue %q to %q: %w", s.queue, c, err))
		}
	}
	deliveries, err := ch.Consume(s.queue, "", false, false, false, false, nil)
	if err != nil {
		return fail(fmt.Errorf("consume %q: %w", s.queue, err))
	}
	s.ch = ch
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for d := range deliveries {
			s.bus.ctr.Delivered.Add(1)
			s.h(queue.Message{Channel: d.Exchange, Data: d.Body, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, Sharded: s.sharded})
			d.Ack(false)
		}
	}()
	return nil
}

// Close cancels the consumer, deletes the queue and waits for the delivery
// goroutine. It must not be called from the subscription's handler.
func (s *subscriber) Close() error {
	var err error
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		s.mu.Lock()
		s.closed = true
		ch := s.ch
		s.mu.Unlock()
		if ch != nil {
			ch.QueueDelete(s.queue, false, false, true)
			err = ch.Close()
			if errors.Is(err, amqp.ErrClosed) {
				err = nil
			}
		}
		s.wg.Wait()
	})
	return err
}

// Stats returns the bus counters.
func (b *Bus) Stats() queue.Stats { return b.ctr.Snapshot() }

// Connected reports whether the bus has a live broker connection now
// (queue.HealthReporter).
func (b *Bus) Connected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.closed && b.conn != nil && !b.conn.IsClosed()
}

// Close ends every subscription and the connection, and stops the
// reconnect goroutine.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	conn := b.conn
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	close(b.stop)
	var err error
	if conn != nil {
		err = conn.Close()
		if errors.Is(err, amqp.ErrClosed) {
			err = nil
		}
	}
	b.wg.Wait()
	return err
}

func uuid4() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

var (
	_ queue.Bus           = (*Bus)(nil)
	_ queue.StatsReporter = (*Bus)(nil)
)
