package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/brokerflags"
	"github.com/siobridge/siobridge/internal/dialectname"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
)

const (
	exitOK     = 0
	exitFailed = 1 // cannot listen, reach the broker or join the cluster
	exitUsage  = 2
)

// Time limits of the command.
const (
	// brokerTimeout bounds connecting to the broker and establishing the
	// cluster subscriptions at start.
	brokerTimeout = 15 * time.Second
	// shutdownTimeout bounds closing the clients and the listener on
	// SIGINT/SIGTERM.
	shutdownTimeout = 10 * time.Second
)

const usageText = `usage: sioserver [flags]

Serves Socket.IO at /socket.io/ and, with --url, joins the cluster of the
servers on that broker and channel (other sioserver processes, Flask-SocketIO,
python-socketio or Node socket.io servers with the Redis adapter).

flags:
  --addr HOST:PORT          listen address (default 127.0.0.1:5000)
  --url URL                 broker (env SIOSERVER_URL): redis://, rediss://, redis+sentinel://,
                            unix://, amqp://, amqps://, nats://, tls://; without it, one process
  --dialect NAME            ` + brokerflags.DialectNames + ` (default python)
  --channel NAME            channel / key prefix (default flask-socketio, or socket.io for node)
  --namespace NS            repeatable: the namespaces served (default /)
  --cors ORIGIN             repeatable: accepted cross-origin origins ("*" for any)
  --static DIR              serve the files of DIR at /
  --allow-client-rooms      a client's event join ROOM / leave ROOM joins / leaves it (ack true)
  --allow-client-publish    a client's event publish ROOM EVENT ARGS... emits EVENT with ARGS to
                            every member of ROOM on every node, sender included (ack true);
                            only for members of ROOM
  -h, --help                this help

Refused client requests are acknowledged with {"error": "..."}.
exit status: 0 after SIGINT/SIGTERM, 1 cannot listen or reach the broker, 2 bad flags
`

// options are the parsed flags.
type options struct {
	addr, url, dialect, channel, static string
	namespaces, cors                    []string
	rooms, publish                      bool
}

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

var errHelp = errors.New("help")

// parseFlags reads the flags; every error is one line.
func parseFlags(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sioserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:5000", "")
	fs.StringVar(&o.url, "url", getenv("SIOSERVER_URL"), "")
	fs.StringVar(&o.dialect, "dialect", "python", "")
	fs.StringVar(&o.channel, "channel", "", "")
	fs.Var(listFlag{&o.namespaces}, "namespace", "")
	fs.Var(listFlag{&o.cors}, "cors", "")
	fs.StringVar(&o.static, "static", "", "")
	fs.BoolVar(&o.rooms, "allow-client-rooms", false, "")
	fs.BoolVar(&o.publish, "allow-client-publish", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (sioserver takes only flags)", fs.Arg(0))
	}
	if _, port, err := net.SplitHostPort(o.addr); err != nil || port == "" {
		return nil, fmt.Errorf("--addr %q is not HOST:PORT", o.addr)
	}
	if _, err := dialectname.New(o.dialect, o.channel); err != nil {
		return nil, fmt.Errorf("--dialect: %w", err)
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || !slices.Contains(queue.Schemes(), u.Scheme) {
			return nil, fmt.Errorf("--url %q is not a broker URL (schemes: %s)", queue.Redact(o.url), strings.Join(queue.Schemes(), ", "))
		}
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
	log := slog.New(slog.NewTextHandler(stderr, nil))
	d, _ := dialectname.New(o.dialect, o.channel) // checked by parseFlags

	bus, err := clusterBus(ctx, o)
	if err != nil {
		if ctx.Err() != nil { // SIGINT/SIGTERM while starting: no client yet
			log.Info("sioserver: stopped while connecting to the broker")
			return exitOK
		}
		log.Error("sioserver: cannot reach the broker", "url", queue.Redact(o.url), "err", err)
		return exitFailed
	}
	if bus != nil {
		defer bus.Close()
	}
	srv := newServer(o, bus, d, log)
	closeServer := func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
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
			log.Error("sioserver: cannot join the cluster", "url", queue.Redact(o.url), "dialect", d.Name(), "err", err)
			return exitFailed
		}
	}

	ln, err := srv.Listen(o.addr) // refuses clients beyond the descriptor limit at once
	if err != nil {
		closeServer()
		log.Error("sioserver: cannot listen", "addr", o.addr, "err", err)
		return exitFailed
	}
	hs := server.NewHTTPServer(o.addr, handler(srv, o))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	attrs := []any{"addr", ln.Addr().String(), "namespaces", o.namespaces}
	if bus != nil {
		attrs = append(attrs, "url", queue.Redact(o.url), "dialect", d.Name(), "channel", channelOf(d))
	} else {
		attrs = append(attrs, "cluster", "none (single process)")
	}
	log.Info("sioserver: listening", attrs...)

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("sioserver: shutting down")
	case err := <-served:
		log.Error("sioserver: serve", "err", err)
		code = exitFailed
	}
	// Clients first (this also ends the polling requests that wait), then
	// the listener and the remaining HTTP requests.
	closeServer()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("sioserver: HTTP shutdown", "err", err)
	}
	log.Info("sioserver: stopped")
	return code
}

// clusterBus connects to the broker of --url; without it, nil: the server
// is a single process. (The seam for an embedded broker: a later version
// starts one here and returns a bus connected to it.)
func clusterBus(ctx context.Context, o *options) (queue.Bus, error) {
	if o.url == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	return brokerflags.Open(ctx, o.url)
}

// newServer builds the Socket.IO server: namespaces, client operations,
// CORS and, with a bus, the cluster adapter.
func newServer(o *options, bus queue.Bus, d dialect.Dialect, log *slog.Logger) *server.Server {
	// a client's join, leave and publish run in the order it sent them
	// (as a Node server runs them), so that a publish right after a join
	// reaches the room, and the room bound of join holds
	opts := []server.Option{server.WithLogger(log), server.WithAsyncHandlers(false)}
	if len(o.cors) > 0 {
		opts = append(opts, server.WithCORS(false, o.cors...))
	}
	if bus != nil {
		opts = append(opts, server.WithAdapter(bus, d))
	}
	srv := server.New(opts...)
	ops := clientOps{rooms: o.rooms, publish: o.publish}
	for _, ns := range o.namespaces {
		ops.register(srv.Of(ns))
	}
	return srv
}

// handler routes /socket.io/ to srv and, with --static, the rest to the
// files of the directory.
func handler(srv *server.Server, o *options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	if o.static != "" {
		mux.Handle("/", http.FileServer(http.Dir(o.static)))
	}
	return mux
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
