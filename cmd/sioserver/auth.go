package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/jwtauth"
)

// Defaults of the token flags.
const (
	// DefaultExpiryWarning is the default of --auth-expiry-warning.
	DefaultExpiryWarning = jwtauth.DefaultExpiryWarning
	// DefaultJWKSInterval is the default of --auth-jwks-interval.
	DefaultJWKSInterval = jwtauth.DefaultWatchInterval
)

// auth is the token check of --auth-secret / --auth-jwks on a server.
type auth struct {
	v      *jwtauth.Verifier
	expiry *jwtauth.Expiry // nil with --auth-disconnect-expired=false
}

// requireTokens makes every namespace served refuse clients without a
// valid token (--auth-secret, --auth-jwks) and join those with one to the
// rooms of their token; unless --auth-disconnect-expired=false, sockets are
// warned before their token expires, may send a fresh one
// (refresh_token), and are disconnected when it expires. Nil without
// those flags.
func requireTokens(o *options, srv *server.Server) *auth {
	if o.verifier == nil {
		return nil
	}
	a := &auth{v: o.verifier}
	if o.authExpiry {
		warn := o.authWarning
		if warn == 0 {
			warn = -1 // no warning
		}
		a.expiry = o.verifier.DisconnectExpired(srv, jwtauth.ExpiryOptions{Warning: warn})
	}
	for _, ns := range o.namespaces {
		srv.Of(ns).OnConnect(o.verifier.OnConnect(nil))
		if a.expiry != nil {
			a.expiry.HandleRefresh(srv.Of(ns))
		}
	}
	return a
}

// watchJWKS reloads the --auth-jwks file when it changes (checked every
// --auth-jwks-interval) and on SIGHUP, logging each reload, until the
// returned stop is called. A file that is not a valid JWKS is logged as
// an error and the keys loaded before stay in use.
func (a *auth) watchJWKS(ctx context.Context, o *options, log *slog.Logger) (stop func()) {
	if a == nil || o.authJWKS == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	report := func(why string) func(error) {
		return func(err error) {
			if err != nil {
				log.Error("sioserver: --auth-jwks: reload refused", "why", why, "err", err)
				return
			}
			log.Info("sioserver: --auth-jwks: keys reloaded", "why", why, "file", o.authJWKS, "kids", a.v.KeyIDs())
		}
	}
	if o.jwksInterval > 0 {
		wg.Go(func() { a.v.Watch(ctx, o.jwksInterval, report("file changed")) })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				report("SIGHUP")(a.v.Reload())
			}
		}
	})
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}

// collectors are the Prometheus metrics of the token check.
func (a *auth) collectors() []prometheus.Collector {
	if a == nil {
		return nil
	}
	return []prometheus.Collector{authCollector{a}}
}

// authCollector exports the counts of the JWKS reloads and of token
// expiry, read at scrape time.
type authCollector struct{ a *auth }

var (
	jwksReloadsDesc = prometheus.NewDesc("siobridge_jwks_reloads_total",
		"Reloads of the --auth-jwks file (on change or SIGHUP) by outcome: ok (new keys in use), error (refused, previous keys kept).", []string{"outcome"}, nil)
	tokensExpiredDesc = prometheus.NewDesc("siobridge_tokens_expired_total",
		"Sockets disconnected because their token expired.", nil, nil)
	tokenRefreshesDesc = prometheus.NewDesc("siobridge_token_refreshes_total",
		"Fresh tokens sent by clients (refresh_token) by outcome: accepted, refused.", []string{"outcome"}, nil)
)

func (c authCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jwksReloadsDesc
	ch <- tokensExpiredDesc
	ch <- tokenRefreshesDesc
}

func (c authCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.a.v.ReloadStats()
	ch <- prometheus.MustNewConstMetric(jwksReloadsDesc, prometheus.CounterValue, float64(r.Reloads), "ok")
	ch <- prometheus.MustNewConstMetric(jwksReloadsDesc, prometheus.CounterValue, float64(r.Failures), "error")
	var e jwtauth.ExpiryStats
	if c.a.expiry != nil {
		e = c.a.expiry.Stats()
	}
	ch <- prometheus.MustNewConstMetric(tokensExpiredDesc, prometheus.CounterValue, float64(e.Expired))
	ch <- prometheus.MustNewConstMetric(tokenRefreshesDesc, prometheus.CounterValue, float64(e.Refreshed), "accepted")
	ch <- prometheus.MustNewConstMetric(tokenRefreshesDesc, prometheus.CounterValue, float64(e.Refused), "refused")
}
