package server_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server"
)

var shardedCase = clusterCase{"redis-node-sharded", "redis", testenv.RedisAddr, "redis://" + testenv.RedisAddr + "/0",
	func(ch string) dialect.Dialect {
		d, err := nodesharded.New(nodesharded.Options{Key: ch})
		if err != nil {
			panic(err)
		}
		return d
	}}

// shardSubs is PUBSUB SHARDNUMSUB of channel.
func shardSubs(t *testing.T, n *clusterNode, channel string) int {
	t.Helper()
	c, ok := n.bus.(interface {
		NumShardSub(ctx context.Context, channel string) (int, error)
	})
	if !ok {
		t.Fatalf("%T cannot count sharded subscribers", n.bus)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.NumShardSub(ctx, channel)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitShardSubs waits until channel has want sharded subscribers.
func waitShardSubs(t *testing.T, n *clusterNode, channel string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := shardSubs(t, n, channel); got != want; got = shardSubs(t, n, channel) {
		if time.Now().After(deadline) {
			t.Fatalf("SHARDNUMSUB %s = %d, want %d", channel, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectShardedCounts checks how many times each node's client received
// event: counted once the sentinel (broadcast to room r) has arrived, then
// awaited, because channels are on their own connections (and, on a
// cluster, shards) with no order between them: an event on the main
// channel or another room's may come after a sentinel on r's. More than
// wanted fails at once.
func expectShardedCounts(t *testing.T, what string, nodes []*clusterNode, event, sentinel string, want ...int) {
	t.Helper()
	got := counts(t, nodes, event, sentinel)
	deadline := time.Now().Add(10 * time.Second)
	for i, n := range nodes {
		for got[i] < want[i] && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			for _, r := range n.c.Received("/") {
				if r.Event == event {
					got[i]++
				}
			}
		}
	}
	expectCounts(t, what, got, want...)
}

func allReady(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, n := range nodes {
		if err := n.srv.AdapterReady(ctx); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// Three Go servers on one Redis 7 with the node-sharded dialect (dynamic
// mode) act as one cluster: each subscribes (sharded) to the main channel,
// its response channel and the channel of each public room it holds, and
// drops a room's channel when its last socket there leaves; broadcasts,
// room operations, acknowledgements and requests cross nodes exactly once,
// and an emitter's acknowledgement requests are answered on its response
// channel.
func TestShardedClusterOfThreeNodes(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	key := fmt.Sprintf("sharded-%d", time.Now().UnixNano())
	nodes := startCluster(t, shardedCase, key)
	allReady(t, nodes)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	main, room := key+"#/#", key+"#/#r#"

	// subscriptions: main channel and room r on every node; no channel for
	// the socket ids (private rooms in dynamic mode)
	if got := shardSubs(t, a, main); got != 3 {
		t.Fatalf("SHARDNUMSUB main = %d, want 3", got)
	}
	if got := shardSubs(t, a, room); got != 3 {
		t.Fatalf("SHARDNUMSUB room r = %d, want 3", got)
	}
	if got := shardSubs(t, a, key+"#/#"+a.sid()+"#"); got != 0 {
		t.Fatalf("SHARDNUMSUB of a socket id = %d, want 0", got)
	}
	if len(a.sid()) != 20 {
		t.Fatalf("socket id %q is not 20 characters long", a.sid())
	}
	if n, err := a.srv.ServerCount(ctx); err != nil || n != 3 {
		t.Fatalf("ServerCount: %d, %v", n, err)
	}

	sentinel := func(from *clusterNode, name string) { t.Helper(); emitSentinel(t, from, name) }
	// a room broadcast (on the room's channel) reaches every node once
	if err := a.root().To("r").Emit("hello", 1, []byte{2}); err != nil {
		t.Fatal(err)
	}
	sentinel(a, "s1")
	expectShardedCounts(t, "room broadcast", nodes, "hello", "s1", 1, 1, 1)
	if err := c.root().Emit("all"); err != nil {
		t.Fatal(err)
	}
	sentinel(c, "s2")
	expectShardedCounts(t, "namespace emit", nodes, "all", "s2", 1, 1, 1)
	if err := b.root().To(c.sid()).Emit("private"); err != nil { // a socket id: main channel
		t.Fatal(err)
	}
	sentinel(b, "s3")
	expectShardedCounts(t, "to a socket id", nodes, "private", "s3", 0, 0, 1)

	// the emitter (uid "emitter"), also with an acknowledgement
	em := emitter.New(a.bus, shardedCase.dialect(key))
	defer em.Close()
	if err := em.To("r").Emit(ctx, "from-emitter"); err != nil {
		t.Fatal(err)
	}
	if err := em.To("r").Emit(ctx, "s4"); err != nil {
		t.Fatal(err)
	}
	expectShardedCounts(t, "emitter", nodes, "from-emitter", "s4", 1, 1, 1)
	if er, err := em.To("r").EmitWithAck(ctx, "ask-emitter"); err != nil || len(er) != 3 {
		t.Fatalf("emitter EmitWithAck: %v, %v", er, err)
	}

	// a room that comes and goes on one node: subscribed, then dropped
	r2 := key + "#/#r2#"
	if err := a.root().In(c.sid()).SocketsJoin("r2"); err != nil {
		t.Fatal(err)
	}
	waitShardSubs(t, a, r2, 1)
	allReady(t, nodes)
	if err := a.root().To("r2").Emit("in-r2"); err != nil {
		t.Fatal(err)
	}
	sentinel(a, "s5")
	expectShardedCounts(t, "sockets join", nodes, "in-r2", "s5", 0, 0, 1)
	if err := b.root().In(c.sid()).SocketsLeave("r2"); err != nil {
		t.Fatal(err)
	}
	waitShardSubs(t, a, r2, 0)

	// acknowledgements and requests
	if replies, err := a.root().To(b.sid()).EmitWithAck(ctx, "ask", "q"); err != nil || len(replies) != 1 {
		t.Fatalf("EmitWithAck to a sid on another node: %v, %v", replies, err)
	}
	if replies, err := b.root().To("r").EmitWithAck(ctx, "ask-all"); err != nil || len(replies) != 3 {
		t.Fatalf("broadcast EmitWithAck: %v, %v", replies, err)
	}
	fetched, err := a.root().FetchSockets(ctx)
	if err != nil || len(fetched) != 3 {
		t.Fatalf("FetchSockets: %v, %v", fetched, err)
	}
	var ids, want []string
	for _, f := range fetched {
		ids = append(ids, f.ID)
	}
	for _, n := range nodes {
		want = append(want, n.sid())
	}
	sort.Strings(ids)
	sort.Strings(want)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("FetchSockets ids %v, want %v", ids, want)
	}
	answers, err := a.root().ServerSideEmitWithAck(ctx, "ping", 7)
	sort.Slice(answers, func(i, j int) bool { return fmt.Sprint(answers[i]) < fmt.Sprint(answers[j]) })
	if err != nil || fmt.Sprint(answers) != "[pong from 1 [7] pong from 2 [7]]" {
		t.Fatalf("ServerSideEmitWithAck: %v, %v", answers, err)
	}
	if _, err := a.root().AllRooms(ctx); !errors.Is(err, dialect.ErrUnsupported) {
		t.Fatalf("AllRooms with node-sharded: %v", err)
	}

	// disconnect a socket of another node: its room r goes there
	if err := a.root().In(c.sid()).DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	if !c.c.WaitDisconnected("/", 10*time.Second) {
		t.Fatal("the socket on node C was not disconnected")
	}
	waitShardSubs(t, a, room, 2)
	for i, n := range nodes {
		if st := n.srv.QueueStats(); st.Malformed != 0 || st.PublishErrs != 0 {
			t.Fatalf("node %d stats %+v", i, st)
		}
	}
	wanted, live := server.MemberSubscriptions(c.srv)
	if wanted != 1 || live != 1 {
		t.Fatalf("node C holds %d/%d subscriptions after its last socket left, want 1/1 (the namespace's)", wanted, live)
	}
}
