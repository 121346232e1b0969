package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server/servertest"
)

const redisURL = "redis://" + testenv.RedisAddr + "/0"

// TestMain checks that run leaves no goroutine behind once it returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o600)
	cases := [][]string{
		{"--bogus"},
		{"--addr"},
		{"--addr", "nocolon"},
		{"--dialect", "cobol"},
		{"--url", "ftp://x"},
		{"--url", "::"},
		{"--namespace", "chat"},
		{"--cors", ""},
		{"--static", filepath.Join(dir, "missing")},
		{"--static", file},
		{"--allow-client-rooms=maybe"},
		{"extra"},
		{"--sharded-mode", "static"}, // the python dialect
		{"--dialect", "node", "--sharded-mode", "dynamic"},
		{"--dialect", "node-sharded", "--sharded-mode", "dynamic-public"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), c, func(string) string { return "" }, &out, &errb)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", c, code, errb.String())
		}
		if msg := errb.String(); !strings.HasPrefix(msg, "sioserver: ") || strings.Count(msg, "\n") != 1 {
			t.Errorf("%q: want a one-line reason, got %q", c, msg)
		}
	}
	// a bad SIOSERVER_URL is a bad flag too
	var errb bytes.Buffer
	if code := run(context.Background(), nil, func(k string) string {
		if k == "SIOSERVER_URL" {
			return "bogus://x"
		}
		return ""
	}, io.Discard, &errb); code != exitUsage {
		t.Errorf("bad SIOSERVER_URL: exit %d (%s)", code, errb.String())
	}
	// SIOSERVER_SHARDED_MODE is --sharded-mode, refused for other dialects too
	env := map[string]string{"SIOSERVER_DIALECT": "node-sharded", "SIOSERVER_SHARDED_MODE": "dynamic-private"}
	if o, err := parseFlags(nil, func(k string) string { return env[k] }); err != nil || o.shardedMode != "dynamic-private" {
		t.Errorf("SIOSERVER_SHARDED_MODE: %+v, %v", o, err)
	}
	env["SIOSERVER_DIALECT"] = "python"
	if _, err := parseFlags(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "node-sharded") {
		t.Errorf("SIOSERVER_SHARDED_MODE with the python dialect: %v", err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, io.Discard); code != exitOK || !strings.Contains(out.String(), "--allow-client-publish") {
		t.Errorf("-h: exit %d, %q", code, out.String())
	}
}

// instance is a sioserver started by run in the test process.
type instance struct {
	url    string
	cancel context.CancelFunc
	done   chan int
	log    *testenv.LogBuffer // stderr
	out    *testenv.LogBuffer // stdout
}

// start runs sioserver with args on a free port until the test ends.
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{url: "http://" + addr, cancel: cancel, done: make(chan int, 1), log: &testenv.LogBuffer{}, out: &testenv.LogBuffer{}}
	go func() {
		in.done <- run(ctx, append([]string{"--addr", addr}, args...), func(string) string { return "" }, in.out, in.log)
	}()
	t.Cleanup(func() {
		if code := in.stop(); code != exitOK && !t.Failed() {
			t.Errorf("sioserver exited %d", code)
		}
		if t.Failed() {
			t.Logf("sioserver log:\n%s", in.log.String())
		}
	})
	if err := testenv.WaitPort(addr, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, in.log.String())
	}
	// the banner is printed once the server serves
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(in.out.String(), "sioserver: open "); {
		if time.Now().After(deadline) {
			t.Fatalf("no banner on stdout\n%s", in.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return in
}

// stop cancels the instance and returns its exit status (once).
func (in *instance) stop() int {
	in.cancel()
	select {
	case code, ok := <-in.done:
		if ok {
			close(in.done)
			return code
		}
		return exitOK
	case <-time.After(30 * time.Second):
		return -1
	}
}

func dial(t *testing.T, in *instance, ns string) *servertest.Client {
	t.Helper()
	c, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Connect(ns, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func ack(t *testing.T, c *servertest.Client, ns, event string, args ...any) any {
	t.Helper()
	r, err := c.EmitWithAck(ns, 10*time.Second, event, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", event, args, err)
	}
	if len(r) != 1 {
		t.Fatalf("%s %v: ack %#v, want one value", event, args, r)
	}
	return r[0]
}

func wantTrue(t *testing.T, got any) {
	t.Helper()
	if got != true {
		t.Fatalf("ack %#v, want true", got)
	}
}

func wantRefusal(t *testing.T, got any, contains string) {
	t.Helper()
	m, ok := got.(map[string]any)
	if !ok || len(m) != 1 || !strings.Contains(fmt.Sprint(m["error"]), contains) {
		t.Fatalf("ack %#v, want {\"error\": \"...%s...\"}", got, contains)
	}
}

// count waits for sentinel on c and returns how many times event arrived
// before it.
func count(t *testing.T, c *servertest.Client, ns, event, sentinel string) int {
	t.Helper()
	got, err := c.WaitFor(ns, sentinel, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range got {
		if r.Event == event {
			n++
		}
	}
	return n
}

// Join, leave and publish on one server: acknowledgements, deliveries and
// refusals (nothing emitted).
func TestClientRoomsAndPublish(t *testing.T) {
	in := start(t, "--no-broker", "--namespace", "/", "--namespace", "/chat", "--allow-client-rooms", "--allow-client-publish")
	for _, ns := range []string{"/", "/chat"} {
		a, b, outsider := dial(t, in, ns), dial(t, in, ns), dial(t, in, ns)
		wantTrue(t, ack(t, a, ns, "join", "r"))
		wantTrue(t, ack(t, a, ns, "join", "r")) // idempotent
		wantTrue(t, ack(t, b, ns, "join", "r"))
		wantTrue(t, ack(t, outsider, ns, "join", "s"))

		// a member publishes: every member, sender included, once
		wantTrue(t, ack(t, a, ns, "publish", "r", "news", "hi", map[string]any{"n": 1.0}, []byte{1, 2}))
		// refused: not a member, reserved event, malformed
		wantRefusal(t, ack(t, outsider, ns, "publish", "r", "news", "intruder"), "not a member")
		wantRefusal(t, ack(t, a, ns, "publish", "r", "disconnect"), "reserved")
		wantRefusal(t, ack(t, a, ns, "publish", "r"), "needs")
		wantRefusal(t, ack(t, a, ns, "publish", 5, "news"), "room must be a string")
		wantTrue(t, ack(t, b, ns, "publish", "r", "end"))
		for name, c := range map[string]*servertest.Client{"a": a, "b": b} {
			got, err := c.WaitFor(ns, "end", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var news [][]any
			for _, r := range got {
				if r.Event == "news" {
					news = append(news, r.Args)
				}
			}
			want := [][]any{{"hi", map[string]any{"n": 1.0}, []byte{1, 2}}}
			if !reflect.DeepEqual(news, want) {
				t.Fatalf("%s %s: news %#v, want %#v", ns, name, news, want)
			}
		}
		wantTrue(t, ack(t, outsider, ns, "publish", "s", "end"))
		if n := count(t, outsider, ns, "end", "end"); n != 1 {
			t.Fatalf("outsider: %d", n)
		}
		if got := outsider.Received(ns); len(got) != 0 {
			t.Fatalf("outsider received %#v", got)
		}

		// leave: no more deliveries; publishing there is refused
		wantTrue(t, ack(t, b, ns, "leave", "r"))
		wantRefusal(t, ack(t, b, ns, "publish", "r", "news", "gone"), "not a member")
		wantTrue(t, ack(t, a, ns, "publish", "r", "after"))
		wantTrue(t, ack(t, a, ns, "join", "t"))
		wantTrue(t, ack(t, b, ns, "join", "t"))
		wantTrue(t, ack(t, a, ns, "publish", "t", "end2"))
		if n := count(t, b, ns, "after", "end2"); n != 0 {
			t.Fatalf("%s: b received %d events of a room it left", ns, n)
		}

		// join refusals
		wantRefusal(t, ack(t, a, ns, "join", ""), "non-empty string")
		wantRefusal(t, ack(t, a, ns, "join", 7), "non-empty string")
		wantRefusal(t, ack(t, a, ns, "join"), "needs a room")
		wantRefusal(t, ack(t, a, ns, "join", strings.Repeat("x", MaxRoomBytes+1)), "bytes at most")
		wantRefusal(t, ack(t, outsider, ns, "join", b.SID(ns)), "socket id")
		wantRefusal(t, ack(t, a, ns, "leave", a.SID(ns)), "socket id")
	}
}

// A client's rooms are bounded: MaxClientRooms, then refusals.
func TestClientRoomsBound(t *testing.T) {
	in := start(t, "--no-broker", "--allow-client-rooms")
	c := dial(t, in, "/")
	for i := range MaxClientRooms {
		wantTrue(t, ack(t, c, "/", "join", fmt.Sprint("room-", i)))
	}
	wantRefusal(t, ack(t, c, "/", "join", "one-more"), "rooms at most")
	wantTrue(t, ack(t, c, "/", "join", "room-0")) // already in: fine
	wantTrue(t, ack(t, c, "/", "leave", "room-0"))
	wantTrue(t, ack(t, c, "/", "join", "one-more"))
}

// Without the flags, join, leave and publish are refused and nothing is
// emitted.
func TestClientOperationsNotAllowed(t *testing.T) {
	in := start(t, "--no-broker")
	c := dial(t, in, "/")
	wantRefusal(t, ack(t, c, "/", "join", "r"), "--allow-client-rooms")
	wantRefusal(t, ack(t, c, "/", "leave", "r"), "--allow-client-rooms")
	wantRefusal(t, ack(t, c, "/", "publish", c.SID("/"), "news", 1), "--allow-client-publish")
	if got := c.Received("/"); len(got) != 0 {
		t.Fatalf("received %#v", got)
	}
	// namespaces not served are refused
	c2, err := servertest.Dial(in.url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Connect("/other", nil); err == nil {
		t.Fatal("connected to a namespace not served")
	}
}

// --static serves files at /, Socket.IO stays at /socket.io/.
func TestStatic(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o600)
	in := start(t, "--no-broker", "--static", dir)
	defer http.DefaultClient.CloseIdleConnections()
	r, err := http.Get(in.url + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(b) != "<h1>hi</h1>" {
		t.Fatalf("GET /index.html: %d %q", r.StatusCode, b)
	}
	dial(t, in, "/")
}

// --cors: the listed origin is accepted, another refused.
func TestCORS(t *testing.T) {
	in := start(t, "--no-broker", "--cors", "https://app.example")
	defer http.DefaultClient.CloseIdleConnections()
	get := func(origin string) int {
		req, _ := http.NewRequest("GET", in.url+"/socket.io/?EIO=4&transport=polling", nil)
		req.Header.Set("Origin", origin)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := get("https://app.example"); code != 200 {
		t.Fatalf("listed origin: %d", code)
	}
	if code := get("https://evil.example"); code != 400 {
		t.Fatalf("other origin: %d", code)
	}
}

// Two sioserver processes on one real Redis form one cluster: a client of
// each in room r; a publish from one reaches both exactly once.
func TestTwoInstancesOnRedis(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	for _, dialect := range []string{"python", "python-pickle", "node", "node-streams"} {
		t.Run(dialect, func(t *testing.T) { twoInstances(t, redisURL, dialect) })
	}
}

// Two sioserver --dialect node-sharded processes on a 3-master Redis
// Cluster (redis+cluster://): each subscribes to room r's channel when its
// client joins, and a publish from one reaches both exactly once; with
// --sharded-mode static, neither subscribes to r's channel and the
// publishes go through the main channel.
func TestTwoInstancesOnRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	t.Run("dynamic", func(t *testing.T) {
		twoInstancesThen(t, c.URL(), "node-sharded", func(channel string) {
			waitShardSub(t, c.URL(), channel+"#/#r#", 2)
		})
	})
	t.Run("static", func(t *testing.T) {
		var room string
		twoInstancesThen(t, c.URL(), "node-sharded", func(channel string) {
			waitShardSub(t, c.URL(), channel+"#/#", 2)
			room = channel + "#/#r#"
		}, "--sharded-mode", "static")
		waitShardSub(t, c.URL(), room, 0) // after the exchange, the processes still up
	})
}

// The same on RabbitMQ and NATS (python dialect; the node dialect needs
// Redis).
func TestTwoInstancesOnRabbitMQAndNATS(t *testing.T) {
	t.Run("amqp", func(t *testing.T) {
		testenv.Need(t, "rabbitmq", testenv.AMQPAddr)
		twoInstances(t, "amqp://guest:guest@"+testenv.AMQPAddr+"/", "python")
	})
	t.Run("nats", func(t *testing.T) {
		testenv.Need(t, "nats", testenv.NATSAddr)
		twoInstances(t, "nats://"+testenv.NATSAddr, "python")
	})
}

func twoInstances(t *testing.T, url, dialect string) { twoInstancesThen(t, url, dialect, nil) }

// twoInstancesThen is twoInstances, calling joined(channel) once both
// clients joined room r (to wait for what a dialect subscribes per room);
// extra flags are added to both.
func twoInstancesThen(t *testing.T, url, dialect string, joined func(channel string), extra ...string) {
	channel := fmt.Sprintf("sioserver-test-%d", time.Now().UnixNano())
	flags := append([]string{"--url", url, "--dialect", dialect, "--channel", channel, "--allow-client-rooms", "--allow-client-publish"}, extra...)
	a, b := dial(t, start(t, flags...), "/"), dial(t, start(t, flags...), "/")
	wantTrue(t, ack(t, a, "/", "join", "r"))
	wantTrue(t, ack(t, b, "/", "join", "r"))
	if joined != nil {
		joined(channel)
	}
	wantTrue(t, ack(t, a, "/", "publish", "r", "hello", "from a"))
	wantTrue(t, ack(t, b, "/", "publish", "r", "hello", "from b"))
	// Each client waits for a sentinel of the other node: it comes through
	// the broker after everything published before it, echoes included.
	wantTrue(t, ack(t, a, "/", "publish", "r", "end-a"))
	gotB, err := b.WaitFor("/", "end-a", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantTrue(t, ack(t, b, "/", "publish", "r", "end-b"))
	gotA, err := a.WaitFor("/", "end-b", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]servertest.Received{"a": gotA, "b": gotB} {
		var hellos []string
		for _, r := range got {
			if r.Event == "hello" {
				hellos = append(hellos, fmt.Sprint(r.Args...))
			}
		}
		// each once; no order between the nodes (a node serves its own
		// clients before the broker has the other node's broadcast)
		sort.Strings(hellos)
		if fmt.Sprint(hellos) != "[from a from b]" {
			t.Fatalf("client %s received hellos %q, want each once", name, hellos)
		}
	}
}

// A broker that cannot be reached: exit 1 with the reason logged.
func TestBrokerUnreachable(t *testing.T) {
	port := testenv.FreePort(t)
	var errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"--addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--url", fmt.Sprintf("redis://127.0.0.1:%d/0", port)},
		func(string) string { return "" }, io.Discard, &errb)
	if code != exitFailed || !strings.Contains(errb.String(), "cannot reach the broker") {
		t.Fatalf("exit %d, log %q", code, errb.String())
	}
}

// Cancelling run's context (SIGINT/SIGTERM in main) closes the clients
// and exits 0.
func TestGracefulShutdown(t *testing.T) {
	in := start(t, "--no-broker")
	c := dial(t, in, "/")
	if code := in.stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !c.WaitDisconnected("/", 10*time.Second) {
		t.Fatal("client still connected after shutdown")
	}
	if !strings.Contains(in.log.String(), "sioserver: stopped") {
		t.Fatalf("log: %s", in.log.String())
	}
}

// A signal while connecting to the broker or joining the cluster (the
// context ends): exit 0, no client was served yet.
func TestInterruptedWhileStarting(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var errb bytes.Buffer
	code := run(ctx, []string{"--addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--url", redisURL},
		func(string) string { return "" }, io.Discard, &errb)
	if code != exitOK || !strings.Contains(errb.String(), "stopped while") {
		t.Fatalf("exit %d, log %q", code, errb.String())
	}
}

// The built command exits 0 on SIGTERM and SIGINT, its client closed.
func TestSignals(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sioserver")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			cmd := exec.Command(bin, "--addr", addr, "--no-broker")
			var errb testenv.LogBuffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			if err := testenv.WaitPort(addr, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			c, err := servertest.Dial("http://"+addr, servertest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Connect("/", nil); err != nil {
				t.Fatal(err)
			}
			cmd.Process.Signal(sig)
			if !c.WaitDisconnected("/", 10*time.Second) {
				t.Fatal("client still connected")
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit: %v\n%s", err, errb.String())
			}
		})
	}
}
