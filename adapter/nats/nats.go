// Package nats is the NATS bus of siobridge, on nats.go (core NATS
// publish/subscribe).
//
// A channel becomes the subject "siobridge.<token>", where token is the
// channel with every byte outside [A-Za-z0-9_-] written as ~XX (hex): NATS
// gives '.', '*', '>' and white space special meaning, so any channel name,
// room names included, maps to one literal subject token and back.
//
// NATS has one kind of subject: queue.Message.Sharded and
// queue.Subscription.Sharded (Redis sharded Pub/Sub) are ignored for
// routing — a sharded message goes to its channel's subject like any
// other, and a Sharded subscription receives every message of its
// channels, delivered with Sharded set. A dialect that publishes sharded
// (node-sharded) therefore works between siobridge processes on NATS.
//
// URLs: nats://[user:password@]host:port (several comma-separated servers
// allowed) and tls://. Importing the package registers both schemes with
// queue.Open.
//
// nats.go reconnects by itself (forever, every 250 ms) and re-subscribes;
// the bus logs when it loses the broker and when it is back, with how long
// it was away, and counts each return in Stats().Reconnects. Core NATS
// keeps nothing for a disconnected subscriber.
// Publish flushes: it returns once the server has the messages, or with an
// error when its context ends first (for example during an outage) or the
// server refused a subject (a user's permissions, ErrPermissionViolation of
// nats.go); Subscribe reports such a refusal too.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/siobridge/siobridge/internal/outage"
	"github.com/siobridge/siobridge/queue"
)

func init() {
	for _, s := range []string{"nats", "tls"} {
		queue.Register(s, func(ctx context.Context, u *url.URL) (queue.Bus, error) {
			return Open(ctx, u.String())
		})
	}
}

// SubjectPrefix starts every subject the bus uses.
const SubjectPrefix = "siobridge."

// Subject returns the NATS subject of a channel.
func Subject(channel string) string {
	var b strings.Builder
	b.Grow(len(SubjectPrefix) + len(channel))
	b.WriteString(SubjectPrefix)
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(channel); i++ {
		c := channel[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// Channel returns the channel of a subject made by Subject.
func Channel(subject string) (string, error) {
	tok, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return "", fmt.Errorf("nats: subject %q is not a siobridge subject", subject)
	}
	out := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		if tok[i] != '~' {
			out = append(out, tok[i])
			continue
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("nats: bad escape in subject %q", subject)
		}
		var v byte
		for _, c := range []byte{tok[i+1], tok[i+2]} {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= c - '0'
			case c >= 'A' && c <= 'F':
				v |= c - 'A' + 10
			default:
				return "", fmt.Errorf("nats: bad escape in subject %q", subject)
			}
		}
		out = append(out, v)
		i += 2
	}
	return string(out), nil
}

// Option configures a Bus.
type Option func(*Bus)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(b *Bus) { b.log = l } }

// WithNATSOptions adds nats.go options (credentials, TLS, names ...).
func WithNATSOptions(opts ...nats.Option) Option {
	return func(b *Bus) { b.extra = append(b.extra, opts...) }
}

// Bus is a NATS queue.Bus. It is safe for concurrent use.
type Bus struct {
	nc    *nats.Conn
	log   *slog.Logger
	safe  string
	extra []nats.Option

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	ctr   queue.Counters // Stats
	state outage.Tracker
}

// Open connects to the NATS server(s) at rawURL before ctx ends.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Bus, error) {
	b := &Bus{log: slog.New(slog.DiscardHandler), safe: queue.Redact(rawURL), subs: map[*subscriber]struct{}{}}
	for _, o := range opts {
		o(b)
	}
	b.state = outage.Tracker{Log: b.log, Bus: "nats", URL: b.safe, Counters: &b.ctr}
	if _, err := url.Parse(rawURL); err != nil {
		return nil, fmt.Errorf("nats: invalid URL %s: %w", b.safe, err)
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), 10*time.Millisecond)
	}
	nopts := []nats.Option{
		nats.Name("siobridge"),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if !c.IsClosed() { // Close disconnects too
				b.state.Lost(err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.state.Back() }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			b.log.Warn("nats: asynchronous error", "err", err)
		}),
	}
	nopts = append(nopts, b.extra...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(rawURL, nopts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("nats: connect to %s: %w", b.safe, r.err)
		}
		b.nc = r.nc
		return b, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("nats: connect to %s: %w", b.safe, ctx.Err())
	}
}

// Conn returns the underlying nats.go connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

func flushCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, 10*time.Second)
}

// Publish publishes msgs and flushes: it returns once the server has them.
func (b *Bus) Publish(ctx context.Context, msgs ...queue.Message) error {
	if err := b.publish(ctx, msgs); err != nil {
		b.ctr.PublishErrs.Add(1)
		if errors.Is(err, queue.ErrClosed) {
			return err
		}
		return fmt.Errorf("nats: publish to %s: %w", b.safe, err)
	}
	b.ctr.Published.Add(uint64(len(msgs)))
	return nil
}

func (b *Bus) publish(ctx context.Context, msgs []queue.Message) error {
	if err := queue.NoStreams(msgs); err != nil {
		return err
	}
	if b.nc.IsClosed() {
		return queue.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	before := b.nc.LastError()
	subjects := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.Channel == "" {
			return errors.New("empty channel name")
		}
		subject := Subject(m.Channel)
		subjects = append(subjects, subject)
		if err := b.nc.Publish(subject, m.Data); err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) {
				return queue.ErrClosed
			}
			return err
		}
	}
	fctx, cancel := flushCtx(ctx)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		return err
	}
	return b.refusal(before, subjects)
}

// refusal returns the permission violation the server reported since
// before (the connection's last error then) for one of subjects, or nil.
// Core NATS reports a refused publish or subscription asynchronously, but
// ahead of the PONG that ends a flush, and nats.go keeps it as the
// connection's last error: checked after a flush, a refusal of these
// subjects is seen (unless another violation replaced it meanwhile).
func (b *Bus) refusal(before error, subjects []string) error {
	err := b.nc.LastError()
	if err == nil || err == before || !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	for _, s := range subjects {
		if strings.Contains(err.Error(), `"`+s+`"`) {
			return fmt.Errorf("%w (%w)", err, queue.ErrForbidden)
		}
	}
	return nil
}

// Subscribe subscribes to sub's channels and returns once the server has
// registered the subscriptions. Patterns are not supported.
func (b *Bus) Subscribe(ctx context.Context, sub queue.Subscription, h queue.Handler) (queue.Subscriber, error) {
	if err := queue.NoStreamSubscription(sub); err != nil {
		return nil, fmt.Errorf("nats: subscribe: %w", err)
	}
	if len(sub.Patterns) > 0 {
		return nil, queue.ErrPatternsUnsupported
	}
	if len(sub.Channels) == 0 {
		return nil, errors.New("nats: subscribe: no channel")
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed || b.nc.IsClosed() {
		return nil, queue.ErrClosed
	}
	s := &subscriber{bus: b, h: h, sharded: sub.Sharded}
	// one delivery goroutine for all channels of the subscription: nats.go
	// runs one per nats.Subscription, so messages go through a channel.
	s.msgs = make(chan *nats.Msg, 4096)
	s.done = make(chan struct{})
	before := b.nc.LastError()
	subjects := make([]string, 0, len(sub.Channels))
	for _, c := range sub.Channels {
		subjects = append(subjects, Subject(c))
		ns, err := b.nc.ChanSubscribe(Subject(c), s.msgs)
		if err != nil {
			s.unsubscribe()
			return nil, fmt.Errorf("nats: subscribe to %q on %s: %w", c, b.safe, err)
		}
		ns.SetPendingLimits(-1, -1)
		s.subs = append(s.subs, ns)
	}
	fctx, cancel := flushCtx(ctx)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		s.unsubscribe()
		return nil, fmt.Errorf("nats: confirm subscription on %s: %w", b.safe, err)
	}
	if err := b.refusal(before, subjects); err != nil {
		s.unsubscribe()
		return nil, fmt.Errorf("nats: subscribe on %s: %w", b.safe, err)
	}
	s.wg.Add(1)
	go s.run()
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

type subscriber struct {
	bus     *Bus
	h       queue.Handler
	sharded bool // queue.Subscription.Sharded, echoed on delivery
	subs    []*nats.Subscription
	msgs    chan *nats.Msg
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func (s *subscriber) run() {
	defer s.wg.Done()
	for {
		select {
		case m := <-s.msgs:
			ch, err := Channel(m.Subject)
			if err != nil {
				s.bus.log.Warn("nats: dropped a message with a foreign subject", "subject", m.Subject)
				continue
			}
			s.bus.ctr.Delivered.Add(1)
			s.h(queue.Message{Channel: ch, Data: m.Data, Sharded: s.sharded})
		case <-s.done:
			return
		}
	}
}

func (s *subscriber) unsubscribe() {
	for _, ns := range s.subs {
		ns.Unsubscribe()
	}
}

// Close unsubscribes and waits for the delivery goroutine. It must not be
// called from the subscription's handler.
func (s *subscriber) Close() error {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		s.unsubscribe()
		close(s.done)
		s.wg.Wait()
	})
	return nil
}

// Stats returns the bus counters.
func (b *Bus) Stats() queue.Stats { return b.ctr.Snapshot() }

// Connected reports whether the bus is connected to a NATS server now
// (queue.HealthReporter).
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Close ends every subscription and closes the connection.
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
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	b.nc.Close()
	return nil
}

var (
	_ queue.Bus           = (*Bus)(nil)
	_ queue.StatsReporter = (*Bus)(nil)
)
