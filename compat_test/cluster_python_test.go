package compat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server"
)

// pyFlavor is one python-socketio family a mixed cluster is tested with.
type pyFlavor struct {
	name    string
	head    bool // the newest Flask-SocketIO, vendored in python/vendor
	dialect func(channel string) dialect.Dialect
	rooms   bool // the queue protocol has enter_room/leave_room (>= 5.10)
}

var (
	pickleFlavor = pyFlavor{"Flask-SocketIO 5.3.2", false,
		func(ch string) dialect.Dialect { return python.NewPickle(python.Options{Channel: ch}) }, false}
	jsonFlavor = pyFlavor{"newest Flask-SocketIO", true,
		func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }, true}
)

// pyBroker is one broker a mixed cluster runs on, as each side spells it.
type pyBroker struct {
	name, broker, addr string
	pythonURL, goURL   string
}

var pyBrokers = []pyBroker{
	{"redis", "redis", testenv.RedisAddr, redisURL, redisURL},
	{"rabbitmq", "rabbitmq", testenv.AMQPAddr,
		"amqp://guest:guest@" + testenv.AMQPAddr + "//", "amqp://guest:guest@" + testenv.AMQPAddr + "/"},
}

// TestMixedClusterFlaskSocketIOPickle: a Flask-SocketIO 5.3.2 server and a
// Go server (python-pickle dialect) on one channel act as one server, on
// Redis and on RabbitMQ (Kombu).
func TestMixedClusterFlaskSocketIOPickle(t *testing.T) {
	for _, b := range pyBrokers {
		t.Run(b.name, func(t *testing.T) { testMixedPythonCluster(t, pickleFlavor, b) })
	}
}

// TestMixedClusterFlaskSocketIOJSON: the same with the newest
// Flask-SocketIO / python-socketio (JSON on the queue, python dialect).
func TestMixedClusterFlaskSocketIOJSON(t *testing.T) {
	for _, b := range pyBrokers {
		t.Run(b.name, func(t *testing.T) { testMixedPythonCluster(t, jsonFlavor, b) })
	}
}

// fsioNode is a Flask-SocketIO server driven through stdin (fsio_node.py).
type fsioNode struct {
	t   *testing.T
	p   *peer
	url string
	seq atomic.Int64
}

func startFSIONode(t *testing.T, f pyFlavor, mq, channel string) *fsioNode {
	t.Helper()
	needFlaskSocketIO(t)
	port := portString(t)
	args := []string{"/usr/bin/python3", "python/fsio_node.py", "--port", port, "--mq", mq, "--channel", channel}
	if f.head {
		args = append(args, "--head")
	}
	p := startPeerWith(t, f.name+" server", true, args...)
	ready := p.waitFor("ready", 20*time.Second, isType("ready"))
	if ready["vendored"] != f.head {
		t.Fatalf("%s: vendored=%v", f.name, ready["vendored"])
	}
	if err := testenv.WaitPort("127.0.0.1:"+port, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return &fsioNode{t: t, p: p, url: "http://127.0.0.1:" + port}
}

// do performs one command on the Flask-SocketIO server and returns its
// answer.
func (n *fsioNode) do(cmd map[string]any) map[string]any {
	n.t.Helper()
	id := float64(n.seq.Add(1))
	cmd["id"] = id
	n.p.send(cmd)
	l := n.p.waitFor(fmt.Sprintf("answer to %v", cmd), 20*time.Second, func(l map[string]any) bool {
		return l["id"] == id && (l["type"] == "done" || l["type"] == "error")
	})
	if l["type"] == "error" {
		n.t.Fatalf("flask-socketio %v: %v", cmd["op"], l["error"])
	}
	return l
}

// pyClient is a python-socketio client (polling) of one of the nodes.
type pyClient struct {
	name, sid string
	p         *peer
}

func connectPyClient(t *testing.T, name, url, rooms string, namespace ...string) *pyClient {
	t.Helper()
	args := []string{"/usr/bin/python3", "python/client.py", "--url", url, "--room", rooms, "--events", "news,marker,ask,solo,probe,one"}
	for _, ns := range namespace {
		args = append(args, "--namespace", ns)
	}
	p := startPeer(t, "python client "+name, args...)
	l := p.waitFor("connect", 20*time.Second, isType("connected"))
	return &pyClient{name: name, sid: l["sid"].(string), p: p}
}

// goNode starts a Go server on the cluster and serves it over HTTP.
// Clients of / and /chat join the rooms of their `room` query parameter
// (comma separated).
func goNode(t *testing.T, url string, d dialect.Dialect) (*server.Server, string) {
	t.Helper()
	srv := server.New(server.WithAdapter(openBus(t, url), d))
	join := func(s *server.Socket, _ json.RawMessage) error {
		for _, r := range strings.Split(s.Request().URL.Query().Get("room"), ",") {
			if r != "" {
				s.Join(r)
			}
		}
		return nil
	}
	srv.OnConnect("/", join)
	srv.OnConnect("/chat", join)
	ln := listen(t, "127.0.0.1:0")
	serve(t, srv, ln)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.AdapterReady(ctx); err != nil {
		t.Fatal(err)
	}
	return srv, "http://" + ln.Addr().String()
}

func testMixedPythonCluster(t *testing.T, f pyFlavor, b pyBroker) {
	testenv.Need(t, b.broker, b.addr)
	channel := uniq("mixed-py")
	fl := startFSIONode(t, f, b.pythonURL, channel)
	srv, goURL := goNode(t, b.goURL, f.dialect(channel))
	root := srv.Of("/")
	// f* on the Flask-SocketIO node, g* on the Go node; *r in rooms r and c,
	// *o in room o.
	fr := connectPyClient(t, "fr", fl.url, "r,c")
	fo := connectPyClient(t, "fo", fl.url, "o")
	gr := connectPyClient(t, "gr", goURL, "r,c")
	gx := connectPyClient(t, "gx", goURL, "o")
	all := []*pyClient{fr, fo, gr, gx}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// python-socketio subscribes after its first client connected: probe
	// from the Go node until the Flask node's client hears it.
	eventually(t, "Go node -> Flask-SocketIO node", 20*time.Second, 300*time.Millisecond, func() bool {
		if err := root.To(fr.sid).Emit("probe"); err != nil {
			t.Logf("probe: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		return len(fr.p.events("probe")) > 0
	})

	seq := 0
	tag := func() string { seq++; return fmt.Sprintf("%s-%d", f.name, seq) }
	// sentinel from the Flask node or the Go node: a namespace-wide
	// "marker" every client receives after what the same node emitted
	// before.
	flaskMarker := func(v string) { fl.do(map[string]any{"op": "emit", "event": "marker", "args": []any{v}}) }
	goMarker := func(v string) {
		if err := root.Emit("marker", v); err != nil {
			t.Fatal(err)
		}
	}
	// expect waits for marker v on every client and checks how many times
	// each received event "news" with first argument v.
	expect := func(what, v string, want map[*pyClient]int) {
		t.Helper()
		for _, c := range all {
			c.p.waitFor(what+": marker at "+c.name, 20*time.Second, isEventWith("marker", v))
			n := 0
			for _, l := range c.p.events("news") {
				if args, _ := l["args"].([]any); len(args) > 0 && args[0] == v {
					n++
				}
			}
			if n != want[c] {
				t.Fatalf("%s: %s received %d times, want %d", what, c.name, n, want[c])
			}
		}
	}
	// settle waits until a room operation made on one node took effect on
	// both: a marker from the same node, published after it, reached every
	// client (a node performs what it receives in order; publishing
	// returns before the other nodes performed it).
	settle := func(fromGo bool) {
		t.Helper()
		v := tag()
		if fromGo {
			goMarker(v)
		} else {
			flaskMarker(v)
		}
		for _, c := range all {
			c.p.waitFor("settle: marker at "+c.name, 20*time.Second, isEventWith("marker", v))
		}
	}
	// newsArgs returns the arguments of c's event "news" tagged v.
	newsArgs := func(c *pyClient, v string) string {
		for _, l := range c.p.events("news") {
			if args, _ := l["args"].([]any); len(args) > 0 && args[0] == v {
				return jsonString(args)
			}
		}
		return ""
	}
	// fromFlask emits "news" with a fresh tag first, then the other args,
	// from the Flask node (cmd: "to", "skip_sid"), followed by its marker;
	// fromGo does the same on the Go node with b.
	fromFlask := func(cmd map[string]any, args ...any) string {
		v := tag()
		cmd["op"], cmd["event"], cmd["args"] = "emit", "news", append([]any{v}, args...)
		fl.do(cmd)
		flaskMarker(v)
		return v
	}
	fromGo := func(b *server.Broadcast, args ...any) string {
		t.Helper()
		v := tag()
		if err := b.Emit("news", append([]any{v}, args...)...); err != nil {
			t.Fatal(err)
		}
		goMarker(v)
		return v
	}

	t.Run("flask emit to a room reaches Go-node clients once", func(t *testing.T) {
		bin := map[string]any{"$binary": "AP8="}
		extra := []any{1, bin, map[string]any{"nested": []any{bin, "é😀"}}}
		v := fromFlask(map[string]any{"to": "r"}, extra...)
		expect("flask emit to r", v, map[*pyClient]int{fr: 1, gr: 1})
		if got, want := newsArgs(gr, v), jsonString(append([]any{v}, extra...)); got != want {
			t.Fatalf("args %s, want %s", got, want)
		}
	})
	t.Run("go broadcast to a room reaches Flask-node clients once", func(t *testing.T) {
		v := fromGo(root.To("r"), 2, []byte{1, 2}, map[string]any{"u": "é😀"})
		expect("go emit to r", v, map[*pyClient]int{fr: 1, gr: 1})
		if got, want := newsArgs(fr, v), jsonString([]any{v, 2, map[string]any{"$binary": "AQI="}, map[string]any{"u": "é😀"}}); got != want {
			t.Fatalf("args %s, want %s", got, want)
		}
	})
	t.Run("namespace-wide emits both ways", func(t *testing.T) {
		everyone := map[*pyClient]int{fr: 1, fo: 1, gr: 1, gx: 1}
		expect("flask emit to all", fromFlask(map[string]any{}), everyone)
		expect("go emit to all", fromGo(root.To()), everyone)
	})
	t.Run("skip a sid of the other node", func(t *testing.T) {
		expect("flask skip_sid", fromFlask(map[string]any{"to": "r", "skip_sid": gr.sid}), map[*pyClient]int{fr: 1})
		expect("go except", fromGo(root.To("r").Except(fr.sid)), map[*pyClient]int{gr: 1})
	})
	t.Run("single sid on the other node", func(t *testing.T) {
		expect("flask to a Go-node sid", fromFlask(map[string]any{"to": gx.sid}), map[*pyClient]int{gx: 1})
		expect("go to a Flask-node sid", fromGo(root.To(fo.sid)), map[*pyClient]int{fo: 1})
	})
	t.Run("namespace /chat both ways, acks to a room", func(t *testing.T) {
		fc := connectPyClient(t, "fc", fl.url, "cr,f-only", "/chat")
		gc := connectPyClient(t, "gc", goURL, "cr,g-only", "/chat")
		chat := srv.Of("/chat")
		if err := chat.To(fc.sid).Emit("probe"); err != nil { // the Flask node has /chat clients now
			t.Fatal(err)
		}
		fc.p.waitFor("probe in /chat", 20*time.Second, isEvent("probe"))
		check := func(what string, want map[*pyClient]int, send func(v string)) {
			t.Helper()
			v := tag()
			send(v)
			for _, c := range []*pyClient{fc, gc} {
				c.p.waitFor(what+": marker at "+c.name, 20*time.Second, isEventWith("marker", v))
				n := 0
				for _, l := range c.p.events("news") {
					if args, _ := l["args"].([]any); len(args) > 0 && args[0] == v && l["namespace"] == "/chat" {
						n++
					}
				}
				if n != want[c] {
					t.Fatalf("%s: %s received %d times, want %d", what, c.name, n, want[c])
				}
			}
		}
		check("flask emit in /chat", map[*pyClient]int{fc: 1, gc: 1}, func(v string) {
			fl.do(map[string]any{"op": "emit", "event": "news", "args": []any{v}, "to": "cr", "namespace": "/chat"})
			fl.do(map[string]any{"op": "emit", "event": "marker", "args": []any{v}, "namespace": "/chat"})
		})
		check("go emit in /chat", map[*pyClient]int{fc: 1, gc: 1}, func(v string) {
			if err := chat.To("cr").Emit("news", v); err != nil {
				t.Fatal(err)
			}
			if err := chat.Emit("marker", v); err != nil {
				t.Fatal(err)
			}
		})
		// python-socketio's callbacks may name a room (here: of one member)
		got := fl.do(map[string]any{"op": "emit_cb", "event": "ask", "args": []any{"room g"}, "to": "g-only", "namespace": "/chat"})
		if s := jsonString(got["args"]); s != `["pong","room g"]` {
			t.Fatalf("callback args %s", s)
		}
		replies, err := chat.To("f-only").EmitWithAck(ctx, "ask", "to a room")
		if err != nil {
			t.Fatal(err)
		}
		if s := jsonString(replies); s != `[["pong","to a room"]]` {
			t.Fatalf("replies %s", s)
		}
		if err := chat.In(fc.sid).DisconnectSockets(false); err != nil {
			t.Fatal(err)
		}
		fc.p.waitFor("disconnect from /chat by the Go node", 20*time.Second, isType("disconnected"))
		fl.do(map[string]any{"op": "disconnect", "sid": gc.sid, "namespace": "/chat"})
		gc.p.waitFor("disconnect from /chat by the Flask node", 20*time.Second, isType("disconnected"))
	})
	t.Run("flask emit callback from a Go-node client", func(t *testing.T) {
		got := fl.do(map[string]any{"op": "emit_cb", "event": "ask", "args": []any{"q", 1}, "to": gr.sid})
		if s := jsonString(got["args"]); s != `["pong","q",1]` {
			t.Fatalf("callback args %s", s)
		}
	})
	t.Run("flask call() to a Go-node client", func(t *testing.T) {
		got := fl.do(map[string]any{"op": "call", "event": "ask", "args": []any{"c", 2}, "to": gx.sid})
		if s := jsonString(got["result"]); s != `["pong","c",2]` {
			t.Fatalf("call result %s", s)
		}
	})
	t.Run("go EmitWithAck to a Flask-node client", func(t *testing.T) {
		actx, acancel := context.WithTimeout(ctx, 15*time.Second)
		defer acancel()
		replies, err := root.To(fo.sid).EmitWithAck(actx, "ask", "g", 3)
		if err != nil {
			t.Fatal(err)
		}
		if s := jsonString(replies); s != `[["pong","g",3]]` {
			t.Fatalf("replies %s", s)
		}
	})
	t.Run("join and leave across nodes", func(t *testing.T) {
		if !f.rooms {
			// python-socketio < 5.10 has no enter_room/leave_room message
			for _, op := range []func() error{
				func() error { return root.In(fr.sid).SocketsJoin("j") },
				func() error { return root.In(fr.sid).SocketsLeave("r") },
			} {
				if err := op(); !errors.Is(err, dialect.ErrUnsupported) {
					t.Fatalf("remote join/leave with python-pickle: %v, want ErrUnsupported", err)
				}
			}
			return
		}
		// the Go node puts a Flask-node client in room j and out again
		if err := root.In(fo.sid).SocketsJoin("j"); err != nil {
			t.Fatal(err)
		}
		settle(true)
		expect("after go SocketsJoin", fromFlask(map[string]any{"to": "j"}), map[*pyClient]int{fo: 1})
		if err := root.In(fo.sid).SocketsLeave("j"); err != nil {
			t.Fatal(err)
		}
		settle(true)
		expect("after go SocketsLeave", fromFlask(map[string]any{"to": "j"}), nil)

		// the Flask node puts a Go-node client in room k and out again
		fl.do(map[string]any{"op": "enter_room", "sid": gx.sid, "room": "k"})
		settle(false)
		expect("after flask enter_room", fromGo(root.To("k")), map[*pyClient]int{gx: 1})
		fl.do(map[string]any{"op": "leave_room", "sid": gx.sid, "room": "k"})
		settle(false)
		expect("after flask leave_room", fromGo(root.To("k")), nil)
	})
	t.Run("close room both ways", func(t *testing.T) {
		fl.do(map[string]any{"op": "close_room", "room": "c"})
		settle(false)
		expect("go emit after flask close_room", fromGo(root.To("c")), nil)
		if err := root.CloseRoom("r"); err != nil {
			t.Fatal(err)
		}
		settle(true)
		expect("flask emit after go CloseRoom", fromFlask(map[string]any{"to": "r"}), nil)
	})
	t.Run("disconnect across nodes", func(t *testing.T) {
		fl.do(map[string]any{"op": "disconnect", "sid": gx.sid})
		gx.p.waitFor("disconnect by the Flask node", 20*time.Second, isType("disconnected"))
		if err := root.In(fo.sid).DisconnectSockets(false); err != nil {
			t.Fatal(err)
		}
		fo.p.waitFor("disconnect by the Go node", 20*time.Second, isType("disconnected"))
		// the others are still served
		all = []*pyClient{fr, gr}
		expect("after the disconnects", fromFlask(map[string]any{}), map[*pyClient]int{fr: 1, gr: 1})
	})
	// nothing undecodable; two acknowledgements routed to EmitWithAck; the
	// Go node's three answers to the Flask node's callbacks come back to it
	// addressed to another host (counted as not for this server)
	if st := srv.QueueStats(); st.Malformed != 0 || st.Replies != 2 || st.Unsupported != 3 || st.PublishErrs != 0 {
		t.Fatalf("Go node queue stats %+v", st)
	}
}
