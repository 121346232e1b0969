package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	natsbus "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
)

// emitNews emits headline "hello" to room news of the python dialect's
// default channel through the NATS server at url, as sioemit does.
func emitNews(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bus, err := natsbus.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := emitter.New(bus, python.New(python.Options{})).To(PageRoom).Emit(ctx, "headline", "hello"); err != nil {
		t.Fatal(err)
	}
}

// wantNews waits for the headline of emitNews on c.
func wantNews(t *testing.T, in *instance, url string) {
	t.Helper()
	c := dial(t, in, "/")
	// client rooms are allowed by default with the embedded broker
	wantTrue(t, ack(t, c, "/", "join", PageRoom))
	emitNews(t, url)
	got, err := c.WaitFor("/", "headline", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1]; !reflect.DeepEqual(last.Args, []any{"hello"}) {
		t.Fatalf("headline %#v", last.Args)
	}
}

// Without --url, sioserver starts an embedded NATS server, uses it as its
// bus and prints the page's URL and the sioemit command that reaches it;
// a worker's emit through that server reaches the page's room. The NATS
// server stops with sioserver.
func TestEmbeddedNATS(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	in := start(t, "--embedded-nats", addr)
	if !strings.Contains(in.log.String(), "embedded NATS server started") {
		t.Fatalf("log:\n%s", in.log.String())
	}
	wantNews(t, in, "nats://"+addr)
	out := in.out.String()
	wantHint := "go run ./cmd/sioemit --url nats://" + addr + " --to news headline '\"hello\"'"
	if !strings.Contains(out, "sioserver: open "+in.url+"/\n") || !strings.Contains(out, wantHint+"\n") {
		t.Fatalf("stdout %q, want the page URL and %q", out, wantHint)
	}
	if code := in.stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the embedded NATS server still listens after sioserver stopped")
	}
}

// nats-server's own logs go through sioserver's slog logger: its notices
// at debug level, nothing in its own format; a non-loopback address is
// warned about.
func TestEmbeddedNATSLogs(t *testing.T) {
	in := start(t, "--embedded-nats", "0.0.0.0:0", "--log-level", "debug")
	if out := in.out.String(); !strings.Contains(out, "--url nats://127.0.0.1:") {
		t.Errorf("hint for an embedded server on every interface: %q, want it reached on loopback", out)
	}
	dial(t, in, "/")
	if code := in.stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	log := in.log.String()
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("a log line not from slog: %q", line)
		}
	}
	for _, want := range []string{`level=DEBUG msg="nats-server: Starting nats-server" component=nats-server`, "has no authentication",
		`reason="server shutting down"`} { // the client's session, closed by the shutdown
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	quiet := start(t, "--embedded-nats", "127.0.0.1:0")
	quiet.stop()
	if log := quiet.log.String(); strings.Contains(log, "nats-server:") || strings.Contains(log, "no authentication") {
		t.Errorf("nats-server's notices at the info level, or a warning on loopback:\n%s", log)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:4222": true, "[::1]:1": true, "localhost:4222": true,
		"0.0.0.0:4222": false, ":4222": false, "10.1.2.3:4222": false, "nocolon": false} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%q) = %v", addr, !want)
		}
	}
}

// Port 0 picks a free port for the embedded server; the hint names it.
func TestEmbeddedNATSFreePort(t *testing.T) {
	in := start(t, "--embedded-nats", "127.0.0.1:0")
	out := in.out.String()
	i := strings.Index(out, "--url nats://127.0.0.1:")
	if i < 0 {
		t.Fatalf("stdout %q", out)
	}
	url := strings.Fields(out[i:])[1]
	if url == "nats://127.0.0.1:0" {
		t.Fatalf("hint names port 0: %q", out)
	}
	wantNews(t, in, url)
}

// A NATS server already answering at the embedded address (as on the
// developers' and CI machines) is used, and the log says so; it keeps
// running after sioserver stops.
func TestEmbeddedAddressHasNATS(t *testing.T) {
	p := testenv.StartNATS(t)
	in := start(t, "--embedded-nats", p.Addr)
	if log := in.log.String(); !strings.Contains(log, "already answers") || strings.Contains(log, "embedded NATS server started") {
		t.Fatalf("log:\n%s", log)
	}
	wantNews(t, in, "nats://"+p.Addr)
	if code := in.stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if err := testenv.WaitPort(p.Addr, 5*time.Second); err != nil {
		t.Fatalf("the running NATS server was stopped: %v", err)
	}
}

// Another program on the embedded address: exit 2 with a one-line reason,
// whether it greets with something else or says nothing.
func TestEmbeddedAddressHeld(t *testing.T) {
	for name, greeting := range map[string]string{"http": "HTTP/1.1 400 Bad Request\r\n\r\n", "silent": ""} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan struct{})
			go func() {
				defer close(accepted)
				var conns []net.Conn
				for {
					c, err := ln.Accept()
					if err != nil {
						break
					}
					c.Write([]byte(greeting))
					conns = append(conns, c) // held open: the probe must not wait for EOF
				}
				for _, c := range conns {
					c.Close()
				}
			}()
			defer func() { ln.Close(); <-accepted }()
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, []string{"--addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--embedded-nats", ln.Addr().String()},
				func(string) string { return "" }, io.Discard, &stderr)
			msg := stderr.String()
			if code != exitUsage || !strings.HasPrefix(msg, "sioserver: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "not a NATS server") {
				t.Fatalf("exit %d, stderr %q; want 2 and one line", code, msg)
			}
		})
	}
}

// Flags that exclude each other, and bad values of the new flags.
func TestGatewayFlagErrors(t *testing.T) {
	for _, c := range [][]string{
		{"--no-broker", "--url", "nats://127.0.0.1:4222"},
		{"--url", "nats://127.0.0.1:4222", "--embedded-nats", "127.0.0.1:4223"},
		{"--no-broker", "--embedded-nats", "127.0.0.1:4223"},
		{"--embedded-nats", "nocolon"},
		{"--shutdown-timeout", "0s"},
		{"--shutdown-timeout", "soon"},
		{"--log-level", "loud"},
		{"--recovery", "-1s"},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), c, func(string) string { return "" }, io.Discard, &errb)
		if msg := errb.String(); code != exitUsage || !strings.HasPrefix(msg, "sioserver: ") || strings.Count(msg, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", c, code, msg)
		}
	}
	var errb bytes.Buffer
	env := map[string]string{"SIOSERVER_SHUTDOWN_TIMEOUT": "soon"}
	if code := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), "SIOSERVER_SHUTDOWN_TIMEOUT") {
		t.Errorf("bad variable: exit %d, stderr %q", code, errb.String())
	}
}

// Every flag but --version is also read from SIOSERVER_<NAME>; a flag
// given on the command line wins over its variable.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		value string
		got   func(*options) any
		want  any
	}{
		"addr":                 {"127.0.0.1:7000", func(o *options) any { return o.addr }, "127.0.0.1:7000"},
		"url":                  {"nats://127.0.0.1:1", func(o *options) any { return o.url }, "nats://127.0.0.1:1"},
		"embedded-nats":        {"127.0.0.1:4333", func(o *options) any { return o.embeddedNATS }, "127.0.0.1:4333"},
		"no-broker":            {"true", func(o *options) any { return o.noBroker }, true},
		"dialect":              {"node", func(o *options) any { return o.dialect }, "node"},
		"channel":              {"tenant-a", func(o *options) any { return o.channel }, "tenant-a"},
		"namespace":            {"/a, /b", func(o *options) any { return o.namespaces }, []string{"/a", "/b"}},
		"cors":                 {"https://a.example,https://b.example", func(o *options) any { return o.cors }, []string{"https://a.example", "https://b.example"}},
		"static":               {dir, func(o *options) any { return o.static }, dir},
		"allow-client-rooms":   {"false", func(o *options) any { return o.rooms }, false},
		"allow-client-publish": {"1", func(o *options) any { return o.publish }, true},
		"shutdown-timeout":     {"3s", func(o *options) any { return o.shutdownTimeout }, 3 * time.Second},
		"log-level":            {"debug", func(o *options) any { return o.logLevel.String() }, "DEBUG"},
		"parser":               {"msgpack", func(o *options) any { return o.parser }, "msgpack"},
		"recovery-store":       {"memory", func(o *options) any { return o.recoveryStore }, "memory"},
		"admin":                {"root:pw", func(o *options) any { return o.admin }, "root:pw"},
		"admin-mode":           {"production", func(o *options) any { return o.adminMode }, "production"},
		"auth-secret":          {"0123456789abcdef0123456789abcdef", func(o *options) any { return o.authSecret }, "0123456789abcdef0123456789abcdef"},
		"auth-jwks":            {jwksFile(t), func(o *options) any { return o.authJWKS != "" }, true},
		"recovery":             {"2m", func(o *options) any { return o.recovery }, 2 * time.Minute},
		"sharded-mode":         {"static", func(o *options) any { return o.shardedMode }, "static"}, // with SIOSERVER_DIALECT=node-sharded
	}
	newFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if _, ok := cases[f.Name]; !ok && !noEnv[f.Name] {
			t.Errorf("flag --%s: no case here (every flag has its SIOSERVER_ variable)", f.Name)
		}
	})
	for name, c := range cases {
		env := map[string]string{envName(name): c.value}
		if name == "sharded-mode" {
			env[envName("dialect")] = "node-sharded"
		}
		o, err := parseFlags(nil, func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s=%s: %v", envName(name), c.value, err)
			continue
		}
		if got := c.got(o); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s=%s: %#v, want %#v", envName(name), c.value, got, c.want)
		}
	}
	env := map[string]string{"SIOSERVER_ADDR": "127.0.0.1:7000", "SIOSERVER_NAMESPACE": "/a"}
	o, err := parseFlags([]string{"--addr", "127.0.0.1:7001", "--namespace", "/c"}, func(k string) string { return env[k] })
	if err != nil || o.addr != "127.0.0.1:7001" || !slices.Equal(o.namespaces, []string{"/c"}) {
		t.Fatalf("flags over variables: %+v, %v", o, err)
	}
	if envName("allow-client-rooms") != "SIOSERVER_ALLOW_CLIENT_ROOMS" {
		t.Fatal(envName("allow-client-rooms"))
	}
}

// Client rooms are allowed by default with the embedded broker only.
func TestAllowClientRoomsDefault(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, true},
		{[]string{"--embedded-nats", "127.0.0.1:4999"}, nil, true},
		{[]string{"--allow-client-rooms=false"}, nil, false},
		{nil, map[string]string{"SIOSERVER_ALLOW_CLIENT_ROOMS": "false"}, false},
		{[]string{"--no-broker"}, nil, false},
		{[]string{"--url", "nats://127.0.0.1:4222"}, nil, false},
		{[]string{"--url", "nats://127.0.0.1:4222", "--allow-client-rooms"}, nil, true},
	} {
		o, err := parseFlags(c.args, func(k string) string { return c.env[k] })
		if err != nil || o.rooms != c.want {
			t.Errorf("%q %v: rooms %v (%v), want %v", c.args, c.env, o != nil && o.rooms, err, c.want)
		}
	}
}

// --version prints the build information and exits 0.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--version"}, func(string) string { return "" }, &out, &errb)
	if code != exitOK || !strings.HasPrefix(out.String(), "sioserver ") || !strings.Contains(out.String(), runtime.Version()) ||
		strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

type healthBody struct {
	Status string `json:"status"`
	Bus    *struct {
		Connected bool `json:"connected"`
	} `json:"bus"`
	Clients       int      `json:"clients"`
	UptimeSeconds *float64 `json:"uptime_seconds"`
}

func getHealth(t *testing.T, in *instance) (int, healthBody) {
	t.Helper()
	r, err := http.Get(in.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var h healthBody
	if err := json.NewDecoder(r.Body).Decode(&h); err != nil {
		t.Fatalf("GET /healthz: %d, %v", r.StatusCode, err)
	}
	if r.Header.Get("Content-Type") != "application/json" || h.UptimeSeconds == nil || *h.UptimeSeconds < 0 {
		t.Fatalf("GET /healthz: %s, %+v", r.Header.Get("Content-Type"), h)
	}
	return r.StatusCode, h
}

// waitHealth polls /healthz until ok accepts it (or fails the test).
func waitHealth(t *testing.T, in *instance, what string, ok func(int, healthBody) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, h := getHealth(t, in)
		if ok(code, h) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never showed %s: last %d %+v", what, code, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// GET /healthz without a broker: 200, bus null, the clients counted.
func TestHealthzNoBroker(t *testing.T) {
	in := start(t, "--no-broker", "--namespace", "/", "--namespace", "/chat")
	defer http.DefaultClient.CloseIdleConnections()
	code, h := getHealth(t, in)
	if code != 200 || h.Status != "ok" || h.Bus != nil || h.Clients != 0 {
		t.Fatalf("%d %+v", code, h)
	}
	dial(t, in, "/")
	dial(t, in, "/chat")
	waitHealth(t, in, "2 clients", func(code int, h healthBody) bool { return code == 200 && h.Clients == 2 })
}

// GET /healthz through a real broker outage: 200 while connected, 503
// while the broker is down, 200 again once it is back.
func TestHealthzBrokerOutage(t *testing.T) {
	for name, p := range map[string]func(*testing.T) (*testenv.Process, string){
		"nats": func(t *testing.T) (*testenv.Process, string) {
			p := testenv.StartNATS(t)
			return p, "nats://" + p.Addr
		},
		"redis": func(t *testing.T) (*testenv.Process, string) {
			p := testenv.StartRedis(t)
			return p, "redis://" + p.Addr + "/0"
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer http.DefaultClient.CloseIdleConnections()
			broker, url := p(t)
			in := start(t, "--url", url, "--channel", fmt.Sprintf("healthz-%d", time.Now().UnixNano()))
			dial(t, in, "/")
			code, h := getHealth(t, in)
			if code != 200 || h.Status != "ok" || h.Bus == nil || !h.Bus.Connected {
				t.Fatalf("connected: %d %+v", code, h)
			}
			broker.Stop()
			waitHealth(t, in, "503 bus down", func(code int, h healthBody) bool {
				return code == 503 && h.Status == "bus down" && h.Bus != nil && !h.Bus.Connected
			})
			broker.Start()
			waitHealth(t, in, "200 again", func(code int, h healthBody) bool {
				return code == 200 && h.Bus != nil && h.Bus.Connected && h.Clients == 1
			})
		})
	}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

// The page at / and the socket.io browser client it loads, served by the
// server itself; --static replaces the page but keeps the client.
func TestPage(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	in := start(t, "--no-broker", "--namespace", "/live", "--namespace", "/")
	r, page := get(t, in.url+"/")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /: %d %v", r.StatusCode, r.Header)
	}
	for _, want := range []string{`<script src="/socket.io/socket.io.min.js">`, `<script src="/app.js">`, `data-namespace="/live"`, `data-rooms="news"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %s", want)
		}
	}
	if bytes.Contains(page, []byte(`id="hint"`)) {
		t.Error("a hint to emit without a broker")
	}
	vendored, err := os.ReadFile("web/socket.io.min.js")
	if err != nil {
		t.Fatal(err)
	}
	r, client := get(t, in.url+"/socket.io/socket.io.min.js")
	if r.StatusCode != 200 || !bytes.Equal(client, vendored) || !bytes.HasPrefix(client, []byte("/*!\n * Socket.IO v4.8.1\n")) ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET /socket.io/socket.io.min.js: %d %v, %d bytes", r.StatusCode, r.Header, len(client))
	}
	for _, path := range []string{"/app.js", "/style.css", "/socket.io-client.LICENSE"} {
		if r, b := get(t, in.url+path); r.StatusCode != 200 || len(b) == 0 {
			t.Errorf("GET %s: %d", path, r.StatusCode)
		}
	}
	if r, _ := get(t, in.url+"/favicon.ico"); r.StatusCode != 204 {
		t.Errorf("GET /favicon.ico: %d", r.StatusCode)
	}
	if r, _ := get(t, in.url+"/nothing-here"); r.StatusCode != 404 {
		t.Errorf("GET /nothing-here: %d", r.StatusCode)
	}
	dial(t, in, "/live")

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>mine</h1>"), 0o600)
	st := start(t, "--no-broker", "--static", dir)
	if r, b := get(t, st.url+"/"); r.StatusCode != 200 || string(b) != "<h1>mine</h1>" {
		t.Fatalf("--static GET /: %d %q", r.StatusCode, b)
	}
	if r, b := get(t, st.url+"/socket.io/socket.io.min.js"); r.StatusCode != 200 || !bytes.Equal(b, vendored) {
		t.Fatalf("--static GET /socket.io/socket.io.min.js: %d", r.StatusCode)
	}
	if r, _ := get(t, st.url+"/app.js"); r.StatusCode != 404 {
		t.Fatalf("--static GET /app.js: %d, want the directory's 404", r.StatusCode)
	}
}

// With a broker, the page shows the sioemit command that reaches it.
func TestPageHint(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	in := start(t, "--embedded-nats", "127.0.0.1:0", "--dialect", "python-pickle", "--channel", "it's")
	_, page := get(t, in.url+"/")
	out := in.out.String()
	i := strings.Index(out, "go run ./cmd/sioemit")
	if i < 0 {
		t.Fatalf("stdout %q", out)
	}
	hint := strings.TrimSpace(out[i:])
	if !strings.Contains(hint, `--dialect python-pickle --channel 'it'\''s' --to news headline '"hello"'`) {
		t.Fatalf("hint %q", hint)
	}
	if want := `<code id="hint">` + template.HTMLEscapeString(hint) + `</code>`; !strings.Contains(string(page), want) {
		t.Fatalf("page lacks %s", want)
	}
}

// On shutdown, HTTP requests still under way after --shutdown-timeout
// are closed and sioserver exits 0.
func TestShutdownTimeout(t *testing.T) {
	in := start(t, "--no-broker", "--shutdown-timeout", "500ms")
	c, err := net.Dial("tcp", strings.TrimPrefix(in.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// a request whose header never ends: not idle, so it holds the
	// HTTP server's graceful shutdown
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, in, "up", func(code int, _ healthBody) bool { return code == 200 })
	http.DefaultClient.CloseIdleConnections()
	if code := in.stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the pending request's connection is still open after exit: %v", err)
	}
	if !strings.Contains(in.log.String(), "not drained within the shutdown timeout") {
		t.Fatalf("log:\n%s", in.log.String())
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
