package compat_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// shardCounter is the Redis bus's sharded subscriber count.
type shardCounter interface {
	NumShardSub(ctx context.Context, channel string) (int, error)
}

// waitShardSubs waits until channel has want sharded subscribers.
func waitShardSubs(t *testing.T, bus queue.Bus, channel string, want int) {
	t.Helper()
	eventually(t, "SHARDNUMSUB "+channel+" = "+jsonString(want), 20*time.Second, 50*time.Millisecond, func() bool {
		n, err := bus.(shardCounter).NumShardSub(context.Background(), channel)
		return err == nil && n == want
	})
}

// TestNodeShardedAdapter: a Node socket.io 4.8 server with
// createShardedAdapter (dynamic mode) on a 3-master Redis Cluster, and the
// Go emitter in the node-sharded dialect on a redis+cluster:// bus: emits
// to a room (binary included), to all, with except, to one socket id,
// joins and leaves (the server subscribes to the room's channel and drops
// it), close-room, an acknowledgement, server-side emit and disconnect,
// plus sioemit --dialect node-sharded; each reaches the real clients
// exactly once. The server's own messages decode to what it did.
func TestNodeShardedAdapter(t *testing.T) {
	needNode(t)
	c := testenv.StartRedisCluster(t, 3, 0)
	port := portString(t)
	srv := startPeerWith(t, "node sharded server", true, "node", "node/sharded-server.js", port, strings.Join(c.Addrs(), ","))
	srv.waitFor("ready", 30*time.Second, func(l map[string]any) bool { return l["type"] == "ready" })
	url := "http://127.0.0.1:" + port
	bus := openBus(t, c.URL())
	d, err := nodesharded.New(nodesharded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	em := emitter.New(bus, d)
	defer em.Close()
	ctx := context.Background()
	const main = "socket.io#/#"
	room := func(r string) string { return main + r + "#" }

	// serverCount, as the sharded adapter computes it
	waitShardSubs(t, bus, main, 1)
	a, sidA := nodeClient(t, url, "r1", "/")
	b, sidB := nodeClient(t, url, "r2", "/")
	cc, sidC := nodeClient(t, url, "r1", "/")
	for _, sid := range []string{sidA, sidB, sidC} {
		if len(sid) != 20 {
			t.Fatalf("socket id %q is not 20 characters", sid)
		}
	}
	waitShardSubs(t, bus, room("r1"), 1) // dynamic mode: one channel per public room
	waitShardSubs(t, bus, room("r2"), 1)

	want := map[*peer]map[string]int{a: {}, b: {}, cc: {}}
	expect := func(event string, ps ...*peer) {
		for _, p := range ps {
			want[p][event]++
		}
	}

	t.Run("room, binary", func(t *testing.T) {
		if err := em.To("r1").Emit(ctx, "room", "x", []byte{1, 2}); err != nil {
			t.Fatal(err)
		}
		expect("room", a, cc)
		for _, p := range []*peer{a, cc} {
			l := p.waitFor("room", 10*time.Second, isEvent("room"))
			if !reflect.DeepEqual(l["args"], []any{"x", map[string]any{"$binary": "AQI="}}) {
				t.Fatalf("client got %#v", l["args"])
			}
		}
	})
	t.Run("all, except, one socket", func(t *testing.T) {
		if err := em.Emit(ctx, "all", 1); err != nil {
			t.Fatal(err)
		}
		expect("all", a, b, cc)
		if err := em.Except(sidA).Emit(ctx, "exc", 2); err != nil {
			t.Fatal(err)
		}
		expect("exc", b, cc)
		if err := em.To(sidB).Emit(ctx, "solo", 3); err != nil {
			t.Fatal(err)
		}
		expect("solo", b)
		b.waitFor("solo", 10*time.Second, isEvent("solo"))
	})
	t.Run("join and leave", func(t *testing.T) {
		if err := em.In(sidA).SocketsJoin(ctx, "r9"); err != nil {
			t.Fatal(err)
		}
		waitShardSubs(t, bus, room("r9"), 1)
		if err := em.To("r9").Emit(ctx, "r9ev", "in"); err != nil {
			t.Fatal(err)
		}
		expect("r9ev", a)
		a.waitFor("r9ev", 10*time.Second, isEvent("r9ev"))
		if err := em.In(sidA).SocketsLeave(ctx, "r9"); err != nil {
			t.Fatal(err)
		}
		waitShardSubs(t, bus, room("r9"), 0) // the room is gone: its channel too
		if err := em.To("r9").Emit(ctx, "r9ev", "after leave"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("close room", func(t *testing.T) {
		if err := em.In(sidC).SocketsJoin(ctx, "r8"); err != nil {
			t.Fatal(err)
		}
		waitShardSubs(t, bus, room("r8"), 1)
		if err := em.Of("/").CloseRoom(ctx, "r8"); err != nil {
			t.Fatal(err)
		}
		waitShardSubs(t, bus, room("r8"), 0)
	})
	t.Run("EmitWithAck", func(t *testing.T) {
		replies, err := em.To(sidA).Timeout(10*time.Second).EmitWithAck(ctx, "ask", "q")
		if err != nil {
			t.Fatal(err)
		}
		expect("ask", a)
		if len(replies) != 1 || !reflect.DeepEqual(replies[0].Args, []any{`pong:"q"`}) {
			t.Fatalf("replies %#v", replies)
		}
	})
	t.Run("EmitWithAck to a room", func(t *testing.T) {
		// the server counts by SHARDNUMSUB: the wait ends with the
		// server's client count and both answers, not at the first
		replies, err := em.To("r1").Timeout(10*time.Second).EmitWithAck(ctx, "ask", "m")
		if err != nil {
			t.Fatal(err)
		}
		expect("ask", a, cc)
		if len(replies) != 2 {
			t.Fatalf("%d replies from the two members of r1: %#v", len(replies), replies)
		}
	})
	t.Run("sioemit", func(t *testing.T) {
		cli := []string{"--dialect", "node-sharded", "--url", c.URL()}
		mustSioemit(t, append(cli, "--to", "r1", "cli", `"x"`)...)
		expect("cli", a, cc)
		out := mustSioemit(t, append(cli, "--to", sidB, "--ack", "ask", "7")...)
		expect("ask", b)
		if strings.TrimSpace(out) != `{"args":["pong:7"]}` {
			t.Fatalf("sioemit --ack printed %q", out)
		}
	})
	t.Run("serverSideEmit", func(t *testing.T) {
		if err := em.Of("/").ServerSideEmit(ctx, "ping", 1, "two"); err != nil {
			t.Fatal(err)
		}
		l := srv.waitFor("server-side ping", 10*time.Second, func(l map[string]any) bool { return l["type"] == "server-side" })
		if !reflect.DeepEqual(l["args"], []any{1.0, "two"}) {
			t.Fatalf("server got %#v", l["args"])
		}
	})
	// what the Node server publishes, read back through the dialect (this
	// subscriber of the main channel counts as a server for SHARDNUMSUB:
	// it comes after the acknowledgement tests)
	var mu sync.Mutex
	var fromNode []op.Op
	sub, err := bus.Subscribe(ctx, queue.Subscription{Channels: []string{main, room("r2")}, Sharded: true}, func(m queue.Message) {
		o, err := d.Decode(m)
		if err != nil {
			t.Errorf("decode %s %q: %v", m.Channel, m.Data, err)
			return
		}
		if reflect.ValueOf(o).Elem().FieldByName("Origin").String() == nodesharded.EmitterUID {
			return // ours
		}
		mu.Lock()
		fromNode = append(fromNode, o)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	t.Run("what Node publishes decodes", func(t *testing.T) {
		srv.send(map[string]any{"op": "emit", "rooms": []string{"r2"}, "event": "fromnode", "args": []any{1, map[string]any{"$binary": "CQ=="}}})
		expect("fromnode", b)
		srv.send(map[string]any{"op": "serverSideEmit", "event": "hi", "args": []any{"there"}})
		eventually(t, "two messages from Node", 10*time.Second, 20*time.Millisecond, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(fromNode) >= 2
		})
		b.waitFor("fromnode", 10*time.Second, isEvent("fromnode"))
		mu.Lock()
		defer mu.Unlock()
		// two channels on two shards: either may come first
		var uid string
		for _, o := range fromNode {
			if e, ok := o.(*op.Emit); ok {
				uid = e.Origin
			}
		}
		if len(uid) != 16 {
			t.Fatalf("no broadcast from a Node uid: %#v", fromNode)
		}
		wantOps := map[string]op.Op{
			"emit":             &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"r2"}}, Event: "fromnode", Args: []any{int64(1), []byte{9}}, Origin: uid},
			"server-side-emit": &op.ServerSideEmit{Namespace: "/", Event: "hi", Args: []any{"there"}, Origin: uid},
		}
		for _, o := range fromNode {
			if !reflect.DeepEqual(o, wantOps[o.Kind()]) {
				t.Errorf("from Node:\n got %#v\nwant %#v", o, wantOps[o.Kind()])
			}
		}
		if len(fromNode) != 2 {
			t.Errorf("%d messages from Node, want 2: %#v", len(fromNode), fromNode)
		}
	})
	t.Run("disconnect", func(t *testing.T) {
		if err := em.In(sidB).DisconnectSockets(ctx, true); err != nil {
			t.Fatal(err)
		}
		b.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
	})

	// everything arrived once: after a last marker, count
	marker := uniq("m")
	if err := em.Emit(ctx, "marker", marker); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{a, cc} {
		p.waitFor("marker", 10*time.Second, isEventWith("marker", marker))
	}
	names := map[string]bool{}
	for _, events := range want {
		for ev := range events {
			names[ev] = true
		}
	}
	for p, events := range want {
		for ev := range names {
			if got := len(p.events(ev)); got != events[ev] {
				t.Errorf("%s received %q %d times, want %d", p.name, ev, got, events[ev])
			}
		}
	}
}
