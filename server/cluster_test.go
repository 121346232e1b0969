package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/siobridge/siobridge/adapter/amqp"
	_ "github.com/siobridge/siobridge/adapter/nats"
	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// clusterCase is one bus and dialect a three-node cluster runs on.
type clusterCase struct {
	name, broker, addr, url string
	// dialect returns the value every node (and the emitter) is given:
	// the default constructor, whose identity is an emitter's.
	dialect func(channel string) dialect.Dialect
}

var clusterCases = []clusterCase{
	{"redis-python", "redis", testenv.RedisAddr, "redis://" + testenv.RedisAddr + "/0",
		func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }},
	{"amqp-python", "rabbitmq", testenv.AMQPAddr, "amqp://guest:guest@" + testenv.AMQPAddr + "/",
		func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }},
	{"nats-python", "nats", testenv.NATSAddr, "nats://" + testenv.NATSAddr,
		func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }},
	{"redis-python-pickle", "redis", testenv.RedisAddr, "redis://" + testenv.RedisAddr + "/0",
		func(ch string) dialect.Dialect { return python.NewPickle(python.Options{Channel: ch}) }},
	{"redis-node", "redis", testenv.RedisAddr, "redis://" + testenv.RedisAddr + "/0",
		func(ch string) dialect.Dialect { return node.New(node.Options{Key: ch}) }},
	{"redis-node-streams", "redis", testenv.RedisAddr, "redis://" + testenv.RedisAddr + "/0",
		func(ch string) dialect.Dialect {
			d, err := nodestreams.New(nodestreams.Options{Key: ch, StreamName: ch})
			if err != nil {
				panic(err)
			}
			return d
		}},
}

// node is one server of a test cluster with one client connected to it.
type clusterNode struct {
	srv *server.Server
	bus queue.Bus
	c   *servertest.Client
}

func (n *clusterNode) root() *server.Namespace { return n.srv.Of("/") }
func (n *clusterNode) sid() string             { return n.c.SID("/") }

// startCluster starts three servers, each with its own bus connection, on
// a channel of their own, and one client per server in room "r".
func startCluster(t *testing.T, cc clusterCase, channel string) []*clusterNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := cc.dialect(channel)
	var nodes []*clusterNode
	for range 3 {
		bus, err := queue.Open(ctx, cc.url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() })
		srv := newServer(t, server.WithAdapter(bus, d))
		srv.On("/", "join", func(s *server.Socket, room string) bool { s.Join(room); return true })
		srv.On("/", "relay", func(s *server.Socket, room, event string) error { return s.To(room).Emit(event) })
		i := len(nodes)
		srv.Of("/").OnServerSideEmit("ping", func(args []any) any { return fmt.Sprint("pong from ", i, args) })
		if err := srv.AdapterReady(ctx); err != nil {
			t.Fatal(err)
		}
		if !srv.BusConnected() {
			t.Fatal("BusConnected is false once the adapter is ready")
		}
		c := client(t, srv, "/", servertest.Options{})
		if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &clusterNode{srv: srv, bus: bus, c: c})
	}
	return nodes
}

// counts waits for sentinel on every client and returns, per client, how
// many times event arrived before it.
func counts(t *testing.T, nodes []*clusterNode, event, sentinel string) []int {
	t.Helper()
	out := make([]int, len(nodes))
	for i, n := range nodes {
		got, err := n.c.WaitFor("/", sentinel, 10*time.Second)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		for _, r := range got {
			if r.Event == event {
				out[i]++
			}
		}
	}
	return out
}

func expectCounts(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: deliveries per node %v, want %v", what, got, want)
	}
}

// Three Go servers, each with its own connection to a real broker, act as
// one: every broadcast and room operation made on one node reaches the
// matching clients of every node exactly once; acknowledgements cross
// nodes; an emitter built with the dialect's default constructor (whose
// identity the servers must not take) is heard and answered.
func TestClusterOfThreeNodes(t *testing.T) {
	for _, cc := range clusterCases {
		t.Run(cc.name, func(t *testing.T) {
			testenv.Need(t, cc.broker, cc.addr)
			channel := fmt.Sprintf("cluster-%s-%d", cc.name, time.Now().UnixNano())
			nodes := startCluster(t, cc, channel)
			a, b, c := nodes[0], nodes[1], nodes[2]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sentinel := func(from *clusterNode, name string) { t.Helper(); emitSentinel(t, from, name) }

			// a room broadcast from A reaches A, B and C once each
			if err := a.root().To("r").Emit("hello", 1, []byte{2}); err != nil {
				t.Fatal(err)
			}
			sentinel(a, "s1")
			expectCounts(t, "room broadcast", counts(t, nodes, "hello", "s1"), 1, 1, 1)

			// socket.to(room).emit on B: everyone but the sender
			if _, err := b.c.EmitWithAck("/", 5*time.Second, "relay", "r", "relayed"); err != nil {
				t.Fatal(err)
			}
			sentinel(b, "s2")
			expectCounts(t, "socket.to(room)", counts(t, nodes, "relayed", "s2"), 1, 0, 1)

			// except a sid of another node
			if err := a.root().To("r").Except(c.sid()).Emit("except"); err != nil {
				t.Fatal(err)
			}
			sentinel(a, "s3")
			expectCounts(t, "except", counts(t, nodes, "except", "s3"), 1, 1, 0)

			// a namespace-wide emit from C
			if err := c.root().Emit("all"); err != nil {
				t.Fatal(err)
			}
			sentinel(c, "s4")
			expectCounts(t, "namespace emit", counts(t, nodes, "all", "s4"), 1, 1, 1)

			// garbage on the cluster's channel is counted and dropped
			probe, err := cc.dialect(channel).Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "x"})
			if err != nil {
				t.Fatal(err)
			}
			garbage := probe[0]
			garbage.Data = []byte("\x00garbage")
			if garbage.Stream { // an entry whose data is neither JSON nor base64
				garbage.Data = queue.AppendStreamField(queue.AppendStreamField(queue.AppendStreamField(nil,
					"nsp", "/"), "type", "3"), "data", "\x00garbage")
			}
			if err := a.bus.Publish(ctx, garbage); err != nil {
				t.Fatal(err)
			}
			sentinel(a, "s4b")
			counts(t, nodes, "", "s4b")
			// node A delivers its own sentinel without the bus, so the
			// garbage may still be on its way there: wait for the count
			for i, n := range nodes {
				for deadline := time.Now().Add(10 * time.Second); n.srv.QueueStats().Malformed != 1; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("node %d: stats %+v after garbage", i, n.srv.QueueStats())
					}
				}
			}

			// the emitter, with the default constructor's identity
			em := emitter.New(a.bus, cc.dialect(channel))
			defer em.Close()
			if err := em.To("r").Emit(ctx, "from-emitter", "x"); err != nil {
				t.Fatal(err)
			}
			if err := em.To("r").Emit(ctx, "s5"); err != nil {
				t.Fatal(err)
			}
			expectCounts(t, "emitter", counts(t, nodes, "from-emitter", "s5"), 1, 1, 1)

			// SocketsJoin / SocketsLeave of a socket on another node
			if cc.name == "redis-python-pickle" { // python-socketio < 5.10 has no enter_room
				if err := a.root().In(c.sid()).SocketsJoin("r2"); !errors.Is(err, dialect.ErrUnsupported) {
					t.Fatalf("SocketsJoin with python-pickle: %v", err)
				}
			} else if err := a.root().In(c.sid()).SocketsJoin("r2"); err != nil {
				t.Fatal(err)
			}
			if err := a.root().To("r2").Emit("in-r2"); err != nil {
				t.Fatal(err)
			}
			sentinel(a, "s6")
			if cc.name != "redis-python-pickle" {
				expectCounts(t, "sockets join", counts(t, nodes, "in-r2", "s6"), 0, 0, 1)
			} else {
				expectCounts(t, "sockets join refused", counts(t, nodes, "in-r2", "s6"), 0, 0, 0)
			}
			if err := b.root().In(c.sid()).SocketsLeave("r2"); err != nil && cc.name != "redis-python-pickle" {
				t.Fatal(err)
			}
			if err := b.root().To("r2").Emit("in-r2"); err != nil {
				t.Fatal(err)
			}
			sentinel(b, "s7")
			expectCounts(t, "sockets leave", counts(t, nodes, "in-r2", "s7"), 0, 0, 0)

			// the requests of the node dialect; python peers have none
			if strings.HasPrefix(cc.name, "redis-node") {
				checkNodeRequests(t, ctx, nodes, cc.name == "redis-node")
			} else if _, err := a.root().FetchSockets(ctx); !errors.Is(err, dialect.ErrUnsupported) {
				t.Fatalf("FetchSockets with a python dialect: %v", err)
			}

			// acknowledgements: node A asks a client of node B
			replies, err := a.root().To(b.sid()).EmitWithAck(ctx, "ask", "q")
			if err != nil || len(replies) != 1 {
				t.Fatalf("EmitWithAck to a sid on another node: %v, %v", replies, err)
			}
			// the emitter asks a client of node C; C answers
			er, err := em.To(c.sid()).EmitWithAck(ctx, "ask-emitter")
			if err != nil || len(er) != 1 {
				t.Fatalf("emitter EmitWithAck: %v, %v", er, err)
			}
			if strings.HasPrefix(cc.name, "redis-node") { // a broadcast with acks: every client of every node
				replies, err := b.root().To("r").EmitWithAck(ctx, "ask-all")
				if err != nil || len(replies) != 3 {
					t.Fatalf("broadcast EmitWithAck: %v, %v", replies, err)
				}
			}
			sentinel(a, "s8")
			expectCounts(t, "asked once", counts(t, nodes, "ask", "s8"), 0, 1, 0)

			// close the room everywhere
			if err := a.root().CloseRoom("r"); err != nil { // A emits next: its own order holds on every node
				t.Fatal(err)
			}
			if err := a.root().To("r").Emit("closed"); err != nil {
				t.Fatal(err)
			}
			if err := a.root().Emit("s9"); err != nil {
				t.Fatal(err)
			}
			expectCounts(t, "close room", counts(t, nodes, "closed", "s9"), 0, 0, 0)

			// disconnect a socket of another node
			if err := a.root().In(c.sid()).DisconnectSockets(false); err != nil {
				t.Fatal(err)
			}
			if !c.c.WaitDisconnected("/", 10*time.Second) {
				t.Fatal("the socket on node C was not disconnected")
			}
			if !b.c.IsConnected("/") || !a.c.IsConnected("/") {
				t.Fatal("other sockets were disconnected")
			}
			for i, n := range nodes {
				if st := n.srv.QueueStats(); st.Malformed != 1 || st.PublishErrs != 0 {
					t.Fatalf("node %d stats %+v", i, st)
				}
			}
		})
	}
}

// checkNodeRequests asks the cluster what Node servers ask each other
// (allRooms: the classic adapter's request for the rooms; the
// ClusterAdapter protocol has none).
func checkNodeRequests(t *testing.T, ctx context.Context, nodes []*clusterNode, allRooms bool) {
	t.Helper()
	a, b, c := nodes[0], nodes[1], nodes[2]
	if n, err := a.srv.ServerCount(ctx); err != nil || n != 3 {
		t.Fatalf("ServerCount: %d, %v", n, err)
	}
	fetched, err := a.root().FetchSockets(ctx)
	if err != nil || len(fetched) != 3 {
		t.Fatalf("FetchSockets: %v, %v", fetched, err)
	}
	var ids []string
	for _, f := range fetched {
		ids = append(ids, f.ID)
		if f.ID == c.sid() {
			if !slices.Contains(f.Rooms, "r") || !strings.HasPrefix(fmt.Sprint(f.Handshake["url"]), "/socket.io/") {
				t.Fatalf("socket of node C: %+v", f)
			}
		}
	}
	want := []string{a.sid(), b.sid(), c.sid()}
	sort.Strings(ids)
	sort.Strings(want)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("FetchSockets ids %v, want %v", ids, want)
	}
	inR, err := b.root().To("r").Except(a.sid()).FetchSockets(ctx)
	if err != nil || len(inR) != 2 {
		t.Fatalf("FetchSockets in r except A's: %v, %v", inR, err)
	}
	rooms, err := b.root().AllRooms(ctx)
	if !allRooms {
		if !errors.Is(err, dialect.ErrUnsupported) {
			t.Fatalf("AllRooms: %v, %v; want unsupported", rooms, err)
		}
	} else if err != nil || !slices.Contains(rooms, "r") {
		t.Fatalf("AllRooms: %v, %v", rooms, err)
	}
	for _, id := range want {
		if allRooms && !slices.Contains(rooms, id) {
			t.Fatalf("AllRooms %v lacks %s", rooms, id)
		}
	}
	answers, err := a.root().ServerSideEmitWithAck(ctx, "ping", 7)
	sort.Slice(answers, func(i, j int) bool { return fmt.Sprint(answers[i]) < fmt.Sprint(answers[j]) })
	if err != nil || fmt.Sprint(answers) != "[pong from 1 [7] pong from 2 [7]]" {
		t.Fatalf("ServerSideEmitWithAck: %v, %v", answers, err)
	}
}

// A Go node on Redis with the node dialect answers what a Node
// @socket.io/redis-adapter 8 peer asks, in the peer's bytes, on the shared
// response channel: ALL_ROOMS, REMOTE_FETCH, SERVER_SIDE_EMIT with ack,
// BROADCAST with ack (a client count, then each client's ack), and
// performs its REMOTE_JOIN.
func TestClusterAnswersNodePeers(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := fmt.Sprintf("nodepeer-%d", time.Now().UnixNano())
	nodes := startCluster(t, clusterCases[4], key)
	peer := node.New(node.Options{Key: key, UID: "BLEWZ2"}) // a Node server's identity
	var sink testenv.Sink
	sub, err := nodes[0].bus.Subscribe(ctx, queue.Subscription{Channels: []string{key + "-response#/#"}}, sink.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	request := key + "-request#/#"
	publish := func(data []byte) {
		t.Helper()
		if err := nodes[0].bus.Publish(ctx, queue.Message{Channel: request, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	publish([]byte(`{"uid":"BLEWZ2","requestId":"Uamw3m","type":1}`))
	publish([]byte(`{"uid":"BLEWZ2","requestId":"f1","type":5,"opts":{"rooms":["r"],"except":[]}}`))
	publish([]byte(`{"uid":"BLEWZ2","requestId":"s1","type":6,"data":["ping",1]}`))
	ask, err := peer.Encode(&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"r"}}, Event: "ask", Args: []any{7},
		Ack: &op.AckRequest{ID: "5luXPe", Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	publish(ask[0].Data)
	// every node answers each request once: 3 x (rooms, sockets, server-side emit, count, ack)
	got := sink.Wait(t, 15, 10*time.Second)
	answers := map[string]int{}
	for i, n := range nodes {
		sid := n.sid()
		rooms := []string{"r", sid}
		sort.Strings(rooms)
		for _, want := range []string{
			fmt.Sprintf(`{"requestId":"Uamw3m","rooms":["%s","%s"]}`, rooms[0], rooms[1]),
			fmt.Sprintf(`{"type":6,"requestId":"s1","data":"pong from %d [1]"}`, i),
			fmt.Sprintf(`{"requestId":"f1","sockets":[{"id":"%s","handshake":{"address":"127.0.0.1","auth":{},`, sid),
		} {
			answers[want] = 0
		}
	}
	count := `{"type":8,"requestId":"5luXPe","clientCount":1}`
	// BROADCAST_ACK {type: 9, requestId, packet: nil}: the test client acks with nothing
	ack := "\x83\xa4type\x09\xa9requestId\xa65luXPe\xa6packet\xc0"
	counts, acks := 0, 0
	for _, m := range got {
		for want := range answers {
			if strings.HasPrefix(string(m.Data), want) {
				answers[want]++
			}
		}
		switch string(m.Data) {
		case count:
			counts++
		case ack:
			acks++
		}
	}
	for want, n := range answers {
		if n != 1 {
			t.Errorf("answer %s came %d times", want, n)
		}
	}
	if counts != 3 || acks != 3 {
		t.Errorf("%d client counts and %d acks, want 3 and 3: %+v", counts, acks, got)
	}
	// REMOTE_JOIN by opts, then a broadcast to the new room, from the peer
	publish([]byte(`{"uid":"BLEWZ2","type":2,"opts":{"rooms":["r"],"except":[]},"rooms":["joined"]}`))
	em, _ := peer.Encode(&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"joined"}}, Event: "in-joined"})
	if err := nodes[0].bus.Publish(ctx, em...); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if _, err := n.c.WaitFor("/", "in-joined", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// emitSentinel broadcasts the event name to room r from node from: after
// it, counts(nodes, event, name) sees what came before on that way.
func emitSentinel(t *testing.T, from *clusterNode, name string) {
	t.Helper()
	if err := from.root().To("r").Emit(name); err != nil {
		t.Fatal(err)
	}
}
