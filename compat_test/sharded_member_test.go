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
	nl := startPeerWith(t, "node sharded cluster node", true, "node", "node/cluster-node.js", "0", key, strings.Join(rc.Addrs(), ","))
	l := nl.waitFor("ready", 30*time.Second, func(l map[string]any) bool { return l["type"] == "ready" })
	nn := &nodeClusterNode{p: nl, url: fmt.Sprintf("http://127.0.0.1:%v", l["port"])}
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
