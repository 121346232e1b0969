package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/jwtauth"
	"github.com/siobridge/siobridge/server/servertest"
)

var secret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func hs256(t *testing.T, opts ...jwtauth.Option) *jwtauth.Verifier {
	t.Helper()
	v, err := jwtauth.NewHS256(secret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gateway is a server whose "/" namespace requires a token (OnConnect),
// with handlers that tell the socket's claims and check Allowed.
func gateway(t *testing.T, v *jwtauth.Verifier) *server.Server {
	srv := server.New()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	srv.Of("/").OnConnect(v.OnConnect(nil))
	srv.On("/", "whoami", func(s *server.Socket) (string, []string) {
		c := jwtauth.Claims(s)
		if c == nil {
			return "", nil
		}
		return c.Subject, s.Rooms()
	})
	srv.On("/", "may", func(s *server.Socket, room string) bool { return jwtauth.Allowed(s, room) })
	return srv
}

func dial(t *testing.T, srv *server.Server, o servertest.Options) *servertest.Client {
	t.Helper()
	c, err := servertest.New(srv, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// connect connects to "/" with auth and returns the refusal, if any.
func connect(t *testing.T, srv *server.Server, auth any, o servertest.Options) (*servertest.Client, *servertest.ConnectError) {
	t.Helper()
	c := dial(t, srv, o)
	err := c.Connect("/", auth)
	if err == nil {
		return c, nil
	}
	var ce *servertest.ConnectError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	return c, ce
}

func reasonOf(ce *servertest.ConnectError) string {
	var d struct{ Reason string }
	json.Unmarshal(ce.Data, &d)
	return d.Reason
}

func ask(t *testing.T, c *servertest.Client, event string, args ...any) []any {
	t.Helper()
	got, err := c.EmitWithAck("/", 5*time.Second, event, args...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A client with a valid HS256 token is connected over a real WebSocket:
// its socket carries the claims (sub), it is in the token's rooms (a
// broadcast to one of them reaches it), and Allowed follows the allow
// patterns with path.Match's rules.
func TestValidTokenConnects(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{
		"rooms": []string{"news", "user:alice"}, "allow": []string{"chat/*", "team-[ab]", "user:alice"}}), "")
	c, ce := connect(t, srv, map[string]string{"token": tok}, servertest.Options{})
	if ce != nil {
		t.Fatal(ce)
	}
	who := ask(t, c, "whoami")
	if who[0] != "alice" || !strings.Contains(strings.Join(toStrings(who[1]), ","), "news") || !strings.Contains(strings.Join(toStrings(who[1]), ","), "user:alice") {
		t.Fatalf("whoami = %v", who)
	}
	srv.Of("/").To("news").Emit("headline", "hi")
	if _, err := c.WaitFor("/", "headline", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for room, want := range map[string]bool{
		"chat/general": true, "chat": false, "chat/a/b": false, "team-a": true, "team-c": false,
		"user:alice": true, "news": false, "user:bob": false, "": false,
		"chat/" + strings.Repeat("x", jwtauth.MaxRoomBytes): false,
	} {
		if got := ask(t, c, "may", room); got[0] != want {
			t.Errorf("Allowed(%.20q) = %v, want %v", room, got[0], want)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// Missing, invalid and expired tokens are refused with CONNECT_ERROR
// whose message and data say which; hostile tokens (alg none, another
// secret, a forged payload, oversized) among them.
func TestRefusals(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	good := sign(t, jwt.SigningMethodHS256, secret, claims(nil), "")
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root","exp":9999999999,"allow":["*"]}`)) + "." + parts[2]
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), "")
	cases := []struct {
		name   string
		auth   any
		reason string
		msg    string
	}{
		{"no auth", nil, "missing", "missing token"},
		{"empty auth", map[string]any{}, "missing", "missing token"},
		{"empty token", map[string]any{"token": ""}, "missing", "missing token"},
		{"expired", map[string]any{"token": sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), "")}, "expired", "expired token"},
		{"other secret", map[string]any{"token": sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("k", 32)), claims(nil), "")}, "invalid", "invalid token: bad signature"},
		{"forged payload", map[string]any{"token": forged}, "invalid", "invalid token: bad signature"},
		{"alg none", map[string]any{"token": none}, "invalid", "invalid token: bad signature or algorithm: signing method none is invalid"},
		{"alg HS384", map[string]any{"token": sign(t, jwt.SigningMethodHS384, secret, claims(nil), "")}, "invalid", "invalid token: bad signature or algorithm: signing method HS384 is invalid"},
		{"no exp", map[string]any{"token": sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"exp": nil}), "")}, "invalid", "invalid token: missing a required claim"},
		{"not yet valid", map[string]any{"token": sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()}), "")}, "invalid", "invalid token: not valid yet"},
		{"bad pattern", map[string]any{"token": sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"allow": []string{"[a-"}}), "")}, "invalid", "invalid token: malformed allow pattern"},
		{"rooms not a list", map[string]any{"token": sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"rooms": 7}), "")}, "invalid", "invalid token: malformed"},
		{"garbage", map[string]any{"token": "not.a.jwt"}, "invalid", "invalid token: malformed"},
		{"token not a string", map[string]any{"token": 42}, "invalid", `invalid token: "token" is not a string`},
		{"oversized", map[string]any{"token": good + strings.Repeat("A", jwtauth.DefaultMaxTokenBytes)}, "invalid", "invalid token: longer than"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			_, ce := connect(t, srv, cs.auth, servertest.Options{})
			if ce == nil {
				t.Fatal("connected")
			}
			if !strings.HasPrefix(ce.Message, cs.msg) || reasonOf(ce) != cs.reason {
				t.Fatalf("refused with %q %s, want %q... reason %q", ce.Message, ce.Data, cs.msg, cs.reason)
			}
		})
	}
}

// exp is optional with WithoutExpiry, and an expired token is still refused.
func TestWithoutExpiry(t *testing.T) {
	v := hs256(t, jwtauth.WithoutExpiry())
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"exp": nil}), "")); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}), ""))
	if !errors.Is(err, jwtauth.ErrExpiredToken) {
		t.Fatalf("expired token: %v", err)
	}
}

// The handshake's Authorization: Bearer header carries the token when the
// auth payload has none; the auth payload wins when both are present.
func TestBearerHeader(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	bob := sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": "bob"}), "")
	carol := sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": "carol"}), "")
	c, ce := connect(t, srv, nil, servertest.Options{Header: http.Header{"Authorization": {"bearer " + bob}}})
	if ce != nil {
		t.Fatal(ce)
	}
	if who := ask(t, c, "whoami"); who[0] != "bob" {
		t.Fatalf("whoami = %v", who)
	}
	c, ce = connect(t, srv, map[string]string{"token": carol}, servertest.Options{Header: http.Header{"Authorization": {"Bearer " + bob}}})
	if ce != nil {
		t.Fatal(ce)
	}
	if who := ask(t, c, "whoami"); who[0] != "carol" {
		t.Fatalf("whoami = %v", who)
	}
	if _, ce := connect(t, srv, nil, servertest.Options{Header: http.Header{"Authorization": {"Basic " + bob}}}); ce == nil || reasonOf(ce) != "missing" {
		t.Fatalf("Basic credentials: %v", ce)
	}
}

// Middleware refuses and attaches claims without joining rooms (the
// socket is not in its namespace yet); JoinRooms in the connect handler
// does. Sockets without claims are allowed nothing.
func TestMiddlewareAndJoinRooms(t *testing.T) {
	v := hs256(t)
	srv := gateway(t, v)
	srv.Of("/mw").Use(v.Middleware())
	srv.Of("/mw").OnConnect(func(s *server.Socket, _ json.RawMessage) error {
		jwtauth.JoinRooms(s)
		return nil
	})
	srv.Of("/open").On("may", func(s *server.Socket, room string) bool { return jwtauth.Allowed(s, room) })
	tok := sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"rooms": []string{"r1"}, "allow": []string{"*"}}), "")
	c := dial(t, srv, servertest.Options{})
	if err := c.Connect("/mw", nil); err == nil {
		t.Fatal("Middleware let a client without token in")
	}
	if err := c.Connect("/mw", map[string]string{"token": tok}); err != nil {
		t.Fatal(err)
	}
	srv.Of("/mw").To("r1").Emit("in-r1")
	if _, err := c.WaitFor("/mw", "in-r1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect("/open", map[string]string{"token": tok}); err != nil {
		t.Fatal(err)
	}
	got, err := c.EmitWithAck("/open", 5*time.Second, "may", "anything")
	if err != nil || got[0] != false {
		t.Fatalf("Allowed without claims: %v %v", got, err)
	}
}

// A ClaimSet expires with its exp, with the verifier's leeway: Allowed
// is false from then on.
func TestClaimsExpire(t *testing.T) {
	v := hs256(t, jwtauth.WithLeeway(time.Minute))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"exp": exp.Unix()}), ""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Expired(exp) || c.Expired(exp.Add(time.Minute)) || !c.Expired(exp.Add(time.Minute+time.Second)) {
		t.Fatal("Expired ignores exp or the leeway")
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := jwtauth.NewHS256([]byte("short")); err == nil {
		t.Fatal("accepted a 5-byte secret")
	}
}

func TestIssuerAudience(t *testing.T) {
	v := hs256(t, jwtauth.WithIssuer("auth.example"), jwtauth.WithAudience("gateway"))
	ok := sign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"iss": "auth.example", "aud": "gateway"}), "")
	if _, err := v.Verify(ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []jwt.MapClaims{{"iss": "other", "aud": "gateway"}, {"iss": "auth.example", "aud": "other"}, {"aud": "gateway"}} {
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, claims(c), "")); !errors.Is(err, jwtauth.ErrInvalidToken) {
			t.Errorf("%v: %v", c, err)
		}
	}
}

// ---------------------------------------------------------------- JWKS

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(k *rsa.PublicKey, kid string) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(k *ecdsa.PublicKey, kid string) map[string]string {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": b64(b[1:33]), "y": b64(b[33:])}
}

func writeJWKS(t *testing.T, keys ...any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// A JWKS verifier accepts RS256 and ES256 tokens of its keys, found by
// kid, over a real connection; it refuses the algorithm-confusion attack
// (an HS256 token whose secret is the RSA public key), other algorithms
// with the same keys, unknown kids, and tokens without kid when several
// keys could verify them.
func TestJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := writeJWKS(t, rsaJWK(&rsaKey.PublicKey, "r1"), rsaJWK(&rsaKey2.PublicKey, "r2"), ecJWK(&ecKey.PublicKey, "e1"),
		map[string]string{"kty": "oct", "kid": "h1", "k": b64(secret)},                        // skipped: a JWKS never gives HMAC secrets
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}) // skipped: encryption
	v, err := jwtauth.LoadJWKS(file)
	if err != nil {
		t.Fatal(err)
	}
	srv := gateway(t, v)
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	for _, ok := range []struct{ name, tok string }{
		{"RS256 r1", sign(t, jwt.SigningMethodRS256, rsaKey, claims(jwt.MapClaims{"sub": "r1"}), "r1")},
		{"RS256 r2", sign(t, jwt.SigningMethodRS256, rsaKey2, claims(jwt.MapClaims{"sub": "r2"}), "r2")},
		{"ES256 e1", sign(t, jwt.SigningMethodES256, ecKey, claims(jwt.MapClaims{"sub": "e1"}), "e1")},
		{"ES256 without kid (one EC key)", sign(t, jwt.SigningMethodES256, ecKey, claims(jwt.MapClaims{"sub": "e1"}), "")},
	} {
		c, ce := connect(t, srv, map[string]string{"token": ok.tok}, servertest.Options{})
		if ce != nil {
			t.Errorf("%s: %v", ok.name, ce)
			continue
		}
		if who := ask(t, c, "whoami"); who[0] == "" {
			t.Errorf("%s: no claims", ok.name)
		}
	}
	for _, bad := range []struct{ name, tok, msg string }{
		{"HS256 with the PEM public key as secret", sign(t, jwt.SigningMethodHS256, pemKey, claims(nil), "r1"), "signing method HS256 is invalid"},
		{"HS256 with the DER public key as secret", sign(t, jwt.SigningMethodHS256, der, claims(nil), "r1"), "signing method HS256 is invalid"},
		{"HS256 with the oct key of the set", sign(t, jwt.SigningMethodHS256, secret, claims(nil), "h1"), "signing method HS256 is invalid"},
		{"RS384 with r1", sign(t, jwt.SigningMethodRS384, rsaKey, claims(nil), "r1"), "signing method RS384 is invalid"},
		{"PS256 with r1", sign(t, jwt.SigningMethodPS256, rsaKey, claims(nil), "r1"), "signing method PS256 is invalid"},
		{"ES384", sign(t, jwt.SigningMethodES384, ec384, claims(nil), "e1"), "signing method ES384 is invalid"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), "r1"), "signing method none is invalid"},
		{"r1's token named r2", sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "r2"), "bad signature"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "r9"), `no RS256 key with kid "r9"`},
		{"EC kid for an RSA token", sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "e1"), `no RS256 key with kid "e1"`},
		{"no kid, two RSA keys", sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), ""), "no kid, and several RS256 keys"},
		{"expired", sign(t, jwt.SigningMethodES256, ecKey, claims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), "e1"), "expired token"},
	} {
		_, ce := connect(t, srv, map[string]string{"token": bad.tok}, servertest.Options{})
		if ce == nil {
			t.Errorf("%s: connected", bad.name)
		} else if !strings.Contains(ce.Message, bad.msg) {
			t.Errorf("%s: refused with %q, want %q in it", bad.name, ce.Message, bad.msg)
		}
	}
}

// Hostile or broken JWKS documents are refused with an error, never a
// panic, and at a cost bounded by their size.
func TestParseJWKSRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := ecJWK(&ecKey.PublicKey, "e1")
	offCurve := ecJWK(&ecKey.PublicKey, "e2")
	y, _ := base64.RawURLEncoding.DecodeString(offCurve["y"])
	y[31] ^= 1
	offCurve["y"] = b64(y)
	with := func(k string, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	doc := func(keys ...any) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	for name, d := range map[string]string{
		"not JSON":       "{",
		"keys not array": `{"keys": 3}`,
		"no keys":        `{"keys": []}`,
		"only oct":       doc(map[string]string{"kty": "oct", "k": "c2VjcmV0"}),
		"RSA 1024":       doc(rsaJWK(&small.PublicKey, "s")),
		"RSA e even":     doc(map[string]string{"kty": "RSA", "n": rsaJWK(&small.PublicKey, "")["n"], "e": b64([]byte{4})}),
		"bad base64":     doc(with("x", "***")),
		"short x":        doc(with("x", b64([]byte{1, 2, 3}))),
		"padded x":       doc(with("x", good["x"]+"=")),
		"off the curve":  doc(offCurve),
		"duplicate kid":  doc(good, good),
		"too large":      `{"keys": [], "pad": "` + strings.Repeat("x", jwtauth.MaxJWKSBytes) + `"}`,
	} {
		if _, err := jwtauth.ParseJWKS([]byte(d)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := jwtauth.ParseJWKS([]byte(doc(good))); err != nil {
		t.Fatalf("the good key: %v", err)
	}
	if _, err := jwtauth.LoadJWKS(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Fatal("loaded a file that does not exist")
	}
}

// Verify never panics and refuses whatever a client makes up.
func FuzzVerify(f *testing.F) {
	v, err := jwtauth.NewHS256(secret)
	if err != nil {
		f.Fatal(err)
	}
	good := sign(f, jwt.SigningMethodHS256, secret, claims(nil), "")
	for _, s := range []string{good, "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.", good[:len(good)-2], good + "x", strings.Repeat(".", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if tok == good {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if err == nil && c.Subject != "alice" {
			t.Fatalf("made-up token %q accepted", tok)
		}
	})
}
