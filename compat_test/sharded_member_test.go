package compat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/internal/testenv"
)

// TestShardedMixedCluster (issue #11, compat test 1): a Node socket.io 4.8
// server with createShardedAdapter (dynamic mode) and our server
// (WithAdapter, node-sharded dialect) on one 3-master Redis Cluster act as
// one cluster: room broadcasts both ways reach each matching client
// exactly once, the Go node subscribes to a room's channel when the room
// appears on it and drops it when it goes (PUBSUB SHARDNUMSUB), each
// node's fetchSockets / serverSideEmitWithAck / emitWithAck / serverCount
// covers the other, and sioemit --dialect node-sharded reaches the clients
// of both.
func TestShardedMixedCluster(t *testing.T) {
	needNode(t)
	rc := testenv.StartRedisCluster(t, 3, 0)
	key := uniq("shm")
	nn := startShardedNodeMember(t, rc, key, nodesharded.Dynamic)
	bus := openBus(t, rc.URL())
	d, err := nodesharded.New(nodesharded.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	srv, goURL, pings := startGoMember(t, openBus(t, rc.URL()), d)
	root := srv.Of("/")
	main := key + "#/#"
	room := func(r string) string { return main + r + "#" }
	waitShardSubs(t, bus, main, 2)

	nR, sidNR := nodeClient(t, nn.url, "r", "/")
	gR, sidGR := nodeClient(t, goURL, "r", "/")
	gX, sidGX := nodeClient(t, goURL, "x", "/")
	if len(sidGR) != 20 {
		t.Fatalf("Go socket id %q is not 20 characters", sidGR)
	}
	all := map[string]*peer{"node-r": nR, "go-r": gR, "go-x": gX}
	waitShardSubs(t, bus, room("r"), 2) // both nodes hold r
	waitShardSubs(t, bus, room("x"), 1)
	waitShardSubs(t, bus, room(sidGR), 0) // dynamic: socket ids are private
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	expect := sentinelExpect(t, root, nn, all, true)

	t.Run("serverCount", func(t *testing.T) { checkServerCounts(t, ctx, nn, srv, 2) })
	t.Run("broadcasts both ways", func(t *testing.T) { checkMixedBroadcasts(t, nn, root, gR, sidNR, sidGX, expect) })
	t.Run("rooms come and go on the Go node", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "socketsJoin", "rooms": []string{sidGX}, "to": []string{"r5"}})
		waitShardSubs(t, bus, room("r5"), 1)
		nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r5"}, "event": "in-r5"})
		expect("Node emit to a room made on Go", "in-r5", map[string]int{"go-x": 1})
		nn.do(t, map[string]any{"op": "socketsLeave", "rooms": []string{sidGX}, "to": []string{"r5"}})
		waitShardSubs(t, bus, room("r5"), 0)
	})
	t.Run("requests both ways", func(t *testing.T) { checkMixedRequests(t, ctx, nn, root, pings, sidNR, sidGR, expect) })
	t.Run("sioemit", func(t *testing.T) {
		mustSioemit(t, "--dialect", "node-sharded", "--channel", key, "--url", rc.URL(), "--to", "r", "cli", `"x"`)
		expect("sioemit", "cli", map[string]int{"node-r": 1, "go-r": 1})
	})
	t.Run("exactly once", func(t *testing.T) {
		// everything above, once more after a last round of sentinels
		expect("no late duplicates", "g2r", map[string]int{"node-r": 1, "go-r": 1})
		expect("no late duplicates", "n2r", map[string]int{"node-r": 1, "go-r": 1})
	})
	t.Run("the Go node's last socket in r leaves", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "disconnectSockets", "rooms": []string{sidGR}, "close": true})
		gR.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
		delete(all, "go-r")
		waitShardSubs(t, bus, room("r"), 1)
	})
}

// startShardedNodeMember starts a Node socket.io 4.8 server with
// createShardedAdapter in mode on rc, channel prefix key.
func startShardedNodeMember(t *testing.T, rc *testenv.RedisCluster, key string, mode nodesharded.Mode) *nodeClusterNode {
	t.Helper()
	p := startPeerWith(t, "node sharded cluster node ("+string(mode)+")", true, "node", "node/cluster-node.js", "0", key, strings.Join(rc.Addrs(), ","), string(mode))
	l := p.waitFor("ready", 30*time.Second, func(l map[string]any) bool { return l["type"] == "ready" })
	return &nodeClusterNode{p: p, url: fmt.Sprintf("http://127.0.0.1:%v", l["port"])}
}

// TestShardedModesMixedCluster: a Node createShardedAdapter server and a
// Go member in the same subscriptionMode on a 3-master Redis Cluster.
// dynamic-private: each node subscribes to the channel of each of its
// socket ids, and io.to(<socket id>).emit crosses both ways on it (from
// the servers and from sioemit --sharded-mode dynamic-private), exactly
// once; the channel goes when the socket does. static: no channel per room
// or socket id on either node, and the same emits cross on the main
// channel.
func TestShardedModesMixedCluster(t *testing.T) {
	needNode(t)
	rc := testenv.StartRedisCluster(t, 3, 0)
	for _, mode := range []nodesharded.Mode{nodesharded.DynamicPrivate, nodesharded.Static} {
		t.Run(string(mode), func(t *testing.T) {
			key := uniq("shmode")
			nn := startShardedNodeMember(t, rc, key, mode)
			bus := openBus(t, rc.URL())
			d, err := nodesharded.New(nodesharded.Options{Key: key, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			srv, goURL, _ := startGoMember(t, openBus(t, rc.URL()), d)
			main := key + "#/#"
			room := func(r string) string { return main + r + "#" }
			waitShardSubs(t, bus, main, 2)

			nR, sidNR := nodeClient(t, nn.url, "r", "/")
			gR, sidGR := nodeClient(t, goURL, "r", "/")
			all := map[string]*peer{"node-r": nR, "go-r": gR}
			perSocket, perRoom := 1, 2 // each node holds its own socket's room, both hold r
			if mode == nodesharded.Static {
				perSocket, perRoom = 0, 0
			}
			waitShardSubs(t, bus, room(sidGR), perSocket)
			waitShardSubs(t, bus, room(sidNR), perSocket)
			waitShardSubs(t, bus, room("r"), perRoom)
			expect := sentinelExpect(t, srv.Of("/"), nn, all, true)

			nn.do(t, map[string]any{"op": "emit", "rooms": []string{sidGR}, "event": "n-sid", "args": []any{"to go"}})
			expect("Node io.to(<Go socket id>).emit", "n-sid", map[string]int{"go-r": 1})
			if err := srv.Of("/").To(sidNR).Emit("g-sid", "to node"); err != nil {
				t.Fatal(err)
			}
			expect("Go To(<Node socket id>).Emit", "g-sid", map[string]int{"node-r": 1})
			nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r"}, "event": "n-room"})
			expect("Node room emit", "n-room", map[string]int{"node-r": 1, "go-r": 1})
			if err := srv.Of("/").To("r").Emit("g-room"); err != nil {
				t.Fatal(err)
			}
			expect("Go room emit", "g-room", map[string]int{"node-r": 1, "go-r": 1})
			for _, sid := range []string{sidGR, sidNR} {
				mustSioemit(t, "--dialect", "node-sharded", "--sharded-mode", string(mode), "--channel", key, "--url", rc.URL(), "--to", sid, "cli-sid", `"x"`)
			}
			expect("sioemit to each socket id", "cli-sid", map[string]int{"node-r": 1, "go-r": 1})
			expect("no late duplicates", "n-sid", map[string]int{"go-r": 1})
			expect("no late duplicates", "g-sid", map[string]int{"node-r": 1})

			waitShardSubs(t, bus, room(sidGR), perSocket) // still, after all that
			nn.do(t, map[string]any{"op": "disconnectSockets", "rooms": []string{sidGR}, "close": true})
			gR.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
			waitShardSubs(t, bus, room(sidGR), 0)
		})
	}
}
