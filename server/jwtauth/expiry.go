package jwtauth

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/server"
)

// The events of token expiry (Expiry).
const (
	// EventTokenExpiring is sent to a socket ExpiryOptions.Warning before
	// its token expires, with one argument {"exp": <the token's exp, Unix
	// seconds>, "in": <seconds left, rounded up>}: the time to send a
	// fresh token with EventRefreshToken.
	EventTokenExpiring = "token_expiring"
	// EventTokenExpired is sent to a socket when its token expires, with
	// {"exp": <Unix seconds>}, right before the server disconnects it from
	// its namespace.
	EventTokenExpired = "token_expired"
	// EventRefreshToken is the event a client sends with a fresh token:
	// {"token": "<JWT>"} or the token as a string. Its acknowledgement is
	// {"exp": <the new exp, Unix seconds>} (null for a token without exp),
	// or {"error": "<why>", "reason": "missing" | "invalid" | "expired" |
	// "subject"}.
	EventRefreshToken = "refresh_token"
)

// DefaultExpiryWarning is ExpiryOptions.Warning's default.
const DefaultExpiryWarning = 30 * time.Second

// ErrWrongSubject is wrapped by Refresh's error when the fresh token is
// another user's (its sub differs from the connection's).
var ErrWrongSubject = errors.New("the token is for another subject")

// ErrNotWatched is returned by Refresh for a socket the Expiry does not
// watch: connected without this verifier's claims, already disconnected,
// or the Expiry closed.
var ErrNotWatched = errors.New("jwtauth: socket not connected with a token of this verifier")

// ExpiryOptions configure an Expiry.
type ExpiryOptions struct {
	// Warning is how long before its token expires a socket is sent
	// EventTokenExpiring (DefaultExpiryWarning when 0; negative: no
	// warning). A token that has less than that left when the socket
	// connects or refreshes is warned at once.
	Warning time.Duration
}

// Expiry disconnects the sockets whose token expires, and lets clients
// extend their connection with a fresh token. Make it with
// Verifier.DisconnectExpired; it is safe for concurrent use.
//
// Each socket connected with a token of the verifier (its claims attached
// by OnConnect or Middleware when it connects) that has an exp gets one
// timer (time.AfterFunc: no goroutine while it waits), stopped when the
// socket disconnects, and an entry of about 100 bytes while it is
// connected. When the token's exp (plus the verifier's leeway) passes,
// the socket is sent EventTokenExpired then a Socket.IO DISCONNECT for
// its namespace (server reason "server namespace disconnect"; the
// socket.io client's "io server disconnect", after which it does not
// reconnect by itself: with the same token it would be refused anyway).
// ExpiryOptions.Warning before that, it is sent EventTokenExpiring. A
// client that sends EventRefreshToken (HandleRefresh) or whose server
// calls Refresh with a valid token of the same sub before the deadline
// stays connected until the new token's exp.
type Expiry struct {
	v      *Verifier
	warn   time.Duration
	remove func()

	mu     sync.Mutex
	socks  map[*server.Socket]*watch // the sockets with claims of v, while connected
	closed bool

	warned, expired, refreshed, refused atomic.Uint64
}

// watch is the expiry state of one socket.
type watch struct {
	claims   *ClaimSet
	deadline time.Time // exp plus the leeway; zero without exp
	warned   bool
	timer    *time.Timer
}

// DisconnectExpired makes srv disconnect the sockets whose token of v
// expires (see Expiry), from now until Close. It watches the sockets that
// connect from then on, in every namespace; install OnConnect or
// Middleware for the namespaces that need tokens, and HandleRefresh for
// those whose clients may refresh. With server.WithAlwaysConnect, use
// Middleware: OnConnect attaches the claims after the socket connected,
// too late to be watched.
func (v *Verifier) DisconnectExpired(srv *server.Server, o ExpiryOptions) *Expiry {
	e := &Expiry{v: v, warn: o.Warning, socks: map[*server.Socket]*watch{}}
	if e.warn == 0 {
		e.warn = DefaultExpiryWarning
	}
	e.remove = srv.AddHooks(server.Hooks{Connected: e.connected, Disconnected: e.disconnected})
	return e
}

// connected watches s when it connected with claims of e's verifier. A
// Connected hook runs with no lock of s held, so reading its data is safe.
func (e *Expiry) connected(s *server.Socket) {
	c := Claims(s)
	if c == nil || c.v != e.v {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	w := &watch{claims: c}
	e.socks[s] = w
	e.armLocked(s, w)
}

// disconnected forgets s and stops its timer.
func (e *Expiry) disconnected(s *server.Socket, _ string) {
	e.mu.Lock()
	if w := e.socks[s]; w != nil {
		delete(e.socks, s)
		if w.timer != nil {
			w.timer.Stop()
		}
	}
	e.mu.Unlock()
}

// armLocked starts w's timer: for the warning, or for the deadline once
// warned. e.mu is held.
func (e *Expiry) armLocked(s *server.Socket, w *watch) {
	d, ok := w.claims.deadline()
	if !ok {
		return
	}
	w.deadline = d
	at := d
	if !w.warned && e.warn > 0 {
		at = d.Add(-e.warn)
	}
	w.timer = time.AfterFunc(time.Until(at), func() { e.fire(s, w) })
}

// fire runs on w's timer: it warns s, or disconnects it when its deadline
// passed. A timer of a watch replaced since (Refresh) or forgotten
// (disconnected, Close) does nothing.
func (e *Expiry) fire(s *server.Socket, w *watch) {
	e.mu.Lock()
	if e.socks[s] != w {
		e.mu.Unlock()
		return
	}
	now := time.Now()
	if now.Before(w.deadline) {
		if w.warned || e.warn <= 0 { // not due yet (never happens with the runtime's timers)
			w.timer = time.AfterFunc(w.deadline.Sub(now), func() { e.fire(s, w) })
			e.mu.Unlock()
			return
		}
		w.warned = true
		e.mu.Unlock()
		e.warned.Add(1)
		// sent before the timer of the deadline is armed: the client
		// gets the warning first whatever the time left
		s.Emit(EventTokenExpiring, map[string]int64{"exp": w.claims.ExpiresAt.Unix(), "in": int64((w.deadline.Sub(now) + time.Second - 1) / time.Second)})
		e.mu.Lock()
		if e.socks[s] == w {
			e.armLocked(s, w)
		}
		e.mu.Unlock()
		return
	}
	delete(e.socks, s)
	e.mu.Unlock()
	e.expired.Add(1)
	s.Emit(EventTokenExpired, map[string]int64{"exp": w.claims.ExpiresAt.Unix()})
	s.Disconnect()
}

// Refresh verifies token and, when it is valid and for the same sub as
// the token s connected with, attaches its claims to s (its allow
// patterns and exp then decide Allowed) and restarts s's expiry with its
// exp (warned again before it). The rooms of the fresh token are not
// joined: rooms are joined at connect. On error s keeps its claims and
// deadline; the error wraps ErrMissingToken, ErrInvalidToken,
// ErrExpiredToken or ErrWrongSubject, or is ErrNotWatched.
func (e *Expiry) Refresh(s *server.Socket, token string) (*ClaimSet, error) {
	c, err := e.v.Verify(token)
	if err != nil {
		e.refused.Add(1)
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.socks[s]
	if w == nil {
		e.refused.Add(1)
		return nil, ErrNotWatched
	}
	if c.Subject != w.claims.Subject {
		e.refused.Add(1)
		return nil, fmt.Errorf("%w: %w (%q, connected as %q)", ErrInvalidToken, ErrWrongSubject, c.Subject, w.claims.Subject)
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	nw := &watch{claims: c}
	e.socks[s] = nw
	s.SetData(c)
	e.armLocked(s, nw)
	e.refreshed.Add(1)
	return c, nil
}

// HandleRefresh installs the handler of EventRefreshToken in namespace n:
// a client sends a fresh token, Refresh checks it, and the
// acknowledgement says the new exp or why the token was refused (see
// EventRefreshToken).
func (e *Expiry) HandleRefresh(n *server.Namespace) {
	n.On(EventRefreshToken, func(s *server.Socket, args ...any) any {
		var tok string
		if len(args) > 0 {
			switch a := args[0].(type) {
			case string:
				tok = a
			case map[string]any:
				tok, _ = a["token"].(string)
			}
		}
		c, err := e.Refresh(s, tok)
		if err != nil {
			return map[string]string{"error": err.Error(), "reason": reasonOf(err)}
		}
		if c.ExpiresAt == nil {
			return map[string]any{"exp": nil}
		}
		return map[string]int64{"exp": c.ExpiresAt.Unix()}
	})
}

// ExpiryStats are the counts of an Expiry.
type ExpiryStats struct {
	// Watched is the number of sockets watched now.
	Watched int
	// Warned counts the EventTokenExpiring sent; Expired the sockets
	// disconnected because their token expired.
	Warned, Expired uint64
	// Refreshed and Refused count the refreshes accepted and refused.
	Refreshed, Refused uint64
}

// Stats returns e's counts.
func (e *Expiry) Stats() ExpiryStats {
	e.mu.Lock()
	n := len(e.socks)
	e.mu.Unlock()
	return ExpiryStats{Watched: n, Warned: e.warned.Load(), Expired: e.expired.Load(),
		Refreshed: e.refreshed.Load(), Refused: e.refused.Load()}
}

// Close stops watching: the timers are stopped, and no socket is
// disconnected for its token's expiry any more (Refresh returns
// ErrNotWatched).
func (e *Expiry) Close() {
	e.remove()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for s, w := range e.socks {
		if w.timer != nil {
			w.timer.Stop()
		}
		delete(e.socks, s)
	}
}
