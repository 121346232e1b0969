package main

import (
	"bytes"
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/server/servertest"
)

// observe bounds the waits for what happens on a timer or a file check:
// generous, the delays themselves are short.
const observe = 30 * time.Second

const authSecret = "0123456789abcdef0123456789abcdef-test"

// connectAuth connects a client to "/" of in with auth.
func connectAuth(t *testing.T, in *instance, auth any) (*servertest.Client, error) {
	t.Helper()
	c, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.Connect("/", auth)
}

func tokenAuth(tok string) any { return map[string]string{"token": tok} }

// waitMetric waits until GET /metrics has line.
func waitMetric(t *testing.T, in *instance, line string) {
	t.Helper()
	var body []byte
	for deadline := time.Now().Add(observe); ; time.Sleep(20 * time.Millisecond) {
		_, body = get(t, in.url+"/metrics")
		if bytes.Contains(body, []byte(line+"\n")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in /metrics:\n%s", line, body)
		}
	}
}

// esToken is the auth payload of an ES256 token signed by k, named kid.
func esToken(t *testing.T, k *ecdsa.PrivateKey, kid string) any {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": kid, "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return tokenAuth(s)
}

// waitAccepted waits until a client with auth is accepted.
func waitAccepted(t *testing.T, in *instance, auth any, what string) {
	t.Helper()
	for deadline := time.Now().Add(observe); ; time.Sleep(20 * time.Millisecond) {
		_, err := connectAuth(t, in, auth)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still refused: %v", what, err)
		}
	}
}

// TestAuthExpiry: a client whose token expires is warned (token_expiring),
// sent token_expired and disconnected, and its socket is gone from the
// server; one that sends a fresh token of its sub when warned stays past
// its first exp (a control client whose token expires a second later is
// disconnected meanwhile) with the fresh token's allow patterns; a fresh
// token of another sub is refused, and that client is disconnected at its
// first exp.
func TestAuthExpiry(t *testing.T) {
	in := start(t, "--no-broker", "--auth-secret", authSecret, "--auth-expiry-warning", "3s")
	// 3 to 4 s left (exp is in whole seconds): warned at once or within a
	// second, alice refreshes with 3 s to spare
	exp := time.Now().Add(4 * time.Second)
	tok := func(sub string, exp time.Time, allow ...string) string {
		return token(t, authSecret, jwt.MapClaims{"sub": sub, "exp": exp.Unix(), "allow": allow})
	}
	clients := map[string]*servertest.Client{}
	for sub, e := range map[string]time.Time{"alice": exp, "bob": exp, "mallory": exp, "control": exp.Add(time.Second)} {
		c, err := connectAuth(t, in, tokenAuth(tok(sub, e)))
		if err != nil {
			t.Fatal(err)
		}
		clients[sub] = c
	}
	if _, err := clients["alice"].WaitFor("/", "token_expiring", observe); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	got := ack(t, clients["alice"], "/", "refresh_token", tokenAuth(tok("alice", later, "news")))
	if m, _ := got.(map[string]any); m["exp"] != float64(later.Unix()) {
		t.Fatalf("refresh: ack %v, want the new exp", got)
	}
	got = ack(t, clients["mallory"], "/", "refresh_token", tokenAuth(tok("alice", later, "*")))
	if m, _ := got.(map[string]any); m["reason"] != "subject" {
		t.Fatalf("refresh with another sub's token: ack %v", got)
	}

	got2, err := clients["bob"].WaitFor("/", "token_expired", observe)
	if err != nil {
		t.Fatal(err)
	}
	if len(got2) != 2 || got2[0].Event != "token_expiring" {
		t.Fatalf("bob received %v, want token_expiring then token_expired", got2)
	}
	for _, sub := range []string{"bob", "mallory", "control"} {
		if !clients[sub].WaitDisconnected("/", observe) {
			t.Fatalf("%s still connected after the exp of its token", sub)
		}
	}
	// alice's first exp is a second before the control's: she would be gone
	wantTrue(t, ack(t, clients["alice"], "/", "join", "news"))
	waitMetric(t, in, "siobridge_sockets 1")
	waitMetric(t, in, "siobridge_tokens_expired_total 3")
	waitMetric(t, in, `siobridge_token_refreshes_total{outcome="refused"} 1`)
	waitMetric(t, in, `siobridge_token_refreshes_total{outcome="accepted"} 1`)
}

// TestAuthExpiryOff: with --auth-disconnect-expired=false, a client whose
// token expired stays connected and is allowed nothing more.
func TestAuthExpiryOff(t *testing.T) {
	in := start(t, "--no-broker", "--auth-secret", authSecret, "--auth-disconnect-expired=false")
	c, err := connectAuth(t, in, tokenAuth(token(t, authSecret, jwt.MapClaims{"sub": "u", "allow": []string{"r"}, "exp": time.Now().Add(time.Second).Unix()})))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(observe); ; time.Sleep(50 * time.Millisecond) {
		if m, ok := ack(t, c, "/", "join", "r").(map[string]any); ok {
			wantRefusal(t, m, "does not allow")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired token still allows its room")
		}
	}
	if !c.IsConnected("/") || len(c.Received("/")) != 0 {
		t.Fatal("disconnected or warned with --auth-disconnect-expired=false")
	}
}

// TestAuthJWKSReload: the --auth-jwks file rewritten with a new key is
// reloaded without restart (a token of the new key connects, one of the
// removed key is refused); an invalid file is logged and counted and the
// keys stay.
func TestAuthJWKSReload(t *testing.T) {
	a, b := ecKey(t), ecKey(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, file, 0, map[string]*ecdsa.PrivateKey{"a": a})
	in := start(t, "--no-broker", "--auth-jwks", file, "--auth-jwks-interval", "50ms")
	sign := func(k *ecdsa.PrivateKey, kid string) any { return esToken(t, k, kid) }
	if _, err := connectAuth(t, in, sign(a, "a")); err != nil {
		t.Fatal(err)
	}
	writeJWKS(t, file, 1, map[string]*ecdsa.PrivateKey{"b": b})
	waitAccepted(t, in, sign(b, "b"), "the new key")
	if _, err := connectAuth(t, in, sign(a, "a")); err == nil || !strings.Contains(err.Error(), `no ES256 key with kid "a"`) {
		t.Fatalf("the removed key: %v", err)
	}

	writeFile(t, file, 2, `{"keys": [{"kty": "EC"`)
	waitMetric(t, in, `siobridge_jwks_reloads_total{outcome="error"} 1`)
	if !strings.Contains(in.log.String(), "reload refused") {
		t.Fatalf("invalid JWKS not logged:\n%s", in.log.String())
	}
	if _, err := connectAuth(t, in, sign(b, "b")); err != nil {
		t.Fatalf("after an invalid file: %v", err)
	}

}

// TestAuthJWKSSighup: with --auth-jwks-interval 0 the file is not checked,
// and SIGHUP reloads it.
func TestAuthJWKSSighup(t *testing.T) {
	a, b := ecKey(t), ecKey(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, file, 0, map[string]*ecdsa.PrivateKey{"a": a})
	in := start(t, "--no-broker", "--auth-jwks", file, "--auth-jwks-interval", "0")
	writeJWKS(t, file, 1, map[string]*ecdsa.PrivateKey{"b": b})
	// sioserver handles SIGHUP from before its banner (start waits for
	// it) until it stops: the signal does not end the test process
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitAccepted(t, in, esToken(t, b, "b"), "the key of the file read on SIGHUP")
	if !strings.Contains(in.log.String(), "why=SIGHUP") {
		t.Fatalf("reload not logged:\n%s", in.log.String())
	}
}
