package compat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
)

// nodeClusterNode is a socket.io 4.8 + @socket.io/redis-adapter 8 server
// (node/cluster-node.js) driven through stdin.
type nodeClusterNode struct {
	p   *peer
	url string
	seq atomic.Int64
}

func startNodeClusterNode(t *testing.T, key string) *nodeClusterNode {
	t.Helper()
	p := startPeerWith(t, "node cluster node", true, "node", "node/cluster-node.js", "0", key)
	l := p.waitFor("ready", 20*time.Second, func(l map[string]any) bool { return l["type"] == "ready" })
	return &nodeClusterNode{p: p, url: fmt.Sprintf("http://127.0.0.1:%v", l["port"])}
}

// do runs one command on the Node server and returns its result.
func (n *nodeClusterNode) do(t *testing.T, cmd map[string]any) any {
	t.Helper()
	id := float64(n.seq.Add(1))
	cmd["id"] = id
	n.p.send(cmd)
	l := n.p.waitFor(fmt.Sprintf("result of %v", cmd["op"]), 20*time.Second, func(l map[string]any) bool {
		return l["type"] == "result" && l["id"] == id
	})
	if e, ok := l["error"]; ok && e != nil {
		t.Fatalf("node %v: %v", cmd["op"], e)
	}
	return l["result"]
}

// startGoClusterNode starts our server as a member of the same cluster
// (node dialect, default constructor), listening on a loopback port.
// Clients join the room of their `room` query parameter, as on the Node
// node; "ping" from other servers is answered with "go pong" + its args.
func startGoClusterNode(t *testing.T, key string) (*server.Server, string, *atomic.Int64) {
	t.Helper()
	return startGoMember(t, openBus(t, redisURL), node.New(node.Options{Key: key}))
}

// startGoMember is startGoClusterNode on bus in dialect d, with the
// server options opts.
func startGoMember(t *testing.T, bus queue.Bus, d dialect.Dialect, opts ...server.Option) (*server.Server, string, *atomic.Int64) {
	t.Helper()
	srv := server.New(append([]server.Option{server.WithAdapter(bus, d)}, opts...)...)
	srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error {
		if r := s.Request().URL.Query().Get("room"); r != "" {
			s.Join(r)
		}
		return nil
	})
	var pings atomic.Int64
	srv.Of("/").OnServerSideEmit("ping", func(args []any) any {
		pings.Add(1)
		return "go pong " + jsonString(args)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.AdapterReady(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := server.NewHTTPServer(ln.Addr().String(), mux)
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Shutdown(ctx)
	})
	return srv, "http://" + ln.Addr().String(), &pings
}

func sortedIDs(sockets []map[string]any) []string {
	var ids []string
	for _, s := range sockets {
		ids = append(ids, fmt.Sprint(s["id"]))
	}
	sort.Strings(ids)
	return ids
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func asMaps(t *testing.T, v any) []map[string]any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("not a list: %#v", v)
	}
	out := make([]map[string]any, len(l))
	for i, e := range l {
		if out[i], ok = e.(map[string]any); !ok {
			t.Fatalf("not an object: %#v", e)
		}
	}
	return out
}

// TestMixedNodeGoCluster (issue #7, compat test 1): a Node socket.io 4.8
// server with @socket.io/redis-adapter 8 and our server (WithAdapter, node
// dialect) on the same Redis and key act as one cluster: broadcasts both
// ways reach every matching client exactly once, the Node node's
// cluster-wide calls (fetchSockets, socketsJoin/Leave, disconnectSockets,
// serverSideEmit with ack, emitWithAck, serverCount, allRooms) cover the
// Go node's sockets, ours (FetchSockets, AllRooms, ServerSideEmit,
// EmitWithAck, ServerCount) cover the Node node's, and sioemit --ack
// collects the answers of clients on both.
func TestMixedNodeGoCluster(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needNode(t)
	key := uniq("mixed-node")
	nn := startNodeClusterNode(t, key)
	srv, goURL, pings := startGoClusterNode(t, key)
	root := srv.Of("/")
	// clients: one in room r and one in room x on each node
	nR, sidNR := nodeClient(t, nn.url, "r", "/")
	nX, sidNX := nodeClient(t, nn.url, "x", "/")
	gR, sidGR := nodeClient(t, goURL, "r", "/")
	gX, sidGX := nodeClient(t, goURL, "x", "/")
	all := map[string]*peer{"node-r": nR, "node-x": nX, "go-r": gR, "go-x": gX}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	expect := sentinelExpect(t, root, nn, all, false)

	t.Run("serverCount counts both", func(t *testing.T) {
		if n := nn.do(t, map[string]any{"op": "serverCount"}); n != 2.0 {
			t.Fatalf("Node serverCount() = %v, want 2", n)
		}
		if n, err := srv.ServerCount(ctx); err != nil || n != 2 {
			t.Fatalf("Go ServerCount = %d, %v; want 2", n, err)
		}
	})

	t.Run("io.to(room).emit on the Node node", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r"}, "event": "n2r", "args": []any{"hi", map[string]any{"$binary": "AQI="}}})
		expect("Node room emit", "n2r", map[string]int{"node-r": 1, "go-r": 1})
		l := gR.events("n2r")[0]
		if !reflect.DeepEqual(l["args"], []any{"hi", map[string]any{"$binary": "AQI="}}) {
			t.Fatalf("Go-node client received %#v", l["args"])
		}
		nn.do(t, map[string]any{"op": "emit", "except": []string{"r"}, "event": "n-except"})
		expect("Node except", "n-except", map[string]int{"node-x": 1, "go-x": 1})
		nn.do(t, map[string]any{"op": "emit", "rooms": []string{sidGX}, "event": "n-sid"})
		expect("Node emit to a Go-node sid", "n-sid", map[string]int{"go-x": 1})
	})

	t.Run("Go broadcasts", func(t *testing.T) {
		if err := root.To("r").Emit("g2r", "hi", []byte{3}); err != nil {
			t.Fatal(err)
		}
		expect("Go room emit", "g2r", map[string]int{"node-r": 1, "go-r": 1})
		if l := nR.events("g2r")[0]; !reflect.DeepEqual(l["args"], []any{"hi", map[string]any{"$binary": "Aw=="}}) {
			t.Fatalf("Node-node client received %#v", l["args"])
		}
		if err := root.Emit("g-all"); err != nil {
			t.Fatal(err)
		}
		expect("Go broadcast", "g-all", map[string]int{"node-r": 1, "node-x": 1, "go-r": 1, "go-x": 1})
		if err := root.Except("r").Emit("g-except"); err != nil {
			t.Fatal(err)
		}
		expect("Go except", "g-except", map[string]int{"node-x": 1, "go-x": 1})
		if err := root.To(sidNX).Emit("g-sid"); err != nil {
			t.Fatal(err)
		}
		expect("Go emit to a Node-node sid", "g-sid", map[string]int{"node-x": 1})
	})

	t.Run("fetchSockets from the Node node", func(t *testing.T) {
		got := asMaps(t, nn.do(t, map[string]any{"op": "fetchSockets"}))
		if ids, want := sortedIDs(got), sorted(sidNR, sidNX, sidGR, sidGX); !reflect.DeepEqual(ids, want) {
			t.Fatalf("fetchSockets ids %v, want %v", ids, want)
		}
		inR := asMaps(t, nn.do(t, map[string]any{"op": "fetchSockets", "rooms": []string{"r"}}))
		if ids, want := sortedIDs(inR), sorted(sidNR, sidGR); !reflect.DeepEqual(ids, want) {
			t.Fatalf("fetchSockets in r: ids %v, want %v", ids, want)
		}
		for _, s := range inR {
			if s["id"] != sidGR {
				continue
			}
			rooms := fmt.Sprint(sortAny(s["rooms"]))
			if rooms != fmt.Sprint(sorted("r", sidGR)) {
				t.Fatalf("Go-node socket rooms %v", rooms)
			}
			hs, _ := s["handshake"].(map[string]any)
			if q, _ := hs["query"].(map[string]any); q["room"] != "r" {
				t.Fatalf("Go-node socket handshake %#v", hs)
			}
		}
	})

	t.Run("allRooms", func(t *testing.T) {
		got := fmt.Sprint(sortAny(nn.do(t, map[string]any{"op": "allRooms"})))
		for _, want := range []string{"r", "x", sidGR, sidGX, sidNR} {
			if !strings.Contains(got, want) {
				t.Fatalf("Node allRooms %s lacks %s", got, want)
			}
		}
		rooms, err := root.AllRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"r", "x", sidGR, sidNX, sidNR} {
			if !slices.Contains(rooms, want) {
				t.Fatalf("Go AllRooms %v lacks %s", rooms, want)
			}
		}
	})

	t.Run("FetchSockets from the Go node", func(t *testing.T) {
		socks, err := root.To("x").FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range socks {
			ids = append(ids, s.ID)
			if s.ID == sidNX && !reflect.DeepEqual(sorted(s.Rooms...), sorted("x", sidNX)) {
				t.Fatalf("Node-node socket rooms %v", s.Rooms)
			}
		}
		if got, want := sorted(ids...), sorted(sidNX, sidGX); !reflect.DeepEqual(got, want) {
			t.Fatalf("FetchSockets in x: %v, want %v", got, want)
		}
	})

	t.Run("socketsJoin and socketsLeave from the Node node", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "socketsJoin", "rooms": []string{"x"}, "to": []string{"joined"}})
		// each node applies the join when the request comes back through Redis
		eventually(t, "both x sockets in room joined", 10*time.Second, 50*time.Millisecond, func() bool {
			got := nn.do(t, map[string]any{"op": "fetchSockets", "rooms": []string{"joined"}})
			return reflect.DeepEqual(sortedIDs(asMaps(t, got)), sorted(sidNX, sidGX))
		})
		nn.do(t, map[string]any{"op": "emit", "rooms": []string{"joined"}, "event": "to-joined"})
		expect("emit to joined", "to-joined", map[string]int{"node-x": 1, "go-x": 1})
		nn.do(t, map[string]any{"op": "socketsLeave", "rooms": []string{"x"}, "to": []string{"joined"}})
		eventually(t, "room joined empty", 10*time.Second, 50*time.Millisecond, func() bool {
			socks, err := root.To("joined").FetchSockets(ctx)
			return err == nil && len(socks) == 0
		})
		if err := root.To("joined").Emit("after-leave"); err != nil {
			t.Fatal(err)
		}
		expect("emit after leave", "after-leave", map[string]int{})
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		got := nn.do(t, map[string]any{"op": "serverSideEmitWithAck", "event": "ping", "args": []any{1, "two"}})
		if !reflect.DeepEqual(got, []any{`go pong [1,"two"]`}) {
			t.Fatalf("Node serverSideEmitWithAck got %#v", got)
		}
		before := pings.Load()
		nn.do(t, map[string]any{"op": "serverSideEmit", "event": "ping", "args": []any{3}})
		eventually(t, "the Go handler", 10*time.Second, 20*time.Millisecond, func() bool { return pings.Load() == before+1 })
		// from the Go node
		if err := root.ServerSideEmit("ping", "from go"); err != nil {
			t.Fatal(err)
		}
		l := nn.p.waitFor("server-side ping from go", 10*time.Second, func(l map[string]any) bool {
			return l["type"] == "server-side" && fmt.Sprint(l["args"]) == "[from go]"
		})
		_ = l
		answers, err := root.ServerSideEmitWithAck(ctx, "ping", 4)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(answers, []any{"node pong [4]"}) {
			t.Fatalf("Go ServerSideEmitWithAck got %#v", answers)
		}
	})

	t.Run("emitWithAck on a room spanning both nodes", func(t *testing.T) {
		got := nn.do(t, map[string]any{"op": "emitWithAck", "rooms": []string{"r"}, "event": "ask", "args": []any{"q"}})
		if !reflect.DeepEqual(got, []any{`pong:"q"`, `pong:"q"`}) {
			t.Fatalf("Node emitWithAck got %#v", got)
		}
		replies, err := root.To("r").EmitWithAck(ctx, "ask", "g")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(replies, [][]any{{`pong:"g"`}, {`pong:"g"`}}) {
			t.Fatalf("Go EmitWithAck got %#v", replies)
		}
	})

	t.Run("sioemit --ack", func(t *testing.T) {
		out := mustSioemit(t, "--url", redisURL, "--dialect", "node", "--channel", key, "--to", "r", "--ack", "ask", "7")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); !reflect.DeepEqual(lines, []string{`{"args":["pong:7"]}`, `{"args":["pong:7"]}`}) {
			t.Fatalf("sioemit output %q, want one reply per client of r (both nodes)", out)
		}
	})

	t.Run("disconnectSockets from the Node node", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "disconnectSockets", "rooms": []string{"x"}, "close": true})
		for _, c := range []*peer{nX, gX} {
			c.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
		}
		if root.Socket(sidGX) != nil {
			t.Fatal("Go-node socket still there")
		}
		if got := nn.do(t, map[string]any{"op": "fetchSockets"}); len(got.([]any)) != 2 {
			t.Fatalf("after disconnect, fetchSockets lists %d sockets, want 2", len(got.([]any)))
		}
	})
}

func sortAny(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = fmt.Sprint(e)
	}
	sort.Strings(out)
	return out
}

// startSioserver runs the sioserver command with args on a free port
// until the test ends and returns its URL.
func startSioserver(t *testing.T, args ...string) string {
	t.Helper()
	addr := "127.0.0.1:" + portString(t)
	p := startPeer(t, "sioserver "+addr, append([]string{sioserverBin, "--addr", addr}, args...)...)
	if err := testenv.WaitPort(addr, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.raw.String())
	}
	return "http://" + addr
}

// TestSioserverInNodeCluster: the sioserver command as the Go node of a
// mixed cluster with a Node socket.io server (node dialect, Redis): a
// client of sioserver joins a room and publishes to it, and the members
// on both nodes receive the event once; the Node node's room emit reaches
// the sioserver client; the Node node counts two servers.
func TestSioserverInNodeCluster(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needNode(t)
	key := uniq("mixed-sioserver")
	nn := startNodeClusterNode(t, key)
	goURL := startSioserver(t, "--url", redisURL, "--dialect", "node", "--channel", key, "--allow-client-rooms", "--allow-client-publish")
	onNode, _ := nodeClient(t, nn.url, "r", "/")
	onGo := startPeerWith(t, "client of sioserver", true, "node", "node/sio-client.js", goURL, "websocket")
	onGo.waitFor("connect", 20*time.Second, func(l map[string]any) bool { return l["type"] == "connect" })
	acks := 0
	ack := func(event string, args ...any) any {
		t.Helper()
		onGo.send(map[string]any{"emit": event, "args": args, "ack": true})
		acks++
		seen := 0
		l := onGo.waitFor("ack of "+event, 10*time.Second, func(l map[string]any) bool {
			if l["type"] == "ack" {
				seen++
			}
			return seen == acks
		})
		if l["event"] != event {
			t.Fatalf("ack of %v, want %s", l["event"], event)
		}
		if l["error"] != nil {
			t.Fatalf("%s: %v", event, l["error"])
		}
		a, _ := l["args"].([]any)
		if len(a) != 1 {
			t.Fatalf("%s: ack %#v", event, l["args"])
		}
		return a[0]
	}
	if got := ack("join", "r"); got != true {
		t.Fatalf("join: %#v", got)
	}
	if n := nn.do(t, map[string]any{"op": "serverCount"}); n != 2.0 {
		t.Fatalf("Node serverCount() = %v, want 2", n)
	}
	if got := ack("publish", "r", "news", "from sioserver", map[string]any{"$binary": "AQI="}); got != true {
		t.Fatalf("publish: %#v", got)
	}
	nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r"}, "event": "from-node", "args": []any{1}})
	if got := ack("publish", "r", "end"); got != true {
		t.Fatalf("publish: %#v", got)
	}
	// from-node travels through Redis after any echo of news: once it is
	// there, a duplicate would be too
	onGo.waitFor("from-node", 10*time.Second, isEvent("from-node"))
	for name, c := range map[string]*peer{"Node-node client": onNode, "sioserver client": onGo} {
		c.waitFor("end", 10*time.Second, isEvent("end"))
		news := c.events("news")
		if len(news) != 1 || !reflect.DeepEqual(news[0]["args"], []any{"from sioserver", map[string]any{"$binary": "AQI="}}) {
			t.Fatalf("%s received news %v, want it once with its arguments", name, news)
		}
	}
	onGo.waitFor("from-node", 10*time.Second, isEvent("from-node"))
	if n := len(onGo.events("from-node")); n != 1 {
		t.Fatalf("sioserver client received the Node node's emit %d times", n)
	}
	if got := ack("publish", "elsewhere", "news", "x"); fmt.Sprint(got) != `map[error:publish: not a member of room "elsewhere"]` {
		t.Fatalf("publish to a room the client is not in: %#v", got)
	}
}

// sentinelExpect returns expect(what, event, want): after a sentinel event
// from each node (the Go node's root and the Node node nn) has reached
// every client of all, it checks how many times each client received
// event. From the node that sent the event, a sentinel travels the same
// way after it; from the other node, it comes through the broker after
// any echo of the event (a duplicate) the broker had taken before. With
// waitCounts (sharded clusters: a room's channel and the main channel are
// on different shards, with no order between them), a room broadcast may
// come after the sentinels, so the counts are awaited, and exceeding them
// fails at once.
func sentinelExpect(t *testing.T, root *server.Namespace, nn *nodeClusterNode, all map[string]*peer, waitCounts bool) func(what, event string, want map[string]int) {
	round := 0
	return func(what, event string, want map[string]int) {
		t.Helper()
		round++
		fromGo, fromNode := fmt.Sprintf("go-end%d", round), fmt.Sprintf("node-end%d", round)
		if err := root.Emit(fromGo, fromGo); err != nil {
			t.Fatal(err)
		}
		nn.do(t, map[string]any{"op": "emit", "event": fromNode, "args": []any{fromNode}})
		for name, c := range all {
			c.waitFor(fromGo, 10*time.Second, isEventWith(fromGo, fromGo))
			c.waitFor(fromNode, 10*time.Second, isEventWith(fromNode, fromNode))
			check := func() bool {
				got := len(c.events(event))
				if got > want[name] || !waitCounts && got != want[name] {
					t.Fatalf("%s: client %s received %q %d times, want %d", what, name, event, got, want[name])
				}
				return got == want[name]
			}
			if waitCounts {
				eventually(t, fmt.Sprintf("%s: client %s receives %q %d times", what, name, event, want[name]), 10*time.Second, 10*time.Millisecond, check)
			} else {
				check()
			}
		}
	}
}

// checkServerCounts checks that the Node node nn and the Go server srv
// each count want servers.
func checkServerCounts(t *testing.T, ctx context.Context, nn *nodeClusterNode, srv *server.Server, want int) {
	t.Helper()
	if n := nn.do(t, map[string]any{"op": "serverCount"}); n != float64(want) {
		t.Fatalf("Node serverCount() = %v, want %d", n, want)
	}
	if n, err := srv.ServerCount(ctx); err != nil || n != want {
		t.Fatalf("Go ServerCount = %d, %v; want %d", n, err, want)
	}
}

// checkMixedRequests checks the requests of a ClusterAdapter cluster (the
// sharded and the streams adapters) of the Node node nn and the Go node
// root, whose "ping" handler counts in pings, with the client sidNR on
// nn and sidGR on the Go node in room r ("node-r" and "go-r" for expect,
// clients answering "ask"): each node's fetchSockets(r),
// serverSideEmitWithAck and emitWithAck(r) cover the other.
func checkMixedRequests(t *testing.T, ctx context.Context, nn *nodeClusterNode, root *server.Namespace, pings *atomic.Int64, sidNR, sidGR string, expect func(what, event string, want map[string]int)) {
	t.Helper()
	fetched := asMaps(t, nn.do(t, map[string]any{"op": "fetchSockets", "rooms": []string{"r"}}))
	if got := sortedIDs(fetched); !reflect.DeepEqual(got, sorted(sidNR, sidGR)) {
		t.Fatalf("Node fetchSockets(r) = %v, want %v", got, sorted(sidNR, sidGR))
	}
	ours, err := root.To("r").FetchSockets(ctx)
	if err != nil || len(ours) != 2 {
		t.Fatalf("Go FetchSockets(r): %v, %v", ours, err)
	}
	if got := nn.do(t, map[string]any{"op": "serverSideEmitWithAck", "event": "ping", "args": []any{1}}); !reflect.DeepEqual(got, []any{"go pong [1]"}) {
		t.Fatalf("Node serverSideEmitWithAck = %#v", got)
	}
	if pings.Load() != 1 {
		t.Fatalf("Go node received %d pings", pings.Load())
	}
	answers, err := root.ServerSideEmitWithAck(ctx, "ping", 2)
	if err != nil || !reflect.DeepEqual(answers, []any{"node pong [2]"}) {
		t.Fatalf("Go ServerSideEmitWithAck = %#v, %v", answers, err)
	}
	if got, ok := nn.do(t, map[string]any{"op": "emitWithAck", "rooms": []string{"r"}, "event": "ask", "args": []any{"n"}}).([]any); !ok || len(got) != 2 {
		t.Fatalf("Node emitWithAck(r) = %#v", got)
	}
	replies, err := root.To("r").EmitWithAck(ctx, "ask", "g")
	if err != nil || len(replies) != 2 {
		t.Fatalf("Go EmitWithAck(r) = %#v, %v", replies, err)
	}
	expect("asks", "ask", map[string]int{"node-r": 2, "go-r": 2})
}

// checkMixedBroadcasts checks the broadcasts of a mixed cluster of the
// Node node nn and the Go node root, with the clients "node-r" (sidNR,
// room r) on nn, "go-r" (gR, room r) and "go-x" (sidGX, room x) on the
// Go node: room broadcasts with binary both ways, emits to a socket id
// of the other node and a Go emit to all reach each matching client once.
func checkMixedBroadcasts(t *testing.T, nn *nodeClusterNode, root *server.Namespace, gR *peer, sidNR, sidGX string, expect func(what, event string, want map[string]int)) {
	t.Helper()
	nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r"}, "event": "n2r", "args": []any{"hi", map[string]any{"$binary": "AQI="}}})
	expect("Node room emit", "n2r", map[string]int{"node-r": 1, "go-r": 1})
	if l := gR.events("n2r")[0]; !reflect.DeepEqual(l["args"], []any{"hi", map[string]any{"$binary": "AQI="}}) {
		t.Fatalf("Go-node client received %#v", l["args"])
	}
	nn.do(t, map[string]any{"op": "emit", "rooms": []string{sidGX}, "event": "n-sid"})
	expect("Node emit to a Go sid", "n-sid", map[string]int{"go-x": 1})
	if err := root.To("r").Emit("g2r", "hi", []byte{3}); err != nil {
		t.Fatal(err)
	}
	expect("Go room emit", "g2r", map[string]int{"node-r": 1, "go-r": 1})
	if err := root.To(sidNR).Emit("g-sid"); err != nil {
		t.Fatal(err)
	}
	expect("Go emit to a Node sid", "g-sid", map[string]int{"node-r": 1})
	if err := root.Emit("g-all"); err != nil {
		t.Fatal(err)
	}
	expect("Go emit to all", "g-all", map[string]int{"node-r": 1, "go-r": 1, "go-x": 1})
}
