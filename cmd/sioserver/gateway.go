package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
)

// gateway is what sioserver serves over HTTP around its Socket.IO server:
// the page, the browser client, /healthz; and how it shuts down.
type gateway struct {
	o       *options
	srv     *server.Server
	bus     bool      // the server has a cluster bus (not --no-broker)
	queue   queue.Bus // that bus, or nil
	started time.Time
	hint    string // the sioemit command to try, for the page ("" without a bus)

	mu        sync.Mutex
	countedAt time.Time
	clients   int
}

// handler routes the requests: Socket.IO at /socket.io/, the socket.io
// browser client at /socket.io/socket.io.min.js (where Node's socket.io
// serves it), GET /healthz, and at / the page or the files of --static.
// This mux is where further endpoints (metrics, an admin UI) go.
func (g *gateway) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", g.srv)
	mux.HandleFunc("GET /socket.io/socket.io.min.js", serveClient)
	mux.HandleFunc("GET /healthz", g.healthz)
	featureRoutes(g.o, mux, g.srv, g.queue)
	if g.o.static != "" {
		mux.Handle("/", http.FileServer(http.Dir(g.o.static)))
	} else {
		g.pageRoutes(mux)
	}
	return mux
}

// clientsCacheTTL is how long /healthz reuses its count of the clients:
// counting costs time in the number of clients, and health checks may come
// often, so it runs at most once per TTL whatever the request rate.
const clientsCacheTTL = time.Second

// countClients returns the number of sockets connected to the namespaces
// served, counted at most once per clientsCacheTTL.
func (g *gateway) countClients() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.countedAt) >= clientsCacheTTL {
		n := 0
		for _, ns := range g.o.namespaces {
			n += len(g.srv.Of(ns).Sockets())
		}
		g.clients, g.countedAt = n, now
	}
	return g.clients
}

// health is the body of GET /healthz.
type health struct {
	// Status is "ok", or "bus down" when the server has a bus that is not
	// connected to its broker (503).
	Status string `json:"status"`
	// Bus is null without a broker (--no-broker).
	Bus *busHealth `json:"bus"`
	// Clients are the sockets connected to the namespaces served (counted
	// at most once a second).
	Clients int `json:"clients"`
	// UptimeSeconds is the time since the process started.
	UptimeSeconds float64 `json:"uptime_seconds"`
}

type busHealth struct {
	// Connected: every cluster subscription is established and the bus is
	// connected to its broker.
	Connected bool `json:"connected"`
}

// healthz answers GET /healthz: 200 with a health body, or 503 when the
// bus is down (a load balancer then sends new clients to another node).
func (g *gateway) healthz(w http.ResponseWriter, r *http.Request) {
	h := health{Status: "ok", Clients: g.countClients(), UptimeSeconds: time.Since(g.started).Seconds()}
	code := http.StatusOK
	if g.bus {
		h.Bus = &busHealth{Connected: g.srv.BusConnected()}
		if !h.Bus.Connected {
			h.Status, code = "bus down", http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}

// shutdown stops accepting connections, closes every client (their
// disconnect reason on the server is "server shutting down"; the
// socket.io client sees "transport close" and reconnects, to another node
// behind a load balancer) and drains the HTTP requests under way, within
// --shutdown-timeout; what is left then is closed.
func (g *gateway) shutdown(hs *http.Server, log *slog.Logger) {
	log.Info("sioserver: shutting down: no new connections, closing the clients", "clients", g.countClients(), "timeout", g.o.shutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), g.o.shutdownTimeout)
	defer cancel()
	httpDone := make(chan error, 1)
	// closes the listener at once, then waits for the requests under way
	// (polling requests end when srv.Shutdown closes their sessions)
	go func() { httpDone <- hs.Shutdown(ctx) }()
	if err := g.srv.Shutdown(ctx); err != nil {
		log.Warn("sioserver: clients not all closed within the shutdown timeout", "err", err)
	}
	if err := <-httpDone; err != nil {
		log.Warn("sioserver: HTTP requests not drained within the shutdown timeout; closing them", "err", err)
		hs.Close()
	}
}

// pageURL is the address to open in a browser for a listener's address
// (an unspecified host is reached on loopback).
func pageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// PageRoom is the room the page joins unless its URL names others
// (?rooms=a,b), and the one the startup hint emits to.
const PageRoom = "news"

// emitHint is the sioemit command that reaches the page's default room
// on the bus at busURL, in the form of the README's quick start.
func emitHint(o *options, busURL string) string {
	args := []string{"go", "run", "./cmd/sioemit", "--url", busURL}
	if o.dialect != "python" {
		args = append(args, "--dialect", o.dialect)
	}
	if o.shardedMode != "" {
		args = append(args, "--sharded-mode", o.shardedMode)
	}
	if o.channel != "" {
		args = append(args, "--channel", o.channel)
	}
	if ns := o.namespaces[0]; ns != "/" {
		args = append(args, "--namespace", ns)
	}
	args = append(args, "--to", PageRoom, "headline", `"hello"`)
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_./:@%+=,", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
