package compat_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/internal/testenv"
)

// startStreamsNode starts a Node socket.io 4.8 server with
// @socket.io/redis-streams-adapter (createAdapter, streamName and
// channelPrefix key) on the Redis at addr; recovery > 0 turns on its
// connectionStateRecovery with that maxDisconnectionDuration.
func startStreamsNode(t *testing.T, addr, key string, recovery time.Duration) *nodeClusterNode {
	t.Helper()
	argv := []string{"node", "node/cluster-node.js", "0", key, "streams:redis://" + addr}
	if recovery > 0 {
		argv = append(argv, fmt.Sprint(recovery.Milliseconds()))
	}
	nl := startPeerWith(t, "node streams cluster node", true, argv...)
	l := nl.waitFor("ready", 30*time.Second, func(l map[string]any) bool { return l["type"] == "ready" })
	return &nodeClusterNode{p: nl, url: fmt.Sprintf("http://127.0.0.1:%v", l["port"])}
}

// streamsDialect is the node-streams dialect of a cluster of key.
func streamsDialect(t *testing.T, key string) *nodestreams.Dialect {
	t.Helper()
	d, err := nodestreams.New(nodestreams.Options{Key: key, StreamName: key})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStreamsMixedCluster (issue #11, compat test 2, first half): a Node
// socket.io 4.8 server with @socket.io/redis-streams-adapter 0.3 and our
// server (WithAdapter, node-streams dialect) on one private Redis act as
// one cluster: broadcasts both ways (stream entries) reach each matching
// client exactly once, socketsJoin / socketsLeave / disconnectSockets
// cross, each node's fetchSockets / serverSideEmitWithAck / emitWithAck /
// serverCount (Pub/Sub) covers the other, and sioemit --dialect
// node-streams reaches the clients of both.
func TestStreamsMixedCluster(t *testing.T) {
	needNode(t)
	rs := testenv.StartRedis(t)
	key := uniq("stm")
	nn := startStreamsNode(t, rs.Addr, key, 0)
	srv, goURL, pings := startGoMember(t, openBus(t, "redis://"+rs.Addr), streamsDialect(t, key))
	root := srv.Of("/")

	nR, sidNR := nodeClient(t, nn.url, "r", "/")
	gR, sidGR := nodeClient(t, goURL, "r", "/")
	gX, sidGX := nodeClient(t, goURL, "x", "/")
	all := map[string]*peer{"node-r": nR, "go-r": gR, "go-x": gX}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	expect := sentinelExpect(t, root, nn, all, false)

	t.Run("serverCount", func(t *testing.T) { checkServerCounts(t, ctx, nn, srv, 2) })
	t.Run("broadcasts both ways", func(t *testing.T) {
		checkMixedBroadcasts(t, nn, root, gR, sidNR, sidGX, expect)
		if l := nR.events("g2r")[0]; !reflect.DeepEqual(l["args"], []any{"hi", map[string]any{"$binary": "Aw=="}}) {
			t.Fatalf("Node-node client received %#v", l["args"]) // the binary entry: base64 msgpack
		}
		if err := root.Except(sidGX).Emit("g-except"); err != nil {
			t.Fatal(err)
		}
		expect("Go emit to all but one", "g-except", map[string]int{"node-r": 1, "go-r": 1})
	})
	t.Run("room operations both ways", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "socketsJoin", "rooms": []string{sidGX}, "to": []string{"r5"}})
		nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r5"}, "event": "in-r5"}) // after the join, in the stream
		expect("Node join of a Go socket", "in-r5", map[string]int{"go-x": 1})
		if err := root.In(sidNR).SocketsJoin("r6"); err != nil {
			t.Fatal(err)
		}
		if err := root.To("r6").Emit("in-r6"); err != nil {
			t.Fatal(err)
		}
		expect("Go join of a Node socket", "in-r6", map[string]int{"node-r": 1})
		nn.do(t, map[string]any{"op": "socketsLeave", "rooms": []string{sidGX}, "to": []string{"r5"}})
		nn.do(t, map[string]any{"op": "emit", "rooms": []string{"r5"}, "event": "in-r5"})
		if err := root.In(sidNR).SocketsLeave("r6"); err != nil {
			t.Fatal(err)
		}
		if err := root.To("r6").Emit("in-r6"); err != nil {
			t.Fatal(err)
		}
		expect("leaves both ways", "in-r5", map[string]int{"go-x": 1})
		expect("leaves both ways", "in-r6", map[string]int{"node-r": 1})
	})
	t.Run("requests both ways", func(t *testing.T) { checkMixedRequests(t, ctx, nn, root, pings, sidNR, sidGR, expect) })
	t.Run("sioemit", func(t *testing.T) {
		url := "redis://" + rs.Addr
		mustSioemit(t, "--dialect", "node-streams", "--channel", key, "--url", url, "--to", "r", "cli", `"x"`)
		expect("sioemit", "cli", map[string]int{"node-r": 1, "go-r": 1})
		batch := `{"event":"b1","to":["r"]}` + "\n" + `{"event":"b2","to":["` + sidGX + `"]}` + "\n"
		mustSioemitStdin(t, batch, "--dialect", "node-streams", "--channel", key, "--url", url, "--batch", "-")
		expect("sioemit --batch", "b1", map[string]int{"node-r": 1, "go-r": 1})
		expect("sioemit --batch", "b2", map[string]int{"go-x": 1})
		out := mustSioemit(t, "--dialect", "node-streams", "--channel", key, "--url", url, "--to", "r", "--ack", "ask", `"e"`)
		if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2 {
			t.Fatalf("sioemit --ack printed %d replies:\n%s", n, out)
		}
	})
	t.Run("exactly once", func(t *testing.T) {
		expect("no late duplicates", "g2r", map[string]int{"node-r": 1, "go-r": 1})
		expect("no late duplicates", "n2r", map[string]int{"node-r": 1, "go-r": 1})
	})
	t.Run("disconnectSockets both ways", func(t *testing.T) {
		nn.do(t, map[string]any{"op": "disconnectSockets", "rooms": []string{sidGR}, "close": true})
		gR.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
		if err := root.In(sidNR).DisconnectSockets(false); err != nil {
			t.Fatal(err)
		}
		nR.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
		if st := srv.QueueStats(); st.Malformed != 0 || st.PublishErrs != 0 {
			t.Fatalf("Go node stats %+v", st)
		}
	})
}
