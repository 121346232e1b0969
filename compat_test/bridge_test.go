package compat_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
)

var (
	siobridgeOnce sync.Once
	siobridgeBin  string
	siobridgeErr  error
)

// startBridge builds cmd/siobridge once and runs it with args; its JSON
// log lines are the peer's lines.
func startBridge(t *testing.T, args ...string) *peer {
	t.Helper()
	siobridgeOnce.Do(func() {
		siobridgeBin = filepath.Join(filepath.Dir(sioemitBin), "siobridge") // TestMain removes the directory
		out, err := exec.Command("go", "build", "-o", siobridgeBin, "../cmd/siobridge").CombinedOutput()
		if err != nil {
			siobridgeErr = &buildError{string(out)}
		}
	})
	if siobridgeErr != nil {
		t.Fatalf("building siobridge: %v", siobridgeErr)
	}
	argv := append([]string{"/bin/sh", "-c", `exec "$0" "$@" 2>&1`, siobridgeBin, "--log-format", "json", "--stats", "0"}, args...)
	p := startPeer(t, "siobridge", argv...)
	p.waitFor("relaying", 20*time.Second, func(l map[string]any) bool { return l["msg"] == "siobridge: relaying" })
	return p
}

type buildError struct{ out string }

func (e *buildError) Error() string { return e.out }

// stopBridge sends SIGTERM and returns the final counters line.
func stopBridge(t *testing.T, p *peer) map[string]any {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return p.waitFor("stopped", 20*time.Second, func(l map[string]any) bool { return l["msg"] == "siobridge: stopped" })
}

// pyWorker is python-socketio 5.7's write-only RedisManager (pyworker.py).
type pyWorker struct {
	p   *peer
	seq float64
}

func (w *pyWorker) do(cmd map[string]any) {
	w.p.t.Helper()
	w.seq++
	id := w.seq
	cmd["id"] = id
	w.p.send(cmd)
	w.p.waitFor("worker done", 20*time.Second, func(l map[string]any) bool { return l["type"] == "done" && l["id"] == id })
}

// countNews waits for marker v at c and returns how many "news" events
// with first argument v arrived before.
func countNews(t *testing.T, c *peer, v string) int {
	t.Helper()
	c.waitFor("marker "+v, 20*time.Second, isEventWith("marker", v))
	n := 0
	for _, l := range c.events("news") {
		if args, _ := l["args"].([]any); len(args) > 0 && args[0] == v {
			n++
		}
	}
	return n
}

// TestBridgePythonWorkerToNodeCluster: python-socketio 5.7's write-only
// manager publishes pickle on a Redis channel; siobridge relays to a
// cluster of two socket.io 4.8 servers with the Redis adapter, whose
// clients receive each emit once, lose a closed room and are
// disconnected.
func TestBridgePythonWorkerToNodeCluster(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needNode(t)
	needFlaskSocketIO(t)
	key, channel := uniq("bridge-node"), uniq("bridge-py")
	_, url1 := startNodeServer(t, key)
	_, url2 := startNodeServer(t, key)
	a, _ := nodeClient(t, url1, "r1", "/")
	b, sidB := nodeClient(t, url2, "r1", "/")
	c, sidC := nodeClient(t, url2, "r2", "/")
	bridge := startBridge(t, "--from", redisURL, "--from-dialect", "python-pickle", "--from-channel", channel,
		"--to", redisURL, "--to-dialect", "node", "--to-channel", key)
	w := startPyWorker(t, channel)
	workerScenario(t, w, a, b, c, sidB, sidC)

	stats := stopBridge(t, bridge)
	if s := stats["from_to"].(string); !strings.Contains(s, "Malformed:0") || !strings.Contains(s, "PublishErrs:0") || strings.Contains(s, "Relayed:0 ") {
		t.Fatalf("from->to counters %s", s)
	}
}

func startPyWorker(t *testing.T, channel string) *pyWorker {
	t.Helper()
	w := &pyWorker{p: startPeerWith(t, "python worker", true, "/usr/bin/python3", "python/pyworker.py", "--url", redisURL, "--channel", channel)}
	w.p.waitFor("ready", 20*time.Second, isType("ready"))
	return w
}

// workerScenario: the python worker emits to room r1 (a and b in it),
// to all but b, to c's sid, closes r1 and disconnects b; each client
// receives what it should once.
func workerScenario(t *testing.T, w *pyWorker, a, b, c *peer, sidB, sidC string) {
	t.Helper()
	clients := map[string]*peer{"a": a, "b": b, "c": c}
	expect := func(what, v string, want map[string]int) {
		t.Helper()
		w.do(map[string]any{"op": "emit", "event": "marker", "args": []any{v}})
		for name, cl := range clients {
			if n := countNews(t, cl, v); n != want[name] {
				t.Fatalf("%s: client %s received %d, want %d", what, name, n, want[name])
			}
		}
	}

	w.do(map[string]any{"op": "emit", "event": "news", "args": []any{"v1", 1, map[string]any{"$binary": "AP8="}}, "room": "r1"})
	expect("room emit", "v1", map[string]int{"a": 1, "b": 1})
	got := b.events("news")[0]["args"]
	if s := jsonString(got); s != `["v1",1,{"$binary":"AP8="}]` {
		t.Fatalf("args %s", s)
	}
	w.do(map[string]any{"op": "emit", "event": "news", "args": []any{"v2"}, "skip_sid": sidB})
	expect("emit to all but b", "v2", map[string]int{"a": 1, "c": 1})
	w.do(map[string]any{"op": "emit", "event": "news", "args": []any{"v3"}, "room": sidC})
	expect("emit to c's sid", "v3", map[string]int{"c": 1})
	w.do(map[string]any{"op": "close_room", "room": "r1"})
	w.do(map[string]any{"op": "emit", "event": "news", "args": []any{"v4"}, "room": "r1"})
	expect("emit after close_room", "v4", nil)
	w.do(map[string]any{"op": "disconnect", "sid": sidB})
	b.waitFor("disconnect", 20*time.Second, isType("disconnected"))
}

// TestBridgePythonWorkerToGoClusterOnNATS: the same worker on Redis,
// bridged to two Go servers on NATS speaking the python (JSON) dialect:
// another dialect and another broker.
func TestBridgePythonWorkerToGoClusterOnNATS(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	testenv.Need(t, "nats", testenv.NATSAddr)
	needFlaskSocketIO(t)
	natsURL := "nats://" + testenv.NATSAddr
	goChannel, channel := uniq("bridge-go"), uniq("bridge-py")
	_, url1 := goNode(t, natsURL, python.New(python.Options{Channel: goChannel}))
	_, url2 := goNode(t, natsURL, python.New(python.Options{Channel: goChannel}))
	a := connectPyClient(t, "a", url1, "r1")
	b := connectPyClient(t, "b", url2, "r1")
	c := connectPyClient(t, "c", url2, "r2")
	bridge := startBridge(t, "--from", redisURL, "--from-dialect", "python-pickle", "--from-channel", channel,
		"--to", natsURL, "--to-dialect", "python", "--to-channel", goChannel)
	workerScenario(t, startPyWorker(t, channel), a.p, b.p, c.p, b.sid, c.sid)
	if s := stopBridge(t, bridge)["from_to"].(string); !strings.Contains(s, "Malformed:0") || !strings.Contains(s, "PublishErrs:0") {
		t.Fatalf("from->to counters %s", s)
	}
}

// TestBridgeNodeEmitterToFlaskSocketIO, the reverse: an emitter of the
// node dialect (@socket.io/redis-emitter's messages) publishes on a
// socket.io key; siobridge relays to a Flask-SocketIO 5.3.2 server on a
// pickle channel, whose clients receive each emit once and are
// disconnected.
func TestBridgeNodeEmitterToFlaskSocketIO(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needFlaskSocketIO(t)
	key, channel := uniq("bridge-node"), uniq("bridge-py")
	srv := startFSIO(t, redisURL, channel)
	a, sidA := srv.client("r1")
	b, sidB := srv.client("r2")
	startBridge(t, "--from", redisURL, "--from-dialect", "node", "--from-channel", key, "--node-requests",
		"--to", redisURL, "--to-dialect", "python-pickle", "--to-channel", channel)
	em := emitter.New(openBus(t, redisURL), node.New(node.Options{Key: key}))
	defer em.Close()
	ready(t, em, "/", sidA, a) // through the bridge: the Flask server subscribed after its first client
	ready(t, em, "/", sidB, b)
	ctx := context.Background()
	expect := func(what, v string, want map[*peer]int) {
		t.Helper()
		if err := em.Emit(ctx, "marker", v); err != nil {
			t.Fatal(err)
		}
		for _, cl := range []*peer{a, b} {
			if n := countNews(t, cl, v); n != want[cl] {
				t.Fatalf("%s: received %d, want %d", what, n, want[cl])
			}
		}
	}
	if err := em.To("r1").Emit(ctx, "news", "v1", 1, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	expect("room emit", "v1", map[*peer]int{a: 1})
	if s := jsonString(a.events("news")[0]["args"]); s != `["v1",1,{"$binary":"AQI="}]` {
		t.Fatalf("args %s", s)
	}
	if err := em.Except(sidA).Emit(ctx, "news", "v2"); err != nil {
		t.Fatal(err)
	}
	expect("except a", "v2", map[*peer]int{b: 1})
	if err := em.In(sidB).DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	b.waitFor("disconnect", 20*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
}

// TestBridgeFlaskSocketIOPickleToJSON: the migration python-socketio's
// format change (pickle < 5.14, JSON after) makes impossible on one
// channel: a Flask-SocketIO 5.3.2 server on channel A and the newest
// Flask-SocketIO on channel B, bridged. Emits each way reach the other
// server's clients once; callbacks and call() cross the bridge both ways
// (python-socketio routes them by host id, which the bridge keeps);
// close_room and disconnect cross too. The old server runs on Redis, then
// on RabbitMQ (Kombu); the new one on Redis.
func TestBridgeFlaskSocketIOPickleToJSON(t *testing.T) {
	for _, b := range pyBrokers {
		t.Run("old on "+b.name, func(t *testing.T) { testBridgePickleToJSON(t, b) })
	}
}

func testBridgePickleToJSON(t *testing.T, oldBroker pyBroker) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	testenv.Need(t, oldBroker.broker, oldBroker.addr)
	chOld, chNew := uniq("bridge-old"), uniq("bridge-new")
	old := startFSIONode(t, pickleFlavor, oldBroker.pythonURL, chOld)
	cur := startFSIONode(t, jsonFlavor, redisURL, chNew)
	startBridge(t, "--from", oldBroker.goURL, "--from-dialect", "python-pickle", "--from-channel", chOld,
		"--to", redisURL, "--to-dialect", "python", "--to-channel", chNew)
	o1 := connectPyClient(t, "o1", old.url, "r")
	n1 := connectPyClient(t, "n1", cur.url, "r")
	n2 := connectPyClient(t, "n2", cur.url, "x")
	all := []*pyClient{o1, n1, n2}
	// both servers subscribe after their first client: probe until each
	// hears the other
	for _, p := range []struct {
		from *fsioNode
		to   *pyClient
	}{{old, n1}, {cur, o1}} {
		eventually(t, "probe to "+p.to.name, 20*time.Second, 300*time.Millisecond, func() bool {
			p.from.do(map[string]any{"op": "emit", "event": "probe", "to": p.to.sid})
			time.Sleep(200 * time.Millisecond)
			return len(p.to.p.events("probe")) > 0
		})
	}
	seq := 0
	send := func(from *fsioNode, cmd map[string]any, want map[*pyClient]int) {
		t.Helper()
		seq++
		v := fmt.Sprintf("v%d", seq)
		cmd["op"], cmd["event"], cmd["args"] = "emit", "news", []any{v, map[string]any{"$binary": "AQI="}}
		from.do(cmd)
		from.do(map[string]any{"op": "emit", "event": "marker", "args": []any{v}})
		for _, c := range all {
			if n := countNews(t, c.p, v); n != want[c] {
				t.Fatalf("%v: %s received %d, want %d", cmd, c.name, n, want[c])
			}
		}
	}
	send(old, map[string]any{"to": "r"}, map[*pyClient]int{o1: 1, n1: 1})
	send(cur, map[string]any{"to": "r"}, map[*pyClient]int{o1: 1, n1: 1})
	send(old, map[string]any{}, map[*pyClient]int{o1: 1, n1: 1, n2: 1})
	send(cur, map[string]any{"skip_sid": n1.sid}, map[*pyClient]int{o1: 1, n2: 1})
	if s := jsonString(n1.p.events("news")[0]["args"]); s != `["v1",{"$binary":"AQI="}]` {
		t.Fatalf("args at the new server's client %s", s)
	}

	got := old.do(map[string]any{"op": "emit_cb", "event": "ask", "args": []any{"q"}, "to": n2.sid})
	if s := jsonString(got["args"]); s != `["pong","q"]` {
		t.Fatalf("old -> new callback %s", s)
	}
	got = cur.do(map[string]any{"op": "call", "event": "ask", "args": []any{"c", 1}, "to": o1.sid})
	if s := jsonString(got["result"]); s != `["pong","c",1]` {
		t.Fatalf("new -> old call() %s", s)
	}

	old.do(map[string]any{"op": "close_room", "room": "r"})
	old.do(map[string]any{"op": "emit", "event": "marker", "args": []any{"closed"}})
	for _, c := range all {
		c.p.waitFor("marker closed", 20*time.Second, isEventWith("marker", "closed"))
	}
	send(cur, map[string]any{"to": "r"}, nil)

	cur.do(map[string]any{"op": "disconnect", "sid": o1.sid})
	o1.p.waitFor("disconnect by the new server", 20*time.Second, isType("disconnected"))
	old.do(map[string]any{"op": "disconnect", "sid": n2.sid})
	n2.p.waitFor("disconnect by the old server", 20*time.Second, isType("disconnected"))
}

// TestBridgeRedisEmitterToFlaskSocketIO: the real @socket.io/redis-emitter
// (node/emit.js) → siobridge → Flask-SocketIO 5.3.2: its room emit arrives
// once; its socketsJoin and serverSideEmit, which python-socketio 5.7
// cannot express, are counted and logged; nothing is malformed.
func TestBridgeRedisEmitterToFlaskSocketIO(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needNode(t)
	needFlaskSocketIO(t)
	key, channel := uniq("bridge-node"), uniq("bridge-py")
	srv := startFSIO(t, redisURL, channel)
	c := connectPyClient(t, "a", srv.url, "room1")
	a, sidA := c.p, c.sid
	bridge := startBridge(t, "--from", redisURL, "--from-dialect", "node", "--from-channel", key, "--node-requests",
		"--to", redisURL, "--to-dialect", "python-pickle", "--to-channel", channel)
	em := emitter.New(openBus(t, redisURL), node.New(node.Options{Key: key}))
	defer em.Close()
	ready(t, em, "/", sidA, a)
	em.Close()

	startPeer(t, "redis-emitter", "node", "node/emit.js", key)
	a.waitFor("one", 20*time.Second, isEvent("one"))
	if s := jsonString(a.events("one")[0]["args"]); s != `[{"u":"é😀"}]` {
		t.Fatalf("args %s", s)
	}
	bridge.waitFor("serverSideEmit not relayed", 20*time.Second, func(l map[string]any) bool {
		return l["why"] == "server-side-emit"
	})
	// socketsJoin: python-socketio 5.7 has no enter_room
	bridge.waitFor("socketsJoin not relayed", 20*time.Second, func(l map[string]any) bool {
		return l["op"] == "join" && strings.Contains(fmt.Sprint(l["err"]), "5.10")
	})
	stats := stopBridge(t, bridge)["from_to"].(string)
	if !strings.Contains(stats, "Malformed:0") || !strings.Contains(stats, "PublishErrs:0") {
		t.Fatalf("from->to counters %s", stats)
	}
	if n := len(a.events("one")); n != 1 {
		t.Fatalf("one received %d times", n)
	}
}
