package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/dialectname"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server/servertest"
)

// The failover tests (issue 11, compat case 4): two sioserver instances
// on a Redis Cluster or behind a Sentinel, a client of each in a room, an
// emitter sending numbered events to the room at a steady rate; then the
// master under the room's channel is killed (the cluster promotes its
// replica) or the sentinel fails over. The nodes and the emitter follow
// the new master by themselves: both clients receive again, nothing twice
// or out of order, and the clients' broadcasts cross the nodes again. The
// events lost during the switch and the silence it made are logged.
//
// Rerun with the figures: go test -run TestFailover -v ./cmd/sioserver

// tickEvery is the emitter's steady rate: an event every 10 ms.
const tickEvery = 10 * time.Millisecond

// afterSwitch is how many events, sent after the new master was seen,
// each client must receive (one second of traffic): the nodes settled.
const afterSwitch = 100

// steady sends tick 1, 2, 3, ... to a room through an emitter on its own
// bus, one every tickEvery, until halt; a failed Emit is counted (each
// has a deadline of a second) and the next number goes on.
type steady struct {
	em   *emitter.Emitter
	room string
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu                sync.Mutex
	sent              int // the last number sent (or tried)
	errs              int
	failed            map[int]bool // the numbers whose Emit failed
	firstErr, lastErr time.Time
	errMsg            string // the first error
}

func startSteady(t *testing.T, url, dialectName, key, room string) *steady {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bus, err := queue.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dialectname.New(dialectName, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &steady{em: emitter.New(bus, d), room: room, stop: make(chan struct{}), done: make(chan struct{}), failed: map[int]bool{}}
	t.Cleanup(func() {
		s.halt()
		s.em.Close()
		bus.Close()
	})
	go s.loop()
	return s
}

func (s *steady) loop() {
	defer close(s.done)
	tk := time.NewTicker(tickEvery)
	defer tk.Stop()
	for n := 1; ; n++ {
		select {
		case <-s.stop:
			return
		case <-tk.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.em.To(s.room).Emit(ctx, "tick", n)
		cancel()
		now := time.Now()
		s.mu.Lock()
		s.sent = n
		if err != nil {
			s.failed[n] = true
			if s.errs == 0 {
				s.firstErr, s.errMsg = now, err.Error()
			}
			s.errs++
			s.lastErr = now
		}
		s.mu.Unlock()
	}
}

// last returns the last number sent.
func (s *steady) last() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// halt stops the sender and waits for its last Emit (once).
func (s *steady) halt() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// report logs the failed publishes, which the emitter counted too.
func (s *steady) report(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.em.Stats().PublishErrs; got != uint64(s.errs) {
		t.Errorf("emitter Stats().PublishErrs = %d, %d Emit calls failed", got, s.errs)
	}
	if s.errs == 0 {
		t.Logf("emitter: %d sent, no publish error", s.sent)
		return
	}
	t.Logf("emitter: %d sent, %d publish errors over %s (first: %s)", s.sent, s.errs,
		s.lastErr.Sub(s.firstErr).Round(time.Millisecond), s.errMsg)
}

// peer is a client of one node: the ticks it receives (numbers and
// arrival times) and how many times each cross event came.
type peer struct {
	c     *servertest.Client
	mu    sync.Mutex
	n     []int
	at    []time.Time
	cross map[string]int
}

// watch records the tick and cross events of c in namespace /.
func watch(c *servertest.Client) *peer {
	p := &peer{c: c, cross: map[string]int{}}
	c.On("/", "tick", func(args []any) []any {
		n := -1
		if len(args) == 1 {
			if f, ok := args[0].(float64); ok {
				n = int(f)
			}
		}
		p.mu.Lock()
		p.n = append(p.n, n)
		p.at = append(p.at, time.Now())
		p.mu.Unlock()
		return nil
	})
	c.On("/", "cross", func(args []any) []any {
		p.mu.Lock()
		p.cross[fmt.Sprint(args...)]++
		p.mu.Unlock()
		return nil
	})
	return p
}

// max returns the highest number received so far (0 before any).
func (p *peer) max() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := 0
	for _, n := range p.n {
		m = max(m, n)
	}
	return m
}

func (p *peer) crossed(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cross[id]
}

// waitAbove waits until each client received a number above n.
func waitAbove(t *testing.T, n int, within time.Duration, what string, peers map[string]*peer) {
	t.Helper()
	deadline := time.Now().Add(within)
	for name, p := range peers {
		for p.max() <= n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: client %s received up to %d, not above %d within %s", what, name, p.max(), n, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// crossNodes checks that a broadcast of each client (publish, which its
// server re-broadcasts to the room on every node) reaches every client of
// the room, the other node's included; round names the events.
func crossNodes(t *testing.T, room, round string, peers map[string]*peer) {
	t.Helper()
	for from, p := range peers {
		id := from + "-" + round
		wantTrue(t, ack(t, p.c, "/", "publish", room, "cross", id))
		deadline := time.Now().Add(30 * time.Second)
		for to, other := range peers {
			for other.crossed(id) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the broadcast of %s (%s) does not reach %s within 30 s", from, id, to)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// check fails when a tick came twice or out of order or a cross event
// twice, and logs what was lost (the missing ranges) and the longest
// silence between two received ticks.
func (p *peer) check(t *testing.T, name string, sent int, s *steady) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, k := range p.cross {
		if k != 1 {
			t.Errorf("client %s: cross %s received %d times", name, id, k)
		}
	}
	var gaps []string
	var silence time.Duration
	prev, unpublished := 0, 0
	for i, n := range p.n {
		if n <= prev {
			t.Errorf("client %s: tick %d after %d: twice or out of order", name, n, prev)
		}
		if n > prev+1 {
			gaps = append(gaps, fmt.Sprintf("%d..%d", prev+1, n-1))
			for k := prev + 1; k < n; k++ {
				if s.failed[k] {
					unpublished++
				}
			}
		}
		if i > 0 {
			silence = max(silence, p.at[i].Sub(p.at[i-1]))
		}
		prev = n
	}
	lost := sent - len(p.n)
	t.Logf("client %s: received %d of %d ticks, lost %d (missing %s; %d of them failed to publish, %d published and not delivered), longest silence %s",
		name, len(p.n), sent, lost, strings.Join(gaps, ", "), unpublished, lost-unpublished, silence.Round(time.Millisecond))
}

// failover runs the scenario on url: two sioserver instances in dialect
// dialectName, a client of each in room, steady traffic, then doSwitch
// (which returns once the new master is in place), traffic for another
// afterSwitch events, broadcasts across the nodes, and the report.
//
// Each node must log moved, its own word that it followed the new master
// (rather than being carried there by chance: a sentinel closes the
// Pub/Sub connections of a demoted master, and go-redis alone reconnects
// them to the new master in the end, after seconds of silence).
func failover(t *testing.T, url, dialectName, key, room, moved string, ready func(), doSwitch func()) {
	flags := []string{"--url", url, "--dialect", dialectName, "--channel", key,
		"--allow-client-rooms", "--allow-client-publish"}
	peers := map[string]*peer{}
	nodes := map[string]*instance{}
	for _, name := range []string{"a", "b"} {
		nodes[name] = start(t, flags...)
		p := watch(dial(t, nodes[name], "/"))
		wantTrue(t, ack(t, p.c, "/", "join", room))
		peers[name] = p
	}
	if ready != nil {
		ready()
	}
	crossNodes(t, room, "before", peers)

	s := startSteady(t, url, dialectName, key, room)
	waitAbove(t, 50, 30*time.Second, "before the switch", peers)
	before := s.last()
	began := time.Now()
	doSwitch()
	promoted := s.last()
	t.Logf("switch: the new master in place %s after it began (ticks %d..%d sent meanwhile)",
		time.Since(began).Round(time.Millisecond), before+1, promoted)
	waitAbove(t, promoted+afterSwitch, 60*time.Second, "after the switch", peers)
	t.Logf("ticks sent after the switch reach both nodes %s after it began", time.Since(began).Round(time.Millisecond))
	crossNodes(t, room, "after", peers)
	for name, in := range nodes {
		if !strings.Contains(in.log.String(), moved) {
			t.Errorf("node %s did not log %q", name, moved)
		}
	}

	// the last tick: everything sent before it through the same channel
	// has arrived when it does
	s.halt()
	sent := s.last()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.em.To(room).Emit(ctx, "tick", sent+1)
	cancel()
	if err != nil {
		t.Fatalf("the last tick: %v", err)
	}
	waitAbove(t, sent, 30*time.Second, "the last tick", peers)
	s.report(t)
	for _, name := range []string{"a", "b"} {
		peers[name].check(t, name, sent+1, s)
	}
}

// TestFailoverRedisCluster: two sioserver --dialect node-sharded instances on a
// Redis Cluster of 3 masters and 3 replicas; the master of the room's
// channel slot is killed (SIGKILL) under steady traffic and its replica
// promoted by the cluster.
func TestFailoverRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 1)
	key := fmt.Sprintf("failover-%d", time.Now().UnixNano())
	const room = "r"
	channel := key + "#/#" + room + "#" // the room's sharded channel
	ready := func() { waitShardSub(t, c.URL(), channel, 2) }
	failover(t, c.URL(), "node-sharded", key, room, "moving the sharded subscriptions", ready, func() {
		victim := c.Master(channel)
		victim.Stop() // SIGKILL
		t.Logf("killed the master %s of %q", victim.Addr, channel)
		now := c.WaitNewMaster(channel, victim, 60*time.Second)
		t.Logf("%s took over", now.Addr)
	})
}

// TestFailoverSentinel: two sioserver instances on redis+sentinel://
// under steady traffic while SENTINEL FAILOVER promotes the replica; both
// nodes move their subscriptions to the new master by themselves. The
// node dialect subscribes to a pattern (key#/#*), the python dialect to
// one channel.
func TestFailoverSentinel(t *testing.T) {
	for _, dialectName := range []string{"node", "python"} {
		t.Run(dialectName, func(t *testing.T) {
			st := testenv.StartRedisSentinel(t)
			key := fmt.Sprintf("failover-%d", time.Now().UnixNano())
			// on the new master: both nodes' subscriptions
			subscribed := func(addr string) (string, bool) {
				if dialectName == "node" {
					n, err := patternSubscribers(addr)
					return fmt.Sprintf("%d connections with a pattern subscription (%v)", n, err), err == nil && n == 2
				}
				out, err := testenv.RedisCommand(addr, "PUBSUB", "NUMSUB", key)
				return fmt.Sprintf("PUBSUB NUMSUB %q (%v)", out, err), err == nil && out == key+" 2"
			}
			failover(t, st.URL(), dialectName, key, "r", "the sentinel switched masters", nil, func() {
				sentinelFailover(t, st, subscribed)
			})
		})
	}
}

// sentinelFailover asks the sentinel for a failover and waits until it
// names the new master and subscribed(new master) holds: the nodes' subscriptions
// moved there (on the old master, now a replica, they would hear only
// what replication brings).
func sentinelFailover(t *testing.T, st *testenv.RedisSentinel, subscribed func(addr string) (string, bool)) {
	t.Helper()
	old, err := st.CurrentMaster()
	if err != nil {
		t.Fatal(err)
	}
	st.Failover(t)
	var now string
	deadline := time.Now().Add(30 * time.Second)
	for now == "" || now == old {
		if time.Now().After(deadline) {
			t.Fatalf("the sentinel still names %s after 30 s", old)
		}
		time.Sleep(20 * time.Millisecond)
		now, _ = st.CurrentMaster()
	}
	t.Logf("the sentinel switched from %s to %s", old, now)
	deadline = time.Now().Add(30 * time.Second)
	for {
		what, ok := subscribed(now)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new master %s after 30 s: %s; want both nodes subscribed", now, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitShardSub waits until channel has n sharded subscribers.
func waitShardSub(t *testing.T, url, channel string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bus, err := queue.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	counter := bus.(interface {
		NumShardSub(ctx context.Context, channel string) (int, error)
	})
	for {
		got, err := counter.NumShardSub(ctx, channel)
		if err == nil && got == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("SHARDNUMSUB %s: %d, %v; want %d", channel, got, err, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// patternSubscribers counts the connections of the Redis server at addr
// that hold a pattern subscription (CLIENT LIST: psub above 0).
func patternSubscribers(addr string) (int, error) {
	out, err := testenv.RedisCommand(addr, "CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " psub=") && !strings.Contains(l, " psub=0 ") {
			n++
		}
	}
	return n, nil
}
