package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server/parser"
	"github.com/siobridge/siobridge/server/servertest"
)

// TestAdminFlag: --admin serves the Admin UI's build at /admin/ and its
// namespace /admin for that user and password only; without the flag,
// neither exists.
func TestAdminFlag(t *testing.T) {
	in := start(t, "--no-broker", "--admin", "root:s3cret")
	resp, body := get(t, in.url+"/admin/")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<title>Socket.IO Admin UI</title>")) {
		t.Fatalf("GET /admin/: %d %.200s", resp.StatusCode, body)
	}
	c, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/admin", map[string]string{"username": "root", "password": "wrong"}); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := c.Connect("/admin", map[string]string{"username": "root", "password": "s3cret"}); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	if _, err := c.WaitFor("/admin", "config", 10*time.Second); err != nil {
		t.Fatalf("no config event for the admin client: %v", err)
	}

	plain := start(t, "--no-broker")
	resp, body = get(t, plain.url+"/admin/")
	if bytes.Contains(body, []byte("Admin UI")) {
		t.Fatalf("GET /admin/ without --admin: %d, the UI", resp.StatusCode)
	}
	c2, err := servertest.Dial(plain.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Connect("/admin", map[string]string{"username": "root", "password": "s3cret"}); err == nil {
		t.Fatal("the /admin namespace exists without --admin")
	}
}

// TestParserFlag: with --parser msgpack a socket.io-msgpack-parser client
// (binary msgpack packets) connects and is answered in msgpack; a client
// of the default parser is not understood.
func TestParserFlag(t *testing.T) {
	in := start(t, "--no-broker", "--parser", "msgpack", "--allow-client-rooms")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(in.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open packet %q %v", open, err)
	}
	send := func(p *parser.Packet) {
		t.Helper()
		msgs, err := parser.MsgPack.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if !m.Binary {
				t.Fatalf("msgpack packet sent as text: %q", m.Data)
			}
			if err := ws.WriteMessage(websocket.BinaryMessage, m.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	dec := parser.MsgPack.NewDecoder()
	recv := func() *parser.Packet {
		t.Helper()
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ == websocket.TextMessage { // Engine.IO: pings
				if string(data) == "2" {
					ws.WriteMessage(websocket.TextMessage, []byte("3"))
				}
				continue
			}
			p, err := dec.Add(data, true)
			if err != nil {
				t.Fatalf("the server's answer is not msgpack: %v (% x)", err, data)
			}
			if p != nil {
				return p
			}
		}
	}
	send(&parser.Packet{Type: parser.Connect, Namespace: "/"})
	if p := recv(); p.Type != parser.Connect {
		t.Fatalf("CONNECT answered with %+v", p)
	}
	send(&parser.Packet{Type: parser.Event, Namespace: "/", ID: 7, HasID: true, Data: []byte(`["join","news"]`)})
	if p := recv(); p.Type != parser.Ack || p.ID != 7 || string(p.Data) != "[true]" {
		t.Fatalf("join answered with %+v (%s)", p, p.Data)
	}

	// a JSON client: its text CONNECT is not a msgpack packet
	c, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/", nil); err == nil {
		t.Fatal("a JSON client connected to a msgpack server")
	}
}

// TestFeatureFlagErrors: bad values of --parser, --admin and --admin-mode
// are refused with a one-line reason.
func TestFeatureFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--parser", "xml"}, "--parser"},
		{[]string{"--admin", "nopassword"}, "--admin wants USER:PASSWORD"},
		{[]string{"--admin", ":p"}, "--admin wants USER:PASSWORD"},
		{[]string{"--admin-mode", "debug"}, "--admin-mode"},
		{[]string{"--recovery-store", "disk"}, "--recovery-store"},
		{[]string{"--recovery-store", "stream", "--recovery", "1m"}, "needs --recovery DURATION and --dialect node-streams"},
		{[]string{"--recovery-store", "jetstream", "--recovery", "1m"}, "needs --recovery DURATION and --url nats://"},
		{[]string{"--recovery-store", "jetstream", "--url", "redis://127.0.0.1:6379/0", "--recovery", "1m"}, "needs --recovery DURATION and --url nats://"},
		{[]string{"--auth-secret", "short"}, "--auth-secret"},
		{[]string{"--auth-secret", "0123456789abcdef0123456789abcdef", "--auth-jwks", "f.json"}, "exclude each other"},
		{[]string{"--auth-jwks", "no-such-file.json"}, "--auth-jwks"},
		{[]string{"--auth-expiry-warning", "-1s"}, "negative"},
		{[]string{"--auth-jwks-interval", "-1s"}, "negative"},
	} {
		var out, errb bytes.Buffer
		code := run(t.Context(), c.args, func(string) string { return "" }, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errb.String())
		}
	}
}

// token signs claims with secret (HS256).
func token(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthSecret: with --auth-secret, a client needs a valid token; it is
// refused with a message saying what is wrong, joins the rooms of its
// token at connect, and may join and publish to the rooms its allow
// patterns match only (without --allow-client-rooms / -publish).
func TestAuthSecret(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-test"
	in := start(t, "--no-broker", "--auth-secret", secret)
	exp := time.Now().Add(time.Hour).Unix()
	connect := func(auth any) (*servertest.Client, error) {
		c, err := servertest.Dial(in.url, servertest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c, c.Connect("/", auth)
	}
	for _, bad := range []struct {
		auth any
		want string
	}{
		{nil, "missing token"},
		{map[string]string{"token": token(t, secret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()})}, "expired token"},
		{map[string]string{"token": token(t, "another-secret-another-secret-xx", jwt.MapClaims{"sub": "u", "exp": exp})}, "invalid token"},
	} {
		_, err := connect(bad.auth)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("auth %v: %v, want a refusal with %q", bad.auth, err, bad.want)
		}
	}
	reader, err := connect(map[string]string{"token": token(t, secret, jwt.MapClaims{"sub": "reader", "rooms": []string{"chat-1"}, "exp": exp})})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := connect(map[string]string{"token": token(t, secret, jwt.MapClaims{"sub": "writer", "allow": []string{"chat-*"}, "exp": exp})})
	if err != nil {
		t.Fatal(err)
	}
	wantTrue(t, ack(t, writer, "/", "join", "chat-2"))
	wantRefusal(t, ack(t, writer, "/", "join", "news"), "does not allow")
	wantRefusal(t, ack(t, reader, "/", "join", "chat-1b"), "does not allow") // no allow claim
	wantRefusal(t, ack(t, writer, "/", "publish", "news", "ev", 1), "does not allow")
	wantTrue(t, ack(t, writer, "/", "publish", "chat-1", "ev", "hello")) // not a member: allow decides
	got, err := reader.WaitFor("/", "ev", 10*time.Second)
	if err != nil {
		t.Fatalf("the member of chat-1 (joined from its token) got nothing: %v", err)
	}
	if a := got[len(got)-1].Args; len(a) != 1 || a[0] != "hello" {
		t.Fatalf("ev %v", a)
	}
}

// TestMetricsEndpoint: GET /metrics is Prometheus text with the server's
// clients, sockets and events.
func TestMetricsEndpoint(t *testing.T) {
	in := start(t, "--no-broker")
	c := dial(t, in, "/")
	ack(t, c, "/", "join", "news") // refused without --allow-client-rooms, but an event in
	resp, body := get(t, in.url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{`siobridge_clients{transport="websocket"} 1`, "siobridge_sockets 1", "siobridge_events_received_total 1"} {
		if !bytes.Contains(body, []byte(want+"\n")) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
}

// jwksFile writes a JWKS file with one ES256 public key and returns its
// path.
func jwksFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, 0, map[string]*ecdsa.PrivateKey{"k1": ecKey(t)})
	return path
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeJWKS writes the public keys of keys (by kid) to path, its
// modification time moved by step minutes so that each rewrite is seen
// as a change whatever the file system's time resolution.
func writeJWKS(t *testing.T, path string, step int, keys map[string]*ecdsa.PrivateKey) {
	t.Helper()
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	var jwks []string
	for kid, k := range keys {
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		jwks = append(jwks, fmt.Sprintf(`{"kty":"EC","crv":"P-256","alg":"ES256","kid":%q,"x":%q,"y":%q}`, kid, b64(pub[1:33]), b64(pub[33:])))
	}
	writeFile(t, path, step, `{"keys":[`+strings.Join(jwks, ",")+`]}`)
}

// writeFile replaces path with content (testenv.ReplaceFile), its
// modification time moved by step minutes.
func writeFile(t *testing.T, path string, step int, content string) {
	testenv.ReplaceFile(t, path, []byte(content), time.Now().Add(time.Duration(step)*time.Minute))
}

// TestRecoveryFlag: with --recovery a client cut off comes back with its
// id and the events published to its room meanwhile; without it, the
// CONNECT reply has no pid (recovery off).
func TestRecoveryFlag(t *testing.T) {
	in := start(t, "--no-broker", "--allow-client-rooms", "--allow-client-publish", "--recovery", "1m")
	recoverAcross(t, in, in)

	plain := start(t, "--no-broker")
	c2, err := servertest.Dial(plain.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Connect("/", nil); err != nil || c2.PID("/") != "" {
		t.Fatalf("without --recovery: %s %v", c2.ConnectReply("/"), err)
	}
}

// recoverAcross: a client of first joins r and is cut off; a client of
// second publishes to r; the first comes back to second with its pid and
// last offset and gets its id back and the missed event.
func recoverAcross(t *testing.T, first, second *instance) {
	t.Helper()
	c, err := servertest.Dial(first.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	sid, pid := c.SID("/"), c.PID("/")
	if pid == "" {
		t.Fatalf("CONNECT reply %s: no pid with --recovery", c.ConnectReply("/"))
	}
	for _, ev := range [][]any{{"join", "r"}, {"publish", "r", "ev", "before"}} {
		if r, err := c.EmitWithAck("/", 5*time.Second, ev[0].(string), ev[1:]...); err != nil || len(r) != 1 || r[0] != true {
			t.Fatalf("%v: %v %v", ev, r, err)
		}
	}
	evs, err := c.WaitFor("/", "ev", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Drop()
	// a second client publishes to r while the first is away
	other, err := servertest.Dial(second.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	for _, ev := range [][]any{{"join", "r"}, {"publish", "r", "ev", "missed"}} {
		if r, err := other.EmitWithAck("/", 5*time.Second, ev[0].(string), ev[1:]...); err != nil || r[0] != true {
			t.Fatalf("%v: %v %v", ev, r, err)
		}
	}
	back, err := servertest.Dial(second.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if err := back.Connect("/", map[string]string{"pid": pid, "offset": servertest.LastOffset(evs)}); err != nil {
		t.Fatal(err)
	}
	if back.SID("/") != sid {
		t.Fatalf("came back as %s, was %s", back.SID("/"), sid)
	}
	got, err := back.WaitFor("/", "ev", 5*time.Second)
	if err != nil || len(got) != 1 || got[0].Args[0] != "missed" {
		t.Fatalf("replay %+v %v", got, err)
	}
}

// TestRecoveryStoreStream: with --dialect node-streams and --recovery,
// two sioserver processes on one Redis keep sessions and offsets on the
// stream (the default store of that dialect): a client cut off from the
// first recovers on the second.
func TestRecoveryStoreStream(t *testing.T) {
	rs := testenv.StartRedis(t)
	args := []string{"--url", "redis://" + rs.Addr, "--dialect", "node-streams", "--channel", "rec", "--allow-client-rooms",
		"--allow-client-publish", "--recovery", "1m"}
	a, b := start(t, args...), start(t, args...)
	recoverAcross(t, a, b)
}

// TestRecoveryStoreJetStream: with --recovery-store jetstream, two
// sioserver processes on one NATS server with JetStream act as one for
// recovery: a client cut off from the first recovers on the second.
func TestRecoveryStoreJetStream(t *testing.T) {
	nats := testenv.StartNATS(t, "-js", "-sd", t.TempDir())
	args := []string{"--url", "nats://" + nats.Addr, "--allow-client-rooms", "--allow-client-publish",
		"--recovery", "1m", "--recovery-store", "jetstream"}
	a, b := start(t, args...), start(t, args...)
	recoverAcross(t, a, b)
}
