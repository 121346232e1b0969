package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	natsbus "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/adapter/nats/jetstream"
	redisbus "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/adapter/redis/streamstore"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/admin"
	"github.com/siobridge/siobridge/server/jwtauth"
	"github.com/siobridge/siobridge/server/metrics"
	"github.com/siobridge/siobridge/server/parser"
)

// checkFeatures checks the flags of the optional features: the parser,
// the token check and the Admin UI.
func checkFeatures(o *options) error {
	if parser.ByName(o.parser) == nil {
		return fmt.Errorf("--parser %q: want json or msgpack", o.parser)
	}
	if o.admin != "" {
		if u, p, ok := strings.Cut(o.admin, ":"); !ok || u == "" || p == "" {
			return errors.New("--admin wants USER:PASSWORD (both non-empty)")
		}
	}
	if o.authSecret != "" && o.authJWKS != "" {
		return errors.New("--auth-secret and --auth-jwks exclude each other")
	}
	v, err := verifier(o)
	if err != nil {
		return err
	}
	o.verifier = v
	switch {
	case o.authWarning < 0:
		return fmt.Errorf("--auth-expiry-warning %s is negative", o.authWarning)
	case o.jwksInterval < 0:
		return fmt.Errorf("--auth-jwks-interval %s is negative", o.jwksInterval)
	}
	if o.recovery < 0 {
		return fmt.Errorf("--recovery %s is negative", o.recovery)
	}
	switch o.recoveryStore {
	case "", "memory":
	case "stream":
		if o.recovery == 0 || o.dialect != "node-streams" {
			return errors.New("--recovery-store stream needs --recovery DURATION and --dialect node-streams (the stream of @socket.io/redis-streams-adapter)")
		}
	case "jetstream":
		if u, err := url.Parse(o.url); o.recovery == 0 || err != nil || (u.Scheme != "nats" && u.Scheme != "tls") {
			return errors.New("--recovery-store jetstream needs --recovery DURATION and --url nats://... (a NATS server with JetStream; the embedded one runs without)")
		}
	default:
		return fmt.Errorf("--recovery-store %q: want memory, jetstream or stream", o.recoveryStore)
	}
	switch o.adminMode {
	case string(admin.Development), string(admin.Production):
	default:
		return fmt.Errorf("--admin-mode %q: want development or production", o.adminMode)
	}
	return nil
}

// verifier returns the token verifier of --auth-secret / --auth-jwks, or
// nil without them.
func verifier(o *options) (*jwtauth.Verifier, error) {
	switch {
	case o.authSecret != "":
		v, err := jwtauth.NewHS256([]byte(o.authSecret))
		if err != nil {
			return nil, fmt.Errorf("--auth-secret: %w", err)
		}
		return v, nil
	case o.authJWKS != "":
		v, err := jwtauth.LoadJWKS(o.authJWKS)
		if err != nil {
			return nil, fmt.Errorf("--auth-jwks: %w", err)
		}
		return v, nil
	}
	return nil, nil
}

// featureOptions are the server options of the optional features.
func featureOptions(o *options) []server.Option {
	return []server.Option{server.WithParser(parser.ByName(o.parser)),
		server.WithConnectionStateRecovery(o.recovery, true)} // 0: off
}

// recoveryStoreName is --recovery-store, its default resolved: stream
// with --dialect node-streams and --recovery, memory otherwise.
func recoveryStoreName(o *options) string {
	switch {
	case o.recoveryStore != "":
		return o.recoveryStore
	case o.dialect == "node-streams" && o.recovery > 0:
		return "stream"
	}
	return "memory"
}

// recoveryStore returns the server option of --recovery-store jetstream
// (sessions and the packet log on the JetStream of the NATS bus) or
// stream (sessions and offsets on the Redis stream of the node-streams
// dialect d, as Node's @socket.io/redis-streams-adapter keeps them), so
// that a client recovers on any node of the cluster (none for memory).
func recoveryStore(ctx context.Context, o *options, bus queue.Bus, d dialect.Dialect) ([]server.Option, error) {
	switch recoveryStoreName(o) {
	case "stream":
		rb, ok := bus.(*redisbus.Bus)
		sd, isStreams := d.(*nodestreams.Dialect)
		if !ok || !isStreams {
			return nil, fmt.Errorf("--recovery-store stream: the bus is %T and the dialect %s, not Redis and node-streams", bus, d.Name())
		}
		return []server.Option{server.WithRecoveryStore(streamstore.New(rb.Client(), sd, streamstore.Options{MaxAge: o.recovery}))}, nil
	case "jetstream":
	default:
		return nil, nil
	}
	nb, ok := bus.(*natsbus.Bus)
	if !ok {
		return nil, fmt.Errorf("--recovery-store jetstream: the bus is %T, not NATS", bus)
	}
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	st, err := jetstream.New(ctx, nb.Conn(), jetstream.Options{MaxAge: o.recovery})
	if err != nil {
		return nil, fmt.Errorf("--recovery-store jetstream: %w", err)
	}
	return []server.Option{server.WithRecoveryStore(st)}, nil
}

// instrumentAdmin makes srv report to the Admin UI (--admin); the
// returned stop ends the instrumentation (a no-op without --admin).
func instrumentAdmin(o *options, srv *server.Server, log *slog.Logger) (stop func(), err error) {
	if o.admin == "" {
		return func() {}, nil
	}
	user, pass, _ := strings.Cut(o.admin, ":")
	a, err := admin.Instrument(srv, admin.Options{Auth: admin.Basic(user, pass), Mode: admin.Mode(o.adminMode), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	return a.Close, nil
}

// featureRoutes adds the endpoints of the optional features to mux: the
// Prometheus metrics at /metrics (with those of the token check a, if
// any), and the Admin UI at /admin/ with --admin.
func featureRoutes(o *options, mux *http.ServeMux, srv *server.Server, bus queue.Bus, a *auth) {
	mux.Handle("GET /metrics", metrics.Handler(srv, metrics.Options{Bus: bus, Collectors: a.collectors()}))
	if o.admin != "" {
		mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI()))
		mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	}
}
