package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

func TestParseCluster(t *testing.T) {
	o, err := parseCluster(false, "u:p%40ss@h1:7000,h2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Username != "u" || o.Password != "p@ss" || len(o.Addrs) != 2 || o.Addrs[0] != "h1:7000" || o.Addrs[1] != "h2:6379" || o.TLSConfig != nil {
		t.Fatalf("got %+v", o)
	}
	if o, err := parseCluster(true, "h1:7000/"); err != nil || o.TLSConfig == nil {
		t.Fatalf("rediss+cluster: %+v %v", o, err)
	}
	for _, bad := range []string{"", "h1:7000/3", "h1:7000?x=1", "u:p@"} {
		if _, err := parseCluster(false, bad); err == nil {
			t.Errorf("parseCluster(%q) accepted", bad)
		}
	}
	if _, err := NewClient("redis+cluster://h1:7000/2"); err == nil {
		t.Fatal("NewClient accepted a cluster URL with a database")
	}
}

// counter records the integers published as message data, in order.
type counter struct {
	mu  sync.Mutex
	got []int
}

func (c *counter) handle(m queue.Message) {
	n, err := strconv.Atoi(string(m.Data))
	if err != nil {
		return
	}
	c.mu.Lock()
	c.got = append(c.got, n)
	c.mu.Unlock()
}

func (c *counter) snapshot() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.got...)
}

// waitFor waits until cond holds; the test fails after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// traffic is a publisher sending 1, 2, 3, ... on a channel every few
// milliseconds, through one bus, to a subscriber on another.
type traffic struct {
	t      *testing.T
	got    counter
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	n      int
	errs   int
	closed bool
}

// startTraffic opens two buses on url, subscribes one to ch and publishes
// through the other until finish (on sharded Pub/Sub when sharded); it
// returns once 50 messages arrived.
func startTraffic(t *testing.T, url, ch string, sharded bool) *traffic {
	pub, sub := open(t, url), open(t, url)
	tr := &traffic{t: t, stop: make(chan struct{}), done: make(chan struct{})}
	s, err := sub.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}, Sharded: sharded}, tr.got.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	go func() {
		defer close(tr.done)
		for i := 1; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			err := pub.Publish(ctx, queue.Message{Channel: ch, Data: []byte(strconv.Itoa(i)), Sharded: sharded})
			cancel()
			tr.mu.Lock()
			tr.n = i
			if err != nil {
				tr.errs++
			}
			tr.mu.Unlock()
		}
	}()
	t.Cleanup(tr.halt)
	waitFor(t, 10*time.Second, "traffic before the failover", func() bool { return len(tr.got.snapshot()) >= 50 })
	return tr
}

func (tr *traffic) published() int { tr.mu.Lock(); defer tr.mu.Unlock(); return tr.n }

func (tr *traffic) halt() {
	tr.mu.Lock()
	closed := tr.closed
	tr.closed = true
	tr.mu.Unlock()
	if !closed {
		close(tr.stop)
		<-tr.done
	}
}

// resumed waits until the subscriber receives messages published 200
// after the at-th.
func (tr *traffic) resumed(at int, within time.Duration) {
	tr.t.Helper()
	waitFor(tr.t, within, "messages after the failover", func() bool {
		g := tr.got.snapshot()
		return len(g) > 0 && g[len(g)-1] > at+200
	})
}

// finish stops the publisher, checks that nothing came twice or out of
// order and logs what was lost.
func (tr *traffic) finish(what string) {
	tr.t.Helper()
	tr.halt()
	time.Sleep(500 * time.Millisecond) // the last publishes in flight
	total := tr.published()
	lost := checkOrdered(tr.t, tr.got.snapshot(), total)
	tr.mu.Lock()
	errs := tr.errs
	tr.mu.Unlock()
	tr.t.Logf("%s: %d published, %d publish errors, %d lost during the switch", what, total, errs, lost)
}

// checkOrdered fails when got is not increasing (a message twice or out
// of order) and returns how many of 1..published are missing.
func checkOrdered(t *testing.T, got []int, published int) (lost int) {
	t.Helper()
	prev := 0
	for _, g := range got {
		if g > prev+1 {
			t.Logf("gap: %d..%d missing", prev+1, g-1)
		}
		prev = g
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("message %d after %d: out of order or twice (at %d of %v)", got[i], got[i-1], i, got[:min(len(got), i+20)])
		}
	}
	return published - len(got)
}

// TestRedisClusterBus: a bus given one node of a 3-master Redis Cluster
// discovers the others; a subscriber on a bus seeded with another node
// receives every message, in order.
func TestRedisClusterBus(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	pub := open(t, "redis+cluster://"+c.Nodes[0].Addr)
	sub := open(t, "redis+cluster://"+c.Nodes[2].Addr)
	if !pub.Connected() {
		t.Fatal("cluster bus not connected")
	}
	var got counter
	s, err := sub.Subscribe(context.Background(), queue.Subscription{Channels: []string{"flask-socketio"}}, got.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 500
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if err := pub.Publish(ctx, queue.Message{Channel: "flask-socketio", Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "500 messages", func() bool { return len(got.snapshot()) == n })
	if lost := checkOrdered(t, got.snapshot(), n); lost != 0 {
		t.Fatalf("%d lost", lost)
	}
}

// TestRedisClusterMasterKilled: under steady traffic (classic, then
// sharded Pub/Sub), the master that serves the subscription is killed;
// its replica takes over, the publisher and the subscriber follow it, and
// nothing comes twice or out of order. The messages lost during the
// switch are reported.
func TestRedisClusterMasterKilled(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(map[bool]string{false: "classic", true: "sharded"}[sharded], func(t *testing.T) {
			c := testenv.StartRedisCluster(t, 3, 1)
			const ch = "socket.io#/#"
			tr := startTraffic(t, c.URL(), ch, sharded)
			victim := c.Master(ch) // the subscription's connection goes to the channel's slot master
			victim.Stop()
			killedAt := tr.published()
			t.Logf("killed master %s after message %d", victim.Addr, killedAt)
			tr.resumed(killedAt, 60*time.Second)
			tr.finish("Redis Cluster master killed")
		})
	}
}

// TestSentinelFailover: a bus on redis+sentinel:// under steady traffic
// while SENTINEL FAILOVER promotes the replica: both the publisher and
// the subscriber follow the new master by themselves.
func TestSentinelFailover(t *testing.T) {
	st := testenv.StartRedisSentinel(t)
	const ch = "flask-socketio"
	tr := startTraffic(t, st.URL(), ch, false)
	before, err := st.CurrentMaster()
	if err != nil {
		t.Fatal(err)
	}
	st.Failover(t)
	at := tr.published()
	waitFor(t, 30*time.Second, "the sentinel to switch masters", func() bool {
		now, err := st.CurrentMaster()
		return err == nil && now != before
	})
	tr.resumed(at, 30*time.Second)
	// the subscription moved to the new master (on the old one it would
	// hear only what replication brings, seconds late)
	now, _ := st.CurrentMaster()
	if out, err := testenv.RedisCommand(now, "PUBSUB", "NUMSUB", ch); err != nil || out != ch+" 1" {
		t.Fatalf("new master %s: PUBSUB NUMSUB %q %v, want 1 subscriber", now, out, err)
	}
	tr.finish("SENTINEL FAILOVER")
}

// TestSentinelPublishNotRepeated: a publish cut off after Redis executed
// part of it (its connection killed while Redis works through the
// pipeline, as a Sentinel does to the clients of a demoted master) fails,
// and is not sent again: go-redis retried the whole pipeline on a read
// error, and the subscribers got its first messages twice.
func TestSentinelPublishNotRepeated(t *testing.T) {
	st := testenv.StartRedisSentinel(t)
	master, err := st.CurrentMaster()
	if err != nil {
		t.Fatal(err)
	}
	checkPublishNotRepeated(t, st.URL(), []string{master})
}

// checkPublishNotRepeated publishes big batches on the bus of url and
// kills the clients of the servers at addrs once the first message
// arrives; no message may arrive twice.
func checkPublishNotRepeated(t *testing.T, url string, addrs []string) {
	b := open(t, url)
	ch := uniq(t)
	var mu sync.Mutex
	seen := map[string]int{}
	first := make(chan struct{}, 1)
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, func(m queue.Message) {
		mu.Lock()
		seen[string(m.Data)]++
		mu.Unlock()
		select {
		case first <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 20000
	payload := strings.Repeat("x", 200)
	interrupted := 0
	for attempt := 0; attempt < 10 && interrupted < 2; attempt++ {
		mu.Lock()
		clear(seen)
		mu.Unlock()
		for len(first) > 0 {
			<-first
		}
		msgs := make([]queue.Message, n)
		for i := range msgs {
			msgs[i] = queue.Message{Channel: ch, Data: []byte(fmt.Sprintf("%d-%d-%s", attempt, i, payload))}
		}
		done := make(chan error, 1)
		go func() { done <- b.Publish(context.Background(), msgs...) }()
		select {
		case <-first: // Redis is executing the pipeline: cut it off
			for _, a := range addrs {
				testenv.RedisCommand(a, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
			}
		case err := <-done:
			t.Fatalf("the publish ended before a message arrived: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no message arrived")
		}
		pubErr := <-done
		time.Sleep(300 * time.Millisecond) // what was sent twice arrives
		mu.Lock()
		got, twice := len(seen), 0
		for _, k := range seen {
			if k > 1 {
				twice++
			}
		}
		mu.Unlock()
		if twice > 0 {
			t.Fatalf("attempt %d: %d messages delivered twice (publish error: %v)", attempt, twice, pubErr)
		}
		if pubErr != nil || got < n {
			interrupted++ // the kill landed inside the pipeline
		}
	}
	if interrupted == 0 {
		t.Fatal("no attempt cut a publish off: the test proved nothing")
	}
}

// TestClusterPublishNotRepeated: the same on a Redis Cluster.
func TestClusterPublishNotRepeated(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	checkPublishNotRepeated(t, c.URL(), c.Addrs())
}
