// Package redis is the Redis bus (queue.Bus) of siobridge, on go-redis v9.
//
// Channels are Redis Pub/Sub channels, as python-socketio's RedisManager and
// Node's @socket.io/redis-adapter use them: PUBLISH to send, SUBSCRIBE for
// channels and PSUBSCRIBE for patterns. Note that Pub/Sub ignores the
// database number: only channel names separate clusters.
//
// URLs: redis://[user:password@]host:port/db, rediss:// (TLS),
// unix:///path/to/socket?db=N, and
// redis+sentinel://[user][:password]@host1:port1,host2:port2/db/service_name.
// Importing the package registers these schemes with queue.Open.
//
// Concurrent Publish calls are coalesced into pipelines: a few writer
// goroutines drain the pending publishes and send each batch in one round
// trip, while every caller still gets its own result and keeps its own
// context deadline.
//
// Outages: go-redis reconnects and resubscribes every subscription by
// itself. The bus checks its broker (PING) every HealthInterval: Connected
// reports the last answer, and the bus logs when it loses the broker and
// when it is back (with how long it was away), counting each return in
// Stats().Reconnects. Messages published while a subscriber's connection
// is down are not delivered to it (Redis Pub/Sub keeps nothing).
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/internal/outage"
	"github.com/siobridge/siobridge/queue"
)

// HealthInterval is how often a bus checks that its broker answers.
const HealthInterval = 250 * time.Millisecond

func init() {
	for _, s := range []string{"redis", "rediss", "unix", "redis+sentinel"} {
		queue.Register(s, func(ctx context.Context, u *url.URL) (queue.Bus, error) {
			return Open(ctx, u.String())
		})
	}
}

// Option configures a Bus.
type Option func(*config)

type config struct {
	log      *slog.Logger
	maxBatch int
	writers  int
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMaxBatch sets the largest number of publishes sent in one pipeline
// (default 1024).
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithWriters sets how many pipelines may be in flight at once (default 2).
func WithWriters(n int) Option { return func(c *config) { c.writers = n } }

// Bus is a Redis queue.Bus. It is safe for concurrent use.
type Bus struct {
	client  goredis.UniversalClient
	log     *slog.Logger
	url     string
	reqs    chan *pubReq
	stop    chan struct{}
	ctx     context.Context // cancelled by Close; bounds in-flight pipelines
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	maxB    int
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	closeMu sync.Once

	fast *publisher // nil for sentinel clients: they use go-redis pipelines

	ctr   queue.Counters // Stats
	state outage.Tracker
}

type pubReq struct {
	ctx  context.Context
	msgs []queue.Message
	done chan error
}

// Open connects to the Redis server at rawURL and checks it answers (PING)
// before ctx ends.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Bus, error) {
	cfg := config{log: slog.New(slog.DiscardHandler), maxBatch: 1024, writers: 2}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxBatch < 1 {
		cfg.maxBatch = 1
	}
	if cfg.writers < 1 {
		cfg.writers = 1
	}
	client, err := NewClient(rawURL)
	if err != nil {
		return nil, err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: connect to %s: %w", queue.Redact(rawURL), err)
	}
	b := &Bus{
		client: client,
		log:    cfg.log,
		url:    queue.Redact(rawURL),
		reqs:   make(chan *pubReq, 4096),
		stop:   make(chan struct{}),
		maxB:   cfg.maxBatch,
		subs:   map[*subscriber]struct{}{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.state = outage.Tracker{Log: cfg.log, Bus: "redis", URL: b.url, Counters: &b.ctr}
	b.wg.Add(1)
	go b.monitor()
	if c, ok := client.(*goredis.Client); ok {
		b.fast = newPublisher(c.Options(), cfg.writers)
		return b, nil
	}
	for i := 0; i < cfg.writers; i++ {
		b.wg.Add(1)
		go b.writer()
	}
	return b, nil
}

// NewClient makes the go-redis client for a siobridge Redis URL without
// connecting.
func NewClient(rawURL string) (goredis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redis: invalid URL %q: no scheme", queue.Redact(rawURL))
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis: invalid URL %s: %w", queue.Redact(rawURL), err)
		}
		return goredis.NewClient(o), nil
	case "redis+sentinel":
		o, err := parseSentinel(rest)
		if err != nil {
			return nil, err
		}
		return goredis.NewFailoverClient(o), nil
	}
	return nil, fmt.Errorf("redis: unsupported URL scheme %q (want redis, rediss, unix or redis+sentinel)", scheme)
}

// parseSentinel parses [user][:password]@host1:port1,host2:port2/db/service.
func parseSentinel(rest string) (*goredis.FailoverOptions, error) {
	o := &goredis.FailoverOptions{}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		cred := rest[:at]
		rest = rest[at+1:]
		user, pass, _ := strings.Cut(cred, ":")
		var err error
		if o.Username, err = url.PathUnescape(user); err != nil {
			return nil, fmt.Errorf("redis: invalid sentinel URL user: %w", err)
		}
		if o.Password, err = url.PathUnescape(pass); err != nil {
			return nil, fmt.Errorf("redis: invalid sentinel URL password: %w", err)
		}
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if hosts == "" {
		return nil, errors.New("redis: sentinel URL has no host")
	}
	for _, h := range strings.Split(hosts, ",") {
		if !strings.Contains(h, ":") {
			h += ":26379"
		}
		o.SentinelAddrs = append(o.SentinelAddrs, h)
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) > 0 && parts[0] != "" {
		db, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, fmt.Errorf("redis: invalid sentinel URL database %q", parts[0])
		}
		o.DB = db
	}
	o.MasterName = "mymaster"
	if len(parts) > 1 && parts[1] != "" {
		o.MasterName = parts[1]
	}
	return o, nil
}

// Client returns the underlying go-redis client.
func (b *Bus) Client() goredis.UniversalClient { return b.client }

// Publish sends msgs with PUBLISH, in order, in the next pipeline. It
// returns when Redis has answered, or when ctx ends.
func (b *Bus) Publish(ctx context.Context, msgs ...queue.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if b.fast != nil {
		if err := b.fast.publish(ctx, msgs); err != nil {
			b.ctr.PublishErrs.Add(1)
			if errors.Is(err, queue.ErrClosed) {
				return err
			}
			return fmt.Errorf("redis: publish to %s: %w", b.url, forbidden(err))
		}
		b.ctr.Published.Add(uint64(len(msgs)))
		return nil
	}
	// the request may outlive this call (ctx ends while it is queued):
	// it keeps its own copy of the data, as the Bus contract requires
	own := make([]queue.Message, len(msgs))
	for i, m := range msgs {
		own[i] = m
		own[i].Data = append([]byte(nil), m.Data...)
	}
	req := &pubReq{ctx: ctx, msgs: own, done: make(chan error, 1)}
	select {
	case <-b.stop:
		return queue.ErrClosed
	default:
	}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		b.ctr.PublishErrs.Add(1)
		return fmt.Errorf("redis: publish to %s: %w", b.url, ctx.Err())
	case <-b.stop:
		return queue.ErrClosed
	}
	select {
	case err := <-req.done:
		if err != nil {
			b.ctr.PublishErrs.Add(1)
			return fmt.Errorf("redis: publish to %s: %w", b.url, err)
		}
		return nil
	case <-ctx.Done():
		b.ctr.PublishErrs.Add(1)
		return fmt.Errorf("redis: publish to %s: %w", b.url, ctx.Err())
	case <-b.stop:
		return queue.ErrClosed
	}
}

// writer drains pending publishes into pipelines until the bus closes.
func (b *Bus) writer() {
	defer b.wg.Done()
	batch := make([]*pubReq, 0, b.maxB)
	for {
		var first *pubReq
		select {
		case first = <-b.reqs:
		case <-b.stop:
			return
		}
		batch = append(batch[:0], first)
		n := len(first.msgs)
	drain:
		for n < b.maxB {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				n += len(r.msgs)
			default:
				break drain
			}
		}
		b.flush(batch)
	}
}

func (b *Bus) flush(batch []*pubReq) {
	live := batch[:0]
	var deadline time.Time
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- r.ctx.Err()
			continue
		}
		if d, ok := r.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// The pipeline outlives no caller: it ends at the latest caller deadline
	// (or after a bound when callers have none), or when the bus closes.
	if deadline.IsZero() {
		deadline = time.Now().Add(30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(b.ctx, deadline)
	defer cancel()
	cmds := make([]*goredis.IntCmd, 0, len(live))
	pipe := b.client.Pipeline()
	for _, r := range live {
		for _, m := range r.msgs {
			cmds = append(cmds, pipe.Publish(ctx, m.Channel, m.Data))
		}
	}
	_, err := pipe.Exec(ctx)
	i := 0
	for _, r := range live {
		var rerr error
		for range r.msgs {
			if e := cmds[i].Err(); e != nil && rerr == nil {
				rerr = e
			}
			i++
		}
		if rerr == nil && err != nil {
			rerr = err
		}
		if rerr == nil {
			b.ctr.Published.Add(uint64(len(r.msgs)))
		}
		r.done <- rerr
	}
}

// Subscribe subscribes to sub's channels (SUBSCRIBE) and patterns
// (PSUBSCRIBE) on a dedicated connection and returns once Redis confirmed
// every one. go-redis reconnects and resubscribes after a connection loss.
func (b *Bus) Subscribe(ctx context.Context, sub queue.Subscription, h queue.Handler) (queue.Subscriber, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, queue.ErrClosed
	}
	if len(sub.Channels)+len(sub.Patterns) == 0 {
		return nil, errors.New("redis: subscribe: no channel and no pattern")
	}
	ps := b.client.Subscribe(ctx)
	fail := func(err error) (queue.Subscriber, error) {
		ps.Close()
		return nil, fmt.Errorf("redis: subscribe to %s on %s: %w", describe(sub), b.url, forbidden(err))
	}
	if len(sub.Channels) > 0 {
		if err := ps.Subscribe(ctx, sub.Channels...); err != nil {
			return fail(err)
		}
	}
	if len(sub.Patterns) > 0 {
		if err := ps.PSubscribe(ctx, sub.Patterns...); err != nil {
			return fail(err)
		}
	}
	for i := 0; i < len(sub.Channels)+len(sub.Patterns); i++ {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return fail(err)
		}
		if _, ok := msg.(*goredis.Subscription); !ok {
			return fail(fmt.Errorf("unexpected %T while waiting for the subscription", msg))
		}
	}
	s := &subscriber{bus: b, ps: ps, done: make(chan struct{})}
	ch := ps.Channel(goredis.WithChannelSize(1024), goredis.WithChannelHealthCheckInterval(5*time.Second))
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fail(queue.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(s.done)
		for m := range ch {
			b.ctr.Delivered.Add(1)
			h(queue.Message{Channel: m.Channel, Data: []byte(m.Payload), Pattern: m.Pattern})
		}
	}()
	return s, nil
}

func describe(sub queue.Subscription) string {
	var parts []string
	for _, c := range sub.Channels {
		parts = append(parts, strconv.Quote(c))
	}
	for _, p := range sub.Patterns {
		parts = append(parts, "pattern "+strconv.Quote(p))
	}
	return strings.Join(parts, ", ")
}

type subscriber struct {
	bus  *Bus
	ps   *goredis.PubSub
	once sync.Once
	done chan struct{}
	wg   sync.WaitGroup
	err  error
}

// Close unsubscribes and waits for the delivery goroutine to end. It must
// not be called from the subscription's own handler.
func (s *subscriber) Close() error {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		s.err = s.ps.Close()
		s.wg.Wait()
	})
	return s.err
}

// NumSub returns the number of subscribers of channel (PUBSUB NUMSUB).
func (b *Bus) NumSub(ctx context.Context, channel string) (int, error) {
	m, err := b.client.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: PUBSUB NUMSUB %q: %w", channel, err)
	}
	return int(m[channel]), nil
}

// Stats returns the bus counters.
func (b *Bus) Stats() queue.Stats { return b.ctr.Snapshot() }

// monitor PINGs the broker every HealthInterval until Close, recording
// outages and returns.
func (b *Bus) monitor() {
	defer b.wg.Done()
	t := time.NewTicker(HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		err := b.client.Ping(ctx).Err()
		cancel()
		switch {
		case b.ctx.Err() != nil:
			return
		case err != nil:
			b.state.Lost(err)
		default:
			b.state.Back()
		}
	}
}

// Connected reports whether the broker answered the bus's last check
// (queue.HealthReporter).
func (b *Bus) Connected() bool {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	return !closed && !b.state.Down()
}

// Close ends every subscription, stops the writers and closes the client.
func (b *Bus) Close() error {
	var err error
	b.closeMu.Do(func() {
		b.mu.Lock()
		b.closed = true
		subs := make([]*subscriber, 0, len(b.subs))
		for s := range b.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()
		for _, s := range subs {
			s.Close()
		}
		close(b.stop)
		b.cancel()
		b.wg.Wait()
		if b.fast != nil {
			b.fast.close()
		}
		// fail what is still queued
		for {
			select {
			case r := <-b.reqs:
				r.done <- queue.ErrClosed
				continue
			default:
			}
			break
		}
		err = b.client.Close()
	})
	return err
}

var (
	_ queue.Bus               = (*Bus)(nil)
	_ queue.SubscriberCounter = (*Bus)(nil)
	_ queue.StatsReporter     = (*Bus)(nil)
	_ queue.HealthReporter    = (*Bus)(nil)
)

// forbidden marks a Redis ACL refusal (NOPERM) as queue.ErrForbidden.
func forbidden(err error) error {
	if err != nil && strings.Contains(err.Error(), "NOPERM ") {
		return fmt.Errorf("%w (%w)", err, queue.ErrForbidden)
	}
	return err
}
