package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	_ "github.com/siobridge/siobridge/adapter/amqp"
	_ "github.com/siobridge/siobridge/adapter/nats"
	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/dialectname"
	"github.com/siobridge/siobridge/queue"
)

const (
	exitOK     = 0
	exitBroker = 1
	exitUsage  = 2
)

type endpoint struct{ url, dialect, channel, shardedMode string }

type options struct {
	from, to     endpoint
	namespaces   []string
	oneWay       bool
	nodeRequests bool
	logFormat    string
	stats        time.Duration
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("siobridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, e := range []struct {
		p    *endpoint
		name string
	}{{&o.from, "from"}, {&o.to, "to"}} {
		fs.StringVar(&e.p.url, e.name, "", "broker URL of the "+e.name+" side (redis://, amqp://, nats://)")
		fs.StringVar(&e.p.dialect, e.name+"-dialect", "", "python | python-pickle | node")
		fs.StringVar(&e.p.channel, e.name+"-channel", "", "channel (python; default flask-socketio) or key prefix (node; default socket.io)")
	}
	fs.StringVar(&o.to.shardedMode, "to-sharded-mode", "", "with --to-dialect node-sharded: the subscriptionMode of its servers, "+dialectname.ShardedModes+" (default dynamic)")
	var nss listFlag
	fs.Var(&nss, "namespace", "namespace whose node broadcasts are relayed (repeatable; default /; python channels carry every namespace)")
	fs.BoolVar(&o.oneWay, "one-way", false, "relay from -> to only")
	fs.BoolVar(&o.nodeRequests, "node-requests", false, "node sides: also relay the room operations of @socket.io/redis-emitter (the bridge then counts as a server in PUBSUB NUMSUB)")
	fs.StringVar(&o.logFormat, "log-format", "text", "text | json")
	fs.DurationVar(&o.stats, "stats", time.Minute, "interval of the counters log line (0: at exit only)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, e := range []struct {
		p    *endpoint
		name string
	}{{&o.from, "from"}, {&o.to, "to"}} {
		if e.p.url == "" || e.p.dialect == "" {
			return nil, fmt.Errorf("--%s and --%s-dialect are required", e.name, e.name)
		}
	}
	if o.from == o.to {
		return nil, errors.New("--from and --to name the same url, dialect and channel")
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	o.namespaces = nss
	if len(o.namespaces) == 0 {
		o.namespaces = []string{"/"}
	}
	return o, nil
}

// newDialects returns the dialects of the two sides.
func newDialects(o *options) ([2]dialect.Dialect, error) {
	var ds [2]dialect.Dialect
	for i, e := range []endpoint{o.from, o.to} {
		var err error
		if ds[i], err = dialectname.New(e.dialect, e.channel); err != nil {
			return ds, err
		}
	}
	if o.to.shardedMode != "" {
		var err error
		if ds[1], err = dialectname.NewWithMode(o.to.dialect, o.to.channel, o.to.shardedMode); err != nil {
			return ds, fmt.Errorf("--to-sharded-mode: %w", err)
		}
	}
	return ds, nil
}

// checkOverlap refuses two sides that would receive each other's
// messages (same broker, overlapping channels): what the bridge publishes
// on one side would also arrive on the other side's subscription and be
// relayed again, forever. Redis pub/sub ignores the database number, so
// only the host counts there.
func checkOverlap(o *options, ds [2]dialect.Dialect) error {
	ua, errA := url.Parse(o.from.url)
	ub, errB := url.Parse(o.to.url)
	if errA != nil || errB != nil || ua.Host != ub.Host {
		return nil
	}
	if !strings.HasPrefix(ua.Scheme, "redis") && !strings.HasPrefix(ub.Scheme, "redis") && ua.Path != ub.Path {
		return nil // e.g. two RabbitMQ virtual hosts
	}
	a := subscription(ds[0], o.namespaces, o.nodeRequests)
	b := subscription(ds[1], o.namespaces, o.nodeRequests)
	if subsOverlap(a, b) || subsOverlap(b, a) {
		return fmt.Errorf("the two sides overlap on one broker (%v and %v): relayed messages would loop; use different channels", a, b)
	}
	return nil
}

// subsOverlap reports whether a message of one of a's channels or
// patterns can match b.
func subsOverlap(a, b queue.Subscription) bool {
	for _, c := range a.Channels {
		for _, d := range b.Channels {
			if c == d {
				return true
			}
		}
		for _, p := range b.Patterns {
			if queue.MatchPattern(p, c) {
				return true
			}
		}
	}
	for _, p := range a.Patterns {
		// a channel of pattern p: its literal prefix (node patterns are
		// an escaped prefix followed by *)
		example := strings.NewReplacer(`\`, "").Replace(strings.TrimSuffix(p, "*")) + "x"
		for _, q := range b.Patterns {
			if queue.MatchPattern(q, example) {
				return true
			}
		}
	}
	return false
}

// run is the command: it relays until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "siobridge: %v\n", err)
		return exitUsage
	}
	dialects, err := newDialects(o)
	if err != nil {
		fmt.Fprintf(stderr, "siobridge: %v\n", err)
		return exitUsage
	}
	if !dialectname.RelaySource(o.from.dialect) {
		fmt.Fprintf(stderr, "siobridge: --from dialect %s: cannot be relayed from yet (its broadcasts travel on per-room channels or in a stream, which a relay does not read); it can be relayed to\n", o.from.dialect)
		return exitUsage
	}
	if err := checkOverlap(o, dialects); err != nil {
		fmt.Fprintf(stderr, "siobridge: %v\n", err)
		return exitUsage
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)

	var sides [2]*side
	for i, e := range []endpoint{o.from, o.to} {
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		bus, err := queue.Open(octx, e.url)
		cancel()
		if err != nil {
			log.Error("siobridge: cannot connect", "url", queue.Redact(e.url), "err", err)
			return exitBroker
		}
		defer bus.Close()
		sides[i] = newSide([]string{"from", "to"}[i], bus, dialects[i], o.namespaces, o.nodeRequests)
	}
	r := newRelay(log, sides[0], sides[1], o.oneWay)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = r.start(sctx)
	cancel()
	if err != nil {
		log.Error("siobridge: cannot subscribe", "err", err)
		return exitBroker
	}
	defer r.close()
	log.Info("siobridge: relaying",
		"from", queue.Redact(o.from.url), "from_dialect", sides[0].d.Name(), "from_sub", fmt.Sprint(sides[0].sub),
		"to", queue.Redact(o.to.url), "to_dialect", sides[1].d.Name(), "to_sub", fmt.Sprint(sides[1].sub), "one_way", o.oneWay)
	var tick <-chan time.Time
	if o.stats > 0 {
		t := time.NewTicker(o.stats)
		defer t.Stop()
		tick = t.C
	}
	logStats := func(msg string) {
		log.Info(msg, "from_to", fmt.Sprintf("%+v", r.ab.snapshot()), "to_from", fmt.Sprintf("%+v", r.ba.snapshot()))
	}
	for {
		select {
		case <-tick:
			logStats("siobridge: counters")
		case <-ctx.Done():
			logStats("siobridge: stopped")
			return exitOK
		}
	}
}
