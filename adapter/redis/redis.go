// Package redis is the Redis bus (queue.Bus) of siobridge, on go-redis v9.
//
// Channels are Redis Pub/Sub channels, as python-socketio's RedisManager and
// Node's @socket.io/redis-adapter use them: PUBLISH to send, SUBSCRIBE for
// channels and PSUBSCRIBE for patterns. Note that Pub/Sub ignores the
// database number: only channel names separate clusters. Messages and
// subscriptions marked Sharded use sharded Pub/Sub instead (Redis >= 7:
// SPUBLISH, SSUBSCRIBE, counted by NumShardSub), as the sharded adapter of
// @socket.io/redis-adapter does; it is a separate set of channels.
// Streams (queue.Message.Stream, queue.Subscription.Streams) are Redis
// Streams: XADD to append an entry, XREAD BLOCK to follow a stream, as
// @socket.io/redis-streams-adapter does.
//
// URLs: redis://[user:password@]host:port/db, rediss:// (TLS),
// unix:///path/to/socket?db=N, and
// redis+sentinel://[user][:password]@host1:port1,host2:port2/db/service_name,
// and redis+cluster://[user][:password]@host1:port1,host2:port2 (Redis
// Cluster: any node or several, the others are discovered; classic Pub/Sub
// messages reach the subscribers of every node; TLS with rediss+cluster://).
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
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/internal/outage"
	"github.com/siobridge/siobridge/queue"
)

// HealthInterval is how often a bus checks that its broker answers.
const HealthInterval = 250 * time.Millisecond

func init() {
	for _, s := range []string{"redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "rediss+cluster"} {
		queue.Register(s, func(ctx context.Context, u *url.URL) (queue.Bus, error) {
			return Open(ctx, u.String())
		})
	}
}

// Option configures a Bus.
type Option func(*config)

type config struct {
	log        *slog.Logger
	maxBatch   int
	writers    int
	shardQueue int
	shardTotal int

	streamEntryMax int
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMaxBatch sets the largest number of publishes sent in one pipeline
// (default 1024).
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithWriters sets how many pipelines may be in flight at once (default 2).
// On redis:// and unix:// buses they share one connection and are written
// in the order they were queued; on Sentinel and Cluster buses each is a
// go-redis pipeline of its own.
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

	fast *publisher // nil for sentinel and cluster clients: they use go-redis pipelines
	// pub is the client those pipelines go through: for a Sentinel, a
	// second client that never sends a pipeline again (MaxRetries -1).
	// go-redis retries a whole pipeline on a read error, which sends again
	// the publishes Redis had executed before the connection broke (a
	// Sentinel kills the clients of a demoted master): subscribers got
	// them twice. A cut-off publish fails instead, at most once, as Redis
	// Pub/Sub is. After a failover the bus's own check found, it is
	// replaced by one that asks the sentinels afresh (pubMu), so the
	// publishes follow the master the subscriptions moved to.
	pubMu sync.Mutex
	pub   goredis.UniversalClient
	pubOf string // the Sentinel URL's rest, to make pub again

	sentinel *sentinelWatch // for redis+sentinel:// buses: moves subscriptions after a failover

	mux *shardMux // the sharded subscriptions

	streamMax     int           // bound of a stream entry read (WithStreamEntryMaxBytes)
	streamDropped atomic.Uint64 // the entries skipped for it

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
	cfg := config{log: slog.New(slog.DiscardHandler), maxBatch: 1024, writers: 2, shardQueue: DefaultShardQueueBytes, shardTotal: DefaultShardQueueTotalBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxBatch < 1 {
		cfg.maxBatch = 1
	}
	if cfg.writers < 1 {
		cfg.writers = 1
	}
	if cfg.streamEntryMax < 1 {
		cfg.streamEntryMax = DefaultStreamEntryMaxBytes
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
		client:    client,
		log:       cfg.log,
		url:       queue.Redact(rawURL),
		reqs:      make(chan *pubReq, 4096),
		stop:      make(chan struct{}),
		maxB:      cfg.maxBatch,
		streamMax: cfg.streamEntryMax,
		subs:      map[*subscriber]struct{}{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.state = outage.Tracker{Log: cfg.log, Bus: "redis", URL: b.url, Counters: &b.ctr}
	b.pub = client
	if scheme, rest, _ := strings.Cut(rawURL, "://"); strings.EqualFold(scheme, "redis+sentinel") {
		o, _ := parseSentinel(rest) // parsed by NewClient already
		b.sentinel = newSentinelWatch(o)
		b.pubOf = rest
		b.pub = newSentinelPublisher(rest)
	}
	b.mux = newShardMux(b, cfg.shardQueue, cfg.shardTotal)
	b.wg.Add(2)
	go b.monitor()
	go b.mux.move()
	// the fast path dials the one server of the URL itself: not for a
	// sentinel's master (a *goredis.Client too), which moves
	if c, ok := client.(*goredis.Client); ok && !strings.Contains(strings.ToLower(rawURL[:strings.Index(rawURL, ":")]), "+") {
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
	case "redis+cluster", "rediss+cluster":
		o, err := parseCluster(strings.ToLower(scheme) == "rediss+cluster", rest)
		if err != nil {
			return nil, err
		}
		return goredis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("redis: unsupported URL scheme %q (want redis, rediss, unix, redis+sentinel, redis+cluster or rediss+cluster)", scheme)
}

// parseCluster parses [user][:password]@host1:port1,host2:port2 (a path or
// query is refused: a cluster has only database 0).
func parseCluster(tlsOn bool, rest string) (*goredis.ClusterOptions, error) {
	o := &goredis.ClusterOptions{}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		var err error
		if o.Username, o.Password, err = credentials(rest[:at]); err != nil {
			return nil, fmt.Errorf("redis: invalid cluster URL: %w", err)
		}
		rest = rest[at+1:]
	}
	hosts := strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(hosts, "/?") {
		return nil, errors.New("redis: cluster URL takes only host:port,host:port (no database, no options)")
	}
	if hosts == "" {
		return nil, errors.New("redis: cluster URL has no host")
	}
	o.Addrs = hostList(hosts, ":6379")
	if tlsOn {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// hostList splits host:port,host,... adding port where it is missing.
func hostList(hosts, port string) []string {
	var l []string
	for _, h := range strings.Split(hosts, ",") {
		if !strings.Contains(h, ":") {
			h += port
		}
		l = append(l, h)
	}
	return l
}

// credentials splits and unescapes user[:password].
func credentials(cred string) (user, pass string, err error) {
	u, p, _ := strings.Cut(cred, ":")
	if user, err = url.PathUnescape(u); err != nil {
		return "", "", fmt.Errorf("user: %w", err)
	}
	if pass, err = url.PathUnescape(p); err != nil {
		return "", "", fmt.Errorf("password: %w", err)
	}
	return user, pass, nil
}

// parseSentinel parses [user][:password]@host1:port1,host2:port2/db/service.
func parseSentinel(rest string) (*goredis.FailoverOptions, error) {
	o := &goredis.FailoverOptions{}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		var err error
		if o.Username, o.Password, err = credentials(rest[:at]); err != nil {
			return nil, fmt.Errorf("redis: invalid sentinel URL: %w", err)
		}
		rest = rest[at+1:]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if hosts == "" {
		return nil, errors.New("redis: sentinel URL has no host")
	}
	o.SentinelAddrs = hostList(hosts, ":26379")
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

// published counts the result of a fast-path publish of n messages and
// gives its error context.
func (b *Bus) published(n int, err error) error {
	if err != nil {
		b.ctr.PublishErrs.Add(1)
		if errors.Is(err, queue.ErrClosed) {
			return err
		}
		return fmt.Errorf("redis: publish to %s: %w", b.url, forbidden(err))
	}
	b.ctr.Published.Add(uint64(n))
	return nil
}

// PublishAsync queues msgs after every earlier publish of the bus and
// returns without waiting for Redis (queue.AsyncPublisher): wait returns
// what Publish would have. On a redis:// or unix:// bus the publishes of
// one connection keep their order, so a caller may have several batches
// in flight and still have them reach Redis in the order it queued them.
// On the other buses (Sentinel, Cluster) it publishes before it returns.
func (b *Bus) PublishAsync(msgs ...queue.Message) (wait func(context.Context) error, err error) {
	if b.fast == nil || len(msgs) == 0 {
		err := b.Publish(context.Background(), msgs...)
		return func(context.Context) error { return err }, nil
	}
	bt, err := b.fast.enqueue(msgs)
	if err != nil {
		return nil, b.published(len(msgs), err)
	}
	return func(ctx context.Context) error { return b.published(len(msgs), bt.wait(ctx)) }, nil
}

// Publish sends msgs with PUBLISH (SPUBLISH for Sharded messages, XADD
// for Stream messages: XADD stream [MAXLEN ~ MaxLen] * field value ...),
// in order, in the next pipeline. It returns when Redis has answered, or
// when ctx ends.
func (b *Bus) Publish(ctx context.Context, msgs ...queue.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if b.fast != nil {
		bt, err := b.fast.enqueue(msgs)
		if err == nil {
			err = bt.wait(ctx)
		}
		return b.published(len(msgs), err)
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
	cmds := make([]goredis.Cmder, 0, len(live))
	var err error
	if cc, ok := b.client.(*goredis.ClusterClient); ok {
		err = publishCluster(ctx, cc, live, &cmds)
	} else {
		b.pubMu.Lock()
		pub := b.pub
		b.pubMu.Unlock()
		pipe := pub.Pipeline()
		for _, r := range live {
			for _, m := range r.msgs {
				cmds = append(cmds, publishCmd(ctx, pipe, m))
			}
		}
		_, err = pipe.Exec(ctx)
	}
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

// publishCmd queues m on p: XADD for a Stream message, SPUBLISH when it
// is sharded, PUBLISH otherwise. A Stream message whose Data is not
// field/value pairs gives a failed command (nothing is queued).
func publishCmd(ctx context.Context, p goredis.Pipeliner, m queue.Message) goredis.Cmder {
	switch {
	case m.Stream:
		var values []any
		err := queue.StreamFields(m.Data, func(f, v []byte) bool {
			values = append(values, string(f), string(v))
			return true
		})
		if err == nil && len(values) == 0 {
			err = errors.New("an entry needs a field")
		}
		if err != nil {
			c := goredis.NewStringCmd(ctx, "xadd", m.Channel)
			c.SetErr(fmt.Errorf("XADD %q: %w", m.Channel, err))
			return c
		}
		return p.XAdd(ctx, &goredis.XAddArgs{Stream: m.Channel, MaxLen: m.MaxLen, Approx: m.MaxLen > 0, ID: "*", Values: values})
	case m.Sharded:
		return p.SPublish(ctx, m.Channel, m.Data)
	}
	return p.Publish(ctx, m.Channel, m.Data)
}

// publishCluster sends each message to the master that serves its
// channel's slot, one pipeline per master. Any node would forward a
// PUBLISH to the whole cluster, but through different nodes two
// messages of one channel can overtake each other on the cluster bus;
// through one node they keep their order, and a subscriber of the
// channel (go-redis subscribes on the slot's master too) gets them
// directly. A sharded message (SPUBLISH) must go to its slot's shard:
// when the slot map is stale (after a failover) and a node answers
// MOVED, the slot map is read again and the refused messages are sent
// again through the cluster client, which follows the redirection.
// Failed lookups fail their messages.
func publishCluster(ctx context.Context, cc *goredis.ClusterClient, live []*pubReq, cmds *[]goredis.Cmder) error {
	pipes := map[string]goredis.Pipeliner{}
	var order []goredis.Pipeliner
	var sent []queue.Message // of each command
	for _, r := range live {
		for _, m := range r.msgs {
			sent = append(sent, m)
			node, err := cc.MasterForKey(ctx, m.Channel)
			if err != nil {
				c := goredis.NewIntCmd(ctx, "publish", m.Channel)
				c.SetErr(fmt.Errorf("no master for channel %q: %w", m.Channel, err))
				*cmds = append(*cmds, c)
				continue
			}
			addr := node.Options().Addr
			p := pipes[addr]
			if p == nil {
				p = node.Pipeline()
				pipes[addr] = p
				order = append(order, p)
			}
			*cmds = append(*cmds, publishCmd(ctx, p, m))
		}
	}
	for _, p := range order {
		p.Exec(ctx) // errors are the commands' own, read below
	}
	var moved []int
	for i, c := range *cmds {
		if (c.Name() == "spublish" || c.Name() == "xadd") && redirected(c.Err()) {
			moved = append(moved, i)
		}
	}
	if len(moved) > 0 {
		cc.ReloadState(ctx)
		p := cc.Pipeline()
		for _, i := range moved {
			(*cmds)[i] = publishCmd(ctx, p, sent[i])
		}
		p.Exec(ctx)
	}
	for _, c := range *cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// redirected reports a Redis Cluster redirection (MOVED, ASK).
func redirected(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}

// Subscribe subscribes to sub's channels (SUBSCRIBE) and patterns
// (PSUBSCRIBE) on a dedicated connection and returns once Redis confirmed
// every one. go-redis reconnects and resubscribes after a connection loss;
// on a Sentinel failover the bus moves the subscription to the new master
// itself (the old one, now a replica, would keep it alive but deaf).
//
// A Sharded subscription uses SSUBSCRIBE (Redis >= 7; patterns are
// refused). The sharded subscriptions of a bus share one connection per
// shard (each master of a cluster, or the one server): a channel is
// subscribed (SSUBSCRIBE) when its first subscription comes and
// unsubscribed (SUNSUBSCRIBE) when its last one closes, on the live
// connection, so a bus opens as many connections as there are shards,
// however many channels it listens to. Each sharded subscription has its
// own delivery goroutine and a queue bounded by WithShardQueueBytes
// (default DefaultShardQueueBytes): the messages that do not fit are
// dropped and counted (ShardDropped). When a node stops serving a slot
// (SUNSUBSCRIBE from the server, a MOVED answer, or a slot map that
// changed: a resharding or a failover) its channels are subscribed again
// on the new owner.
//
// Each stream of sub.Streams is read by a goroutine of its own with XREAD
// BLOCK (StreamBlock) COUNT StreamReadCount on a connection of its own (of
// the stream's master on a cluster), from the stream's last entry when
// Subscribe runs: the entries appended after it returns are delivered in
// order, with Message.ID. After a connection loss (a Redis restart, a
// failover) the reader reconnects and resumes after the last entry it
// delivered, so no entry still in the stream is missed or delivered twice.
// An entry's fields come in Message.Data in the entry's order. The reader
// reads the replies itself, one entry at a time: an entry larger than
// WithStreamEntryMaxBytes (default DefaultStreamEntryMaxBytes) is skipped
// without being read into memory, counted (StreamEntriesDropped) and
// logged, and the reader goes on after it.
func (b *Bus) Subscribe(ctx context.Context, sub queue.Subscription, h queue.Handler) (queue.Subscriber, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, queue.ErrClosed
	}
	if len(sub.Channels)+len(sub.Patterns)+len(sub.Streams) == 0 {
		return nil, errors.New("redis: subscribe: no channel, no pattern and no stream")
	}
	if sub.Sharded && len(sub.Patterns) > 0 {
		return nil, fmt.Errorf("redis: subscribe to %s: sharded Pub/Sub has no patterns: %w", describe(sub), queue.ErrPatternsUnsupported)
	}
	s := &subscriber{bus: b, sub: sub, h: h}
	if len(sub.Streams) > 0 && len(sub.Channels)+len(sub.Patterns)+len(sub.Streams) > 1 {
		// several goroutines deliver: the handler still gets one message at a time
		var mu sync.Mutex
		s.h = func(m queue.Message) {
			mu.Lock()
			defer mu.Unlock()
			h(m)
		}
	}
	var err error
	switch {
	case len(sub.Channels)+len(sub.Patterns) == 0:
	case sub.Sharded:
		err = b.mux.add(ctx, s)
	default:
		err = s.start(ctx)
	}
	if err != nil {
		return nil, err
	}
	for _, key := range sub.Streams {
		r, err := b.startStream(ctx, key, s.h)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.mu.Lock()
		s.streams = append(s.streams, r)
		s.mu.Unlock()
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.Close()
		return nil, fmt.Errorf("redis: subscribe to %s on %s: %w", describe(sub), b.url, queue.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

// start opens the PubSub of a classic subscription, waits for Redis to
// confirm every channel and pattern, and starts its delivery goroutine.
func (s *subscriber) start(ctx context.Context) error {
	ps, err := s.open(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ps = ps
	s.mu.Unlock()
	s.wg.Add(1)
	go s.deliver(ps)
	return nil
}

// open subscribes to the channels and patterns of s on a new PubSub and
// waits for Redis to confirm each.
func (s *subscriber) open(ctx context.Context) (*goredis.PubSub, error) {
	b, sub := s.bus, s.sub
	ps := b.client.Subscribe(ctx)
	fail := func(err error) (*goredis.PubSub, error) {
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
	return ps, nil
}

// deliver passes the messages of ps to the handler until ps closes.
func (s *subscriber) deliver(ps *goredis.PubSub) {
	defer s.wg.Done()
	for m := range ps.Channel(goredis.WithChannelSize(1024), goredis.WithChannelHealthCheckInterval(5*time.Second)) {
		s.bus.ctr.Delivered.Add(1)
		s.h(queue.Message{Channel: m.Channel, Data: []byte(m.Payload), Pattern: m.Pattern})
	}
}

// restart closes the subscription's connection and subscribes again
// (after a Sentinel failover: go-redis asks the sentinel for the master
// when it connects). The old delivery goroutine ends before the new one
// starts, so the handler is never called concurrently; messages published
// in between are lost, as in any outage of Redis Pub/Sub.
func (s *subscriber) restart(ctx context.Context) error {
	s.mu.Lock()
	for _, r := range s.streams {
		r.restart()
	}
	s.mu.Unlock()
	if s.sub.Sharded || len(s.sub.Channels)+len(s.sub.Patterns) == 0 { // shardMux.restart moves the sharded ones
		return nil
	}
	s.restartMu.Lock()
	defer s.restartMu.Unlock()
	s.mu.Lock()
	ps, closed := s.ps, s.closed
	s.ps = nil
	s.mu.Unlock()
	if closed {
		return nil
	}
	if ps != nil {
		ps.Close()
	}
	s.wg.Wait()
	return s.start(ctx)
}

func describe(sub queue.Subscription) string {
	var parts []string
	for _, c := range sub.Channels {
		parts = append(parts, strconv.Quote(c))
	}
	for _, p := range sub.Patterns {
		parts = append(parts, "pattern "+strconv.Quote(p))
	}
	for _, st := range sub.Streams {
		parts = append(parts, "stream "+strconv.Quote(st))
	}
	if sub.Sharded {
		return "sharded " + strings.Join(parts, ", ")
	}
	return strings.Join(parts, ", ")
}

type subscriber struct {
	bus       *Bus
	sub       queue.Subscription
	h         queue.Handler
	restartMu sync.Mutex // one restart at a time, and Close waits for it
	mu        sync.Mutex
	ps        *goredis.PubSub // a classic subscription's own connection
	closed    bool
	once      sync.Once
	wg        sync.WaitGroup // the delivery goroutine
	err       error

	// a sharded subscription: its messages come from the bus's shardMux
	inbox *inbox
	stop  chan struct{}

	streams []*streamReader // one per stream read
}

// Close unsubscribes and waits for the delivery goroutine to end. It must
// not be called from the subscription's own handler.
func (s *subscriber) Close() error {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		s.mu.Lock()
		streams := s.streams
		s.mu.Unlock()
		for _, r := range streams {
			r.close()
		}
		switch {
		case len(s.sub.Channels)+len(s.sub.Patterns) == 0:
			return
		case s.sub.Sharded:
			s.bus.mux.remove(s)
			return
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.restartMu.Lock() // a restart in progress has finished
		s.mu.Lock()
		ps := s.ps // nil after a failed restart
		s.mu.Unlock()
		if ps != nil {
			if err := ps.Close(); !errors.Is(err, goredis.ErrClosed) {
				s.err = err
			}
		}
		s.restartMu.Unlock()
		s.wg.Wait()
	})
	return s.err
}

// StreamStart implements queue.StreamReader: the id of the stream's last
// entry when Subscribe ran ("0-0" for an empty stream).
func (s *subscriber) StreamStart(stream string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.streams {
		if r.key == stream {
			return r.start, true
		}
	}
	return "", false
}

// NumSub returns the number of subscribers of channel (PUBSUB NUMSUB).
func (b *Bus) NumSub(ctx context.Context, channel string) (int, error) {
	m, err := b.client.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: PUBSUB NUMSUB %q: %w", channel, err)
	}
	return int(m[channel]), nil
}

// NumShardSub returns the number of sharded subscribers of channel
// (PUBSUB SHARDNUMSUB), summed over the masters of a cluster, as
// @socket.io/redis-adapter's sharded adapter counts its servers.
func (b *Bus) NumShardSub(ctx context.Context, channel string) (int, error) {
	var n atomic.Int64
	var err error
	if cc, ok := b.client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			m, err := c.PubSubShardNumSub(ctx, channel).Result()
			n.Add(m[channel])
			return err
		})
	} else {
		var m map[string]int64
		m, err = b.client.PubSubShardNumSub(ctx, channel).Result()
		n.Store(m[channel])
	}
	if err != nil {
		return 0, fmt.Errorf("redis: PUBSUB SHARDNUMSUB %q: %w", channel, err)
	}
	return int(n.Load()), nil
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
		var err error
		if cc, ok := b.client.(*goredis.ClusterClient); ok {
			// every master answers, or the slot map is read again: a
			// replica that took over is learnt here, and the
			// subscriptions reconnect to it (go-redis resubscribes on
			// the slot's master of the map it has)
			err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return c.Ping(ctx).Err() })
			if err != nil {
				cc.ReloadState(ctx)
				b.mux.reload.Store(true)
			}
			b.mux.poke() // moves the sharded channels whose slot changed master
		} else {
			err = b.client.Ping(ctx).Err()
		}
		if err == nil && b.sentinel != nil {
			b.followMaster(ctx)
		}
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

// sentinelWatch follows the master of a Sentinel-managed bus.
type sentinelWatch struct {
	clients []*goredis.SentinelClient
	name    string
	master  string // the master the subscriptions are on ("" before the first check)
}

func newSentinelWatch(o *goredis.FailoverOptions) *sentinelWatch {
	w := &sentinelWatch{name: o.MasterName}
	for _, a := range o.SentinelAddrs {
		w.clients = append(w.clients, goredis.NewSentinelClient(&goredis.Options{
			Addr: a, Username: o.SentinelUsername, Password: o.SentinelPassword,
			DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1, PoolSize: 1}))
	}
	return w
}

func (w *sentinelWatch) close() {
	for _, c := range w.clients {
		c.Close()
	}
}

// newSentinelPublisher returns the client a Sentinel bus publishes
// through (see Bus.pub): a failover client that does not retry.
func newSentinelPublisher(rest string) *goredis.Client {
	o, _ := parseSentinel(rest) // parsed by NewClient already
	o.MaxRetries = -1
	return goredis.NewFailoverClient(o)
}

// followMaster asks the sentinels for the master; when it changed since
// the subscriptions were made, it moves them there (a failed move is tried
// again at the next check).
func (b *Bus) followMaster(ctx context.Context) {
	w := b.sentinel
	var now string
	for _, c := range w.clients {
		a, err := c.GetMasterAddrByName(ctx, w.name).Result()
		if err == nil && len(a) == 2 {
			now = net.JoinHostPort(a[0], a[1])
			break
		}
	}
	if now == "" || now == w.master {
		return
	}
	if w.master == "" { // first check: the subscriptions are on it already
		w.master = now
		return
	}
	b.log.Warn("redis: the sentinel switched masters: moving the subscriptions", "url", b.url, "from", w.master, "to", now)
	// the publishes first: a client still on the demoted master would
	// have its writes (stream entries) dropped when it becomes a replica
	pub := newSentinelPublisher(b.pubOf)
	b.pubMu.Lock()
	old := b.pub
	b.pub = pub
	b.pubMu.Unlock()
	old.Close() // a pipeline still in flight on it fails
	b.mux.restart()
	b.mu.Lock()
	subs := make([]*subscriber, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		if err := s.restart(ctx); err != nil {
			b.log.Warn("redis: resubscribe after the failover (tried again)", "url", b.url, "err", err)
			return
		}
	}
	w.master = now
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
		b.mux.close()
		if b.fast != nil {
			b.fast.close()
		}
		if b.sentinel != nil {
			b.sentinel.close()
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
		b.pubMu.Lock()
		if b.pub != b.client {
			b.pub.Close()
		}
		b.pubMu.Unlock()
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
