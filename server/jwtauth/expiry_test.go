package jwtauth_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/jwtauth"
	"github.com/siobridge/siobridge/server/servertest"
)

// observe is the deadline of the waits for what a timer does: generous,
// since the timers' delays are short and the machine may be loaded.
const observe = 30 * time.Second

// expiring connects a client to "/" of srv with an HS256 token of sub
// that expires in d (rounded down to the second, as exp is). It returns
// once the server is done with the connection (an acknowledged event
// after it): the Connected hooks have run.
func expiring(t *testing.T, srv *server.Server, sub string, d time.Duration) *servertest.Client {
	t.Helper()
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": sub, "exp": time.Now().Add(d).Unix()}), "")
	c, ce := connect(t, srv, map[string]string{"token": tok}, servertest.Options{})
	if ce != nil {
		t.Fatal(ce)
	}
	ask(t, c, "whoami")
	return c
}

// waitGone waits until the socket sid has left namespace "/" of srv.
func waitGone(t *testing.T, srv *server.Server, sid string) {
	t.Helper()
	for deadline := time.Now().Add(observe); srv.Of("/").Socket(sid) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("socket %s still on the server", sid)
		}
	}
}

func events(rs []servertest.Received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Event)
	}
	return out
}

// A socket whose token expires is warned, then sent token_expired and
// disconnected from its namespace (a DISCONNECT the client sees); it is
// gone from the server and from the Expiry's watch.
func TestExpiryDisconnects(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	e := v.DisconnectExpired(srv, jwtauth.ExpiryOptions{Warning: time.Second})
	defer e.Close()
	c := expiring(t, srv, "alice", 2*time.Second)
	sid := c.SID("/")
	got, err := c.WaitFor("/", jwtauth.EventTokenExpired, observe)
	if err != nil {
		t.Fatal(err)
	}
	if ev := events(got); len(ev) != 2 || ev[0] != jwtauth.EventTokenExpiring {
		t.Fatalf("events %v, want token_expiring then token_expired", ev)
	}
	warn, _ := got[0].Args[0].(map[string]any)
	if in, _ := warn["in"].(float64); warn["exp"] == nil || in < 0 || in > 1 {
		t.Fatalf("token_expiring %v, want exp and in (seconds left, at most the warning)", got[0].Args)
	}
	if !c.WaitDisconnected("/", observe) {
		t.Fatal("no DISCONNECT after token_expired")
	}
	waitGone(t, srv, sid)
	if st := e.Stats(); st.Watched != 0 || st.Expired != 1 || st.Warned != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Refresh with a fresh token of the same sub keeps a socket connected past
// its first token's exp (a control client whose token expires a second
// later is disconnected meanwhile), and the fresh claims decide Allowed;
// a token of another sub, an expired or a malformed one is refused with a
// reason, and that socket is disconnected at its first exp.
func TestExpiryRefresh(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	e := v.DisconnectExpired(srv, jwtauth.ExpiryOptions{Warning: 3 * time.Second})
	defer e.Close()
	e.HandleRefresh(srv.Of("/"))
	// 3 to 4 s left (exp is in whole seconds): warned at once or within a
	// second, alice refreshes with 3 s to spare
	exp := time.Now().Add(4 * time.Second)
	tok := func(sub string, exp time.Time, allow ...string) string {
		return sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": sub, "exp": exp.Unix(), "allow": allow}), "")
	}
	connectWith := func(tok string) *servertest.Client {
		c, ce := connect(t, srv, map[string]string{"token": tok}, servertest.Options{})
		if ce != nil {
			t.Fatal(ce)
		}
		return c
	}
	alice := connectWith(tok("alice", exp))
	control := connectWith(tok("carol", exp.Add(time.Second)))
	mallory := connectWith(tok("mallory", exp))

	// as a client does: refresh when warned
	if _, err := alice.WaitFor("/", jwtauth.EventTokenExpiring, observe); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	got := ask(t, alice, jwtauth.EventRefreshToken, map[string]string{"token": tok("alice", later, "news")})
	if m, _ := got[0].(map[string]any); m["exp"] != float64(later.Unix()) {
		t.Fatalf("refresh ack %v, want the new exp", got)
	}
	if may := ask(t, alice, "may", "news"); may[0] != true {
		t.Fatal("the fresh token's allow patterns are not used")
	}

	for _, bad := range []struct {
		arg    any
		reason string
	}{
		{map[string]string{"token": tok("alice", later)}, "subject"},
		{tok("mallory", time.Now().Add(-time.Hour)), "expired"},
		{map[string]string{"token": "not.a.jwt"}, "invalid"},
		{map[string]any{}, "missing"},
		{42, "missing"},
	} {
		got := ask(t, mallory, jwtauth.EventRefreshToken, bad.arg)
		if m, _ := got[0].(map[string]any); m["reason"] != bad.reason || m["error"] == nil {
			t.Errorf("refresh with %v: ack %v, want reason %q", bad.arg, got, bad.reason)
		}
	}

	if !control.WaitDisconnected("/", observe) || !mallory.WaitDisconnected("/", observe) {
		t.Fatal("the control client or the refused one is still connected")
	}
	// the control's exp is a second after alice's first one: alice would be gone now
	if who := ask(t, alice, "whoami"); who[0] != "alice" {
		t.Fatalf("alice after her first exp: %v", who)
	}
	if rs := alice.Received("/"); len(rs) != 0 {
		t.Fatalf("alice received %v after refreshing", events(rs))
	}
	if st := e.Stats(); st.Watched != 1 || st.Refreshed != 1 || st.Refused != 5 || st.Expired != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// Refresh of a socket without this verifier's claims is ErrNotWatched.
func TestRefreshNotWatched(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	e := v.DisconnectExpired(srv, jwtauth.ExpiryOptions{})
	defer e.Close()
	srv.Of("/open").On("refresh", func(s *server.Socket, tok string) string {
		_, err := e.Refresh(s, tok)
		return fmt.Sprint(errors.Is(err, jwtauth.ErrNotWatched))
	})
	c := dial(t, srv, servertest.Options{})
	if err := c.Connect("/open", nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.EmitWithAck("/open", 5*time.Second, "refresh", sign(t, jwt.SigningMethodHS256, secret, claims(nil), ""))
	if err != nil || got[0] != "true" {
		t.Fatalf("refresh of a socket without claims: %v %v", got, err)
	}
}

// A socket that leaves (its client disconnects) is no longer watched: its
// timer is stopped and its entry dropped. Close stops the rest.
func TestExpiryForgetsDisconnected(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	e := v.DisconnectExpired(srv, jwtauth.ExpiryOptions{})
	a := expiring(t, srv, "a", time.Hour)
	expiring(t, srv, "b", time.Hour)
	if n := e.Stats().Watched; n != 2 {
		t.Fatalf("watching %d sockets, want 2", n)
	}
	a.Close()
	for deadline := time.Now().Add(observe); e.Stats().Watched != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watching %d sockets after one left, want 1", e.Stats().Watched)
		}
	}
	e.Close()
	if n := e.Stats().Watched; n != 0 {
		t.Fatalf("watching %d sockets after Close", n)
	}
	expiring(t, srv, "c", time.Hour)
	if n := e.Stats().Watched; n != 0 {
		t.Fatalf("a closed Expiry watches %d sockets", n)
	}
}
