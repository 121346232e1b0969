package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	natsbus "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/brokerflags"
	"github.com/siobridge/siobridge/internal/dialectname"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/admin"
	"github.com/siobridge/siobridge/server/jwtauth"
)

const (
	exitOK     = 0
	exitFailed = 1 // cannot listen, reach the broker or join the cluster
	exitUsage  = 2 // bad flags; the embedded address held by a program that is not NATS
)

// Time limits of the command.
const (
	// brokerTimeout bounds connecting to the broker and establishing the
	// cluster subscriptions at start.
	brokerTimeout = 15 * time.Second
	// DefaultShutdownTimeout is the default of --shutdown-timeout: how long
	// a shutdown on SIGINT/SIGTERM may take to close the clients and drain
	// the HTTP requests under way.
	DefaultShutdownTimeout = 10 * time.Second
)

const usageText = `usage: sioserver [flags]

Serves Socket.IO at /socket.io/, a page at / to watch the events of a room,
GET /healthz and GET /metrics (Prometheus). Without --url it starts an embedded NATS server on
127.0.0.1:4222 (or uses the NATS server already running there) as its
broker, so that workers and sioemit reach its clients:

  sioemit --url nats://127.0.0.1:4222 --to news headline '"hello"'

With --url it joins the cluster of the servers on that broker and channel
(other sioserver processes, Flask-SocketIO, python-socketio or Node
socket.io servers with the Redis adapter).

flags (each also read from the environment variable SIOSERVER_<NAME>, e.g.
SIOSERVER_ADDR, SIOSERVER_ALLOW_CLIENT_ROOMS=true; lists comma-separated;
a flag wins over its variable):
  --addr HOST:PORT          listen address (default 127.0.0.1:5000)
  --url URL                 broker: redis://, rediss://, redis+sentinel://, redis+cluster://,
                            unix://, amqp://, amqps://, nats://, tls://; without it, the
                            embedded NATS server
  --embedded-nats HOST:PORT address of the embedded NATS server (default 127.0.0.1:4222; port 0
                            picks a free one); a NATS server already answering there is used
  --no-broker               no broker at all: one process that workers cannot reach
  --dialect NAME            ` + brokerflags.DialectNames + ` (default python)
  --sharded-mode MODE       ` + dialectname.ShardedModes + `: with --dialect node-sharded, the
                            subscriptionMode of the cluster's createShardedAdapter (default
                            dynamic: a channel per room; static: the main channel only;
                            dynamic-private: a channel per room, socket ids included)
  --channel NAME            channel / key prefix (default flask-socketio, or socket.io for node)
  --namespace NS            repeatable: the namespaces served (default /)
  --cors ORIGIN             repeatable: accepted cross-origin origins ("*" for any)
  --static DIR              serve the files of DIR at / instead of the page
  --allow-client-rooms      a client's event join ROOM / leave ROOM joins / leaves it (ack true);
                            default true with the embedded broker, false otherwise
  --allow-client-publish    a client's event publish ROOM EVENT ARGS... emits EVENT with ARGS to
                            every member of ROOM on every node, sender included (ack true);
                            only for members of ROOM
  --shutdown-timeout DUR    on SIGINT/SIGTERM, the time to close the clients and drain (default 10s)
  --log-level LEVEL         debug | info | warn | error (default info; debug shows nats-server's)
  --parser NAME             json | msgpack: the Socket.IO parser of the clients (default json;
                            msgpack = socket.io-msgpack-parser, python-socketio serializer='msgpack')
  --auth-secret SECRET      clients must send a JWT signed with SECRET (HS256, at least 32 bytes)
                            in their auth payload {"token": "..."} (or Authorization: Bearer):
                            claims sub (the user), rooms (joined at connect), allow (path.Match
                            patterns of the rooms the client may join and publish to), exp
                            (required); a missing, invalid or expired token is refused with
                            CONNECT_ERROR saying which; join and publish then follow allow
  --auth-jwks FILE          the same with the RS256 / ES256 public keys of a JWKS file, reloaded
                            when it changes and on SIGHUP (an invalid file is logged and the
                            keys loaded before stay in use; removed keys refuse new clients)
  --auth-jwks-interval DUR  how often the JWKS file is checked for changes (default 30s; 0: only
                            on SIGHUP)
  --auth-disconnect-expired a socket whose token expires is sent token_expired and disconnected
                            (default true; =false keeps it connected, allowed nothing more);
                            a client may send refresh_token {"token": "..."} with a fresh token
                            of the same sub before, to stay connected until its exp
  --auth-expiry-warning DUR the event token_expiring {"exp", "in"} is sent that long before a
                            token expires (default 30s; 0: none)
  --admin USER:PASSWORD     serve the Socket.IO Admin UI at /admin/ and its namespace /admin,
                            for this user name and password
  --admin-mode MODE         development (every socket, room and event) | production (statistics
                            only) (default development)
  --recovery DUR            connection state recovery (socket.io >= 4.6): a client cut off comes
                            back within DUR with its id, rooms and the events it missed (on
                            the node it left, or across nodes: --recovery-store; see
                            docs/recovery.md); default 0, off
  --recovery-store NAME     memory | jetstream | stream: sessions and missed events in the
                            process (memory, the default), on the JetStream of the --url
                            nats:// server (Go nodes only), or on the Redis stream of
                            --dialect node-streams (the default with it: Go and Node nodes), so
                            a client recovers on any node of the cluster
  --version                 print the version and exit
  -h, --help                this help

Refused client requests are acknowledged with {"error": "..."}.
exit status: 0 after SIGINT/SIGTERM, 1 cannot listen or reach the broker,
2 bad flags or the embedded address held by a program that is not NATS
`

// options are the parsed flags (and SIOSERVER_* variables).
type options struct {
	addr, url, dialect, channel, static string
	shardedMode                         string // --sharded-mode; "" = the dialect's default
	embeddedNATS                        string
	parser, admin, adminMode            string
	recoveryStore                       string
	authSecret, authJWKS                string
	authExpiry                          bool              // --auth-disconnect-expired
	authWarning, jwksInterval           time.Duration     // --auth-expiry-warning, --auth-jwks-interval
	verifier                            *jwtauth.Verifier // of --auth-secret / --auth-jwks, made by checkFeatures
	namespaces, cors                    []string
	rooms, publish, noBroker, version   bool
	shutdownTimeout                     time.Duration
	recovery                            time.Duration // --recovery; 0 = off
	logLevel                            slog.Level
}

// embedded reports whether the options ask for the embedded broker (or
// the NATS server running at its address).
func (o *options) embedded() bool { return o.url == "" && !o.noBroker }

// listFlag is a repeatable string flag.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	*l.v = append(*l.v, s)
	return nil
}

// levelFlag is --log-level.
type levelFlag struct{ v *slog.Level }

func (l levelFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.ToLower(l.v.String())
}

func (l levelFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return l.v.UnmarshalText([]byte(s))
	}
	return fmt.Errorf("want debug, info, warn or error")
}

var errHelp = errors.New("help")

// noEnv are the flags that no environment variable sets.
var noEnv = map[string]bool{"version": true}

// envName is the environment variable of a flag: SIOSERVER_ and the
// flag's name in capitals, dashes as underscores.
func envName(flagName string) string {
	return "SIOSERVER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet defines the flags of sioserver, writing into o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("sioserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:5000", "")
	fs.StringVar(&o.url, "url", "", "")
	fs.StringVar(&o.embeddedNATS, "embedded-nats", DefaultEmbeddedNATS, "")
	fs.BoolVar(&o.noBroker, "no-broker", false, "")
	fs.StringVar(&o.dialect, "dialect", "python", "")
	fs.StringVar(&o.channel, "channel", "", "")
	fs.StringVar(&o.shardedMode, "sharded-mode", "", "")
	fs.Var(listFlag{&o.namespaces}, "namespace", "")
	fs.Var(listFlag{&o.cors}, "cors", "")
	fs.StringVar(&o.static, "static", "", "")
	fs.BoolVar(&o.rooms, "allow-client-rooms", false, "")
	fs.BoolVar(&o.publish, "allow-client-publish", false, "")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "")
	fs.Var(levelFlag{&o.logLevel}, "log-level", "")
	fs.BoolVar(&o.version, "version", false, "")
	fs.StringVar(&o.parser, "parser", "json", "")
	fs.StringVar(&o.recoveryStore, "recovery-store", "", "")
	fs.StringVar(&o.authSecret, "auth-secret", "", "")
	fs.StringVar(&o.authJWKS, "auth-jwks", "", "")
	fs.BoolVar(&o.authExpiry, "auth-disconnect-expired", true, "")
	fs.DurationVar(&o.authWarning, "auth-expiry-warning", DefaultExpiryWarning, "")
	fs.DurationVar(&o.jwksInterval, "auth-jwks-interval", DefaultJWKSInterval, "")
	fs.StringVar(&o.admin, "admin", "", "")
	fs.StringVar(&o.adminMode, "admin-mode", string(admin.Development), "")
	fs.DurationVar(&o.recovery, "recovery", 0, "")
	return fs
}

// parseFlags reads the flags, then the SIOSERVER_* variables of the flags
// not given; every error is one line.
func parseFlags(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (sioserver takes only flags)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := getenv(name)
		if envErr != nil || set[f.Name] || noEnv[f.Name] || v == "" {
			return
		}
		set[f.Name] = true
		values := []string{v}
		if _, ok := f.Value.(listFlag); ok {
			values = strings.Split(v, ",")
		}
		for _, x := range values {
			if err := f.Value.Set(strings.TrimSpace(x)); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
				return
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if o.version {
		return o, nil
	}
	if _, port, err := net.SplitHostPort(o.addr); err != nil || port == "" {
		return nil, fmt.Errorf("--addr %q is not HOST:PORT", o.addr)
	}
	if _, err := dialectname.New(o.dialect, o.channel); err != nil {
		return nil, fmt.Errorf("--dialect: %w", err)
	}
	if !dialectname.ServerCapable(o.dialect) {
		return nil, fmt.Errorf("--dialect %s: emitters only (servers: python, python-pickle, node, node-sharded, node-streams)", o.dialect)
	}
	if _, err := dialectname.NewWithMode(o.dialect, o.channel, o.shardedMode); err != nil {
		return nil, fmt.Errorf("--sharded-mode: %w", err)
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || !slices.Contains(queue.Schemes(), u.Scheme) {
			return nil, fmt.Errorf("--url %q is not a broker URL (schemes: %s)", queue.Redact(o.url), strings.Join(queue.Schemes(), ", "))
		}
	}
	switch {
	case o.url != "" && o.noBroker:
		return nil, errors.New("--no-broker and --url exclude each other")
	case o.url != "" && set["embedded-nats"]:
		return nil, errors.New("--embedded-nats is for the mode without --url")
	case o.noBroker && set["embedded-nats"]:
		return nil, errors.New("--no-broker and --embedded-nats exclude each other")
	}
	if _, port, err := net.SplitHostPort(o.embeddedNATS); err != nil || port == "" {
		return nil, fmt.Errorf("--embedded-nats %q is not HOST:PORT", o.embeddedNATS)
	}
	if !set["allow-client-rooms"] {
		o.rooms = o.embedded()
	}
	if o.shutdownTimeout <= 0 {
		return nil, fmt.Errorf("--shutdown-timeout %s is not positive", o.shutdownTimeout)
	}
	if len(o.namespaces) == 0 {
		o.namespaces = []string{"/"}
	}
	for _, ns := range o.namespaces {
		if !strings.HasPrefix(ns, "/") {
			return nil, fmt.Errorf("--namespace %q does not start with /", ns)
		}
	}
	for _, c := range o.cors {
		if c == "" {
			return nil, errors.New("--cors needs an origin")
		}
	}
	if o.static != "" {
		if fi, err := os.Stat(o.static); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--static %q is not a directory", o.static)
		}
	}
	if err := checkFeatures(o); err != nil {
		return nil, err
	}
	return o, nil
}

// run is the command: it serves until ctx ends (SIGINT/SIGTERM in main)
// and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, getenv)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "sioserver: %v\n", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(stdout, versionText())
		return exitOK
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	started := time.Now()
	d, _ := dialectname.NewWithMode(o.dialect, o.channel, o.shardedMode) // checked by parseFlags

	busURL := o.url
	if o.embedded() {
		b, err := startBroker(ctx, o.embeddedNATS, log)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			log.Info("sioserver: stopped while starting the embedded broker")
			return exitOK
		case errors.Is(err, errPortHeld):
			fmt.Fprintf(stderr, "sioserver: --embedded-nats: %v\n", err)
			return exitUsage
		default:
			log.Error("sioserver: cannot start the embedded NATS server", "err", err)
			return exitFailed
		}
		defer b.stop() // after the bus is closed (defers run last first)
		if b.embedded() {
			log.Info("sioserver: embedded NATS server started (JetStream off)", "url", b.url)
			if !isLoopback(o.embeddedNATS) {
				log.Warn("sioserver: the embedded NATS server has no authentication and listens beyond loopback: anyone who reaches it can emit to the clients", "addr", o.embeddedNATS)
			}
		} else {
			log.Info("sioserver: a NATS server already answers at the embedded address; using it", "url", b.url)
		}
		busURL = b.url
	}

	bus, err := clusterBus(ctx, o, busURL, log)
	if err != nil {
		if ctx.Err() != nil { // SIGINT/SIGTERM while starting: no client yet
			log.Info("sioserver: stopped while connecting to the broker")
			return exitOK
		}
		log.Error("sioserver: cannot reach the broker", "url", queue.Redact(busURL), "err", err)
		return exitFailed
	}
	if bus != nil {
		defer bus.Close()
	}
	storeOpts, err := recoveryStore(ctx, o, bus, d)
	if err != nil {
		log.Error("sioserver: cannot set up the recovery store", "err", err)
		return exitFailed
	}
	srv, auth := newServer(o, bus, d, log, storeOpts...)
	defer auth.watchJWKS(ctx, o, log)() // SIGHUP and file changes reload --auth-jwks
	stopAdmin, err := instrumentAdmin(o, srv, log)
	if err != nil {
		log.Error("sioserver: cannot start the admin instrumentation", "err", err)
		return exitFailed
	}
	defer stopAdmin()
	closeServer := func() {
		sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("sioserver: shutdown", "err", err)
		}
	}
	if bus != nil {
		rctx, cancel := context.WithTimeout(ctx, brokerTimeout)
		err := srv.AdapterReady(rctx)
		cancel()
		if err != nil {
			closeServer()
			if ctx.Err() != nil {
				log.Info("sioserver: stopped while joining the cluster")
				return exitOK
			}
			log.Error("sioserver: cannot join the cluster", "url", queue.Redact(busURL), "dialect", d.Name(), "err", err)
			return exitFailed
		}
	}

	ln, err := srv.Listen(o.addr) // refuses clients beyond the descriptor limit at once
	if err != nil {
		closeServer()
		log.Error("sioserver: cannot listen", "addr", o.addr, "err", err)
		return exitFailed
	}
	g := &gateway{o: o, srv: srv, bus: bus != nil, queue: bus, started: started, auth: auth}
	if bus != nil {
		g.hint = emitHint(o, queue.Redact(busURL))
	}
	hs := server.NewHTTPServer(o.addr, g.handler())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	page := pageURL(ln.Addr())
	attrs := []any{"addr", ln.Addr().String(), "page", page, "namespaces", o.namespaces,
		"allow-client-rooms", o.rooms, "allow-client-publish", o.publish}
	if bus != nil {
		attrs = append(attrs, "url", queue.Redact(busURL), "dialect", d.Name(), "channel", channelOf(d))
	} else {
		attrs = append(attrs, "cluster", "none (single process, --no-broker)")
	}
	log.Info("sioserver: listening", attrs...)
	banner := fmt.Sprintf("sioserver: open %s\n", page)
	if bus != nil {
		banner += fmt.Sprintf("sioserver: then try, from the repository: %s\n", g.hint)
	}
	io.WriteString(stdout, banner) // one write: a reader sees both lines at once

	code := exitOK
	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("sioserver: serve", "err", err)
		code = exitFailed
	}
	g.shutdown(hs, log)
	log.Info("sioserver: stopped")
	return code
}

// clusterBus connects to the broker at busURL (--url, or the embedded
// broker's); without one (--no-broker), nil: the server is a single
// process.
func clusterBus(ctx context.Context, o *options, busURL string, log *slog.Logger) (queue.Bus, error) {
	if busURL == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	if o.embedded() { // a NATS server: its outages logged
		return natsbus.Open(ctx, busURL, natsbus.WithLogger(log))
	}
	// the bus's outages and followed failovers in the log
	return brokerflags.OpenLogged(ctx, busURL, log)
}

// newServer builds the Socket.IO server: namespaces, client operations,
// CORS, the token check (nil without one) and, with a bus, the cluster
// adapter.
func newServer(o *options, bus queue.Bus, d dialect.Dialect, log *slog.Logger, extra ...server.Option) (*server.Server, *auth) {
	// a client's join, leave and publish run in the order it sent them
	// (as a Node server runs them), so that a publish right after a join
	// reaches the room, and the room bound of join holds
	opts := append([]server.Option{server.WithLogger(log), server.WithAsyncHandlers(false)}, featureOptions(o)...)
	opts = append(opts, extra...) // after WithConnectionStateRecovery, which they complete
	if len(o.cors) > 0 {
		opts = append(opts, server.WithCORS(false, o.cors...))
	}
	if bus != nil {
		opts = append(opts, server.WithAdapter(bus, d))
	}
	srv := server.New(opts...)
	auth := requireTokens(o, srv)
	ops := clientOps{rooms: o.rooms, publish: o.publish, auth: auth != nil}
	for _, ns := range o.namespaces {
		ops.register(srv.Of(ns))
	}
	return srv, auth
}

// channelOf names the channel (python) or key prefix (node) of d, for the
// log.
func channelOf(d dialect.Dialect) string {
	switch x := d.(type) {
	case interface{ Channel() string }:
		return x.Channel()
	case interface{ Key() string }:
		return x.Key()
	}
	return ""
}

// isLoopback reports whether the host of a HOST:PORT address is a
// loopback address or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
