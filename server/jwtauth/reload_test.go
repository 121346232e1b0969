package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server/jwtauth"
	"github.com/siobridge/siobridge/server/servertest"
)

// rewrite replaces the JWKS file with keys and moves its modification
// time by step, so that the change is seen whatever the file system's
// time resolution.
func rewrite(t *testing.T, file string, step int, doc any) {
	t.Helper()
	var b []byte
	switch d := doc.(type) {
	case string:
		b = []byte(d)
	default:
		var err error
		if b, err = json.Marshal(map[string]any{"keys": d}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.ReplaceFile(t, file, b, time.Now().Add(time.Duration(step)*time.Minute))
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwksOfA makes two keys, a JWKS file of the first (kid "a") and its
// verifier.
func jwksOfA(t *testing.T) (a, b *ecdsa.PrivateKey, file string, v *jwtauth.Verifier) {
	t.Helper()
	a, b = ecKey(t), ecKey(t)
	file = writeJWKS(t, ecJWK(&a.PublicKey, "a"))
	v, err := jwtauth.LoadJWKS(file)
	if err != nil {
		t.Fatal(err)
	}
	return a, b, file, v
}

// Watch reloads a rewritten JWKS file: a token of the new key connects, one
// of the removed key is refused, a socket connected with it stays; an
// invalid or missing file is reported once and the keys are kept.
func TestWatchJWKS(t *testing.T) {
	a, b, file, v := jwksOfA(t)
	srv := gateway(t, v)
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Watch(ctx, 20*time.Millisecond, func(err error) { reports <- err })
	}()
	defer func() { cancel(); <-done }()
	next := func(what string) error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(observe):
			t.Fatalf("%s: no reload reported", what)
			return nil
		}
	}
	tokA := sign(t, jwt.SigningMethodES256, a, claims(jwt.MapClaims{"sub": "a"}), "a")
	tokB := sign(t, jwt.SigningMethodES256, b, claims(jwt.MapClaims{"sub": "b"}), "b")
	accepted := func(tok string) *servertest.ConnectError {
		_, ce := connect(t, srv, map[string]string{"token": tok}, servertest.Options{})
		return ce
	}
	old, ce := connect(t, srv, map[string]string{"token": tokA}, servertest.Options{})
	if ce != nil {
		t.Fatal(ce)
	}

	rewrite(t, file, 1, []any{ecJWK(&b.PublicKey, "b")})
	if err := next("key b instead of a"); err != nil {
		t.Fatal(err)
	}
	if ce := accepted(tokB); ce != nil {
		t.Fatalf("the new key's token: %v", ce)
	}
	if ce := accepted(tokA); ce == nil || !strings.Contains(ce.Message, `no ES256 key with kid "a"`) {
		t.Fatalf("the removed key's token: %v", ce)
	}
	if who := ask(t, old, "whoami"); who[0] != "a" {
		t.Fatalf("the socket connected with the removed key: %v", who)
	}

	rewrite(t, file, 2, "{")
	if err := next("invalid file"); err == nil || !strings.Contains(err.Error(), "keeping the keys") {
		t.Fatalf("invalid file reported as %v", err)
	}
	if ce := accepted(tokB); ce != nil {
		t.Fatalf("after an invalid file: %v", ce)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := next("file removed"); err == nil {
		t.Fatal("a removed file reported as reloaded")
	}
	if ce := accepted(tokB); ce != nil {
		t.Fatalf("after the file was removed: %v", ce)
	}
	rewrite(t, file, 3, []any{ecJWK(&a.PublicKey, "a"), ecJWK(&b.PublicKey, "b")})
	if err := next("both keys"); err != nil {
		t.Fatal(err)
	}
	if accepted(tokA) != nil || accepted(tokB) != nil {
		t.Fatal("a token of the two keys refused")
	}
	if got := strings.Join(v.KeyIDs(), ","); got != "a,b" {
		t.Fatalf("KeyIDs %s", got)
	}
	select {
	case err := <-reports:
		t.Fatalf("a reload reported with no change of the file: %v", err)
	default:
	}
	if st := v.ReloadStats(); st != (jwtauth.ReloadStats{Reloads: 2, Failures: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

// Reload reads the file whether it changed or not; a verifier without a
// file has nothing to reload, and Watch returns at once for it.
func TestReload(t *testing.T) {
	_, b, file, v := jwksOfA(t)
	tokB := sign(t, jwt.SigningMethodES256, b, claims(nil), "b")
	rewrite(t, file, 0, []any{ecJWK(&b.PublicKey, "b")})
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tokB); err != nil {
		t.Fatal(err)
	}
	rewrite(t, file, 0, `{"keys": []}`)
	if err := v.Reload(); err == nil {
		t.Fatal("a JWKS without keys reloaded")
	}
	if _, err := v.Verify(tokB); err != nil {
		t.Fatalf("keys not kept: %v", err)
	}
	h := hs256(t)
	if err := h.Reload(); !errors.Is(err, jwtauth.ErrNoJWKSFile) {
		t.Fatalf("Reload of an HS256 verifier: %v", err)
	}
	h.Watch(context.Background(), time.Millisecond, nil) // returns
}
