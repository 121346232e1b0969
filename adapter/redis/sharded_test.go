package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

func TestSlot(t *testing.T) {
	// the examples of the CLUSTER KEYSLOT documentation, and CRC16's check value
	for key, want := range map[string]uint16{
		"somekey": 11058, "foo{hash_tag}": 2515, "bar{hash_tag}": 2515, "123456789": 12739,
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestShardedSingleServer: on one Redis 7 server (the fast publisher's
// raw SPUBLISH), sharded and classic Pub/Sub are separate: each
// subscription gets only the messages of its kind, and NumShardSub counts
// the sharded subscribers only.
func TestShardedSingleServer(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	ch := uniq(t)
	ctx := context.Background()
	var sh, cl testenv.Sink
	ss, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}, Sharded: true}, sh.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}}, cl.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("s1"), Sharded: true},
		queue.Message{Channel: ch, Data: []byte("c1")},
		queue.Message{Channel: ch, Data: []byte("s2"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	got := sh.Wait(t, 2, 5*time.Second)
	if string(got[0].Data) != "s1" || string(got[1].Data) != "s2" || !got[0].Sharded || got[0].Channel != ch {
		t.Fatalf("sharded subscription got %+v", got)
	}
	if c := cl.Wait(t, 1, 5*time.Second); string(c[0].Data) != "c1" || c[0].Sharded {
		t.Fatalf("classic subscription got %+v", c)
	}
	// a marker through each kind: nothing else arrived meanwhile
	b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("end"), Sharded: true}, queue.Message{Channel: ch, Data: []byte("end")})
	if g := sh.Wait(t, 3, 5*time.Second); string(g[2].Data) != "end" {
		t.Fatalf("sharded subscription got %q after s2", g[2].Data)
	}
	if g := cl.Wait(t, 2, 5*time.Second); string(g[1].Data) != "end" {
		t.Fatalf("classic subscription got %q after c1", g[1].Data)
	}
	if n, err := b.NumShardSub(ctx, ch); err != nil || n != 1 {
		t.Fatalf("NumShardSub = %d, %v; want 1", n, err)
	}
	if n, err := b.NumSub(ctx, ch); err != nil || n != 1 {
		t.Fatalf("NumSub = %d, %v; want 1 (the classic one)", n, err)
	}
	_, err = b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}, Patterns: []string{ch + "*"}, Sharded: true}, sh.Handle)
	if !errors.Is(err, queue.ErrPatternsUnsupported) {
		t.Fatalf("sharded subscription with a pattern: %v", err)
	}
}

// TestShardedSentinel: the pipeline path (a Sentinel-managed bus) writes
// SPUBLISH for sharded messages too.
func TestShardedSentinel(t *testing.T) {
	st := testenv.StartRedisSentinel(t)
	b := open(t, st.URL())
	var sh testenv.Sink
	ctx := context.Background()
	s, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{"c"}, Sharded: true}, sh.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := b.Publish(ctx, queue.Message{Channel: "c", Data: []byte("x"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	if g := sh.Wait(t, 1, 5*time.Second); string(g[0].Data) != "x" {
		t.Fatalf("got %+v", g)
	}
}

// serial is a handler that records whether it was ever called while
// another call was running.
type serial struct {
	in, overlaps atomic.Int32
	mu           sync.Mutex
	got          map[string][]int
}

func (s *serial) handle(m queue.Message) {
	if s.in.Add(1) > 1 {
		s.overlaps.Add(1)
	}
	time.Sleep(200 * time.Microsecond) // long enough for others to arrive meanwhile
	n, _ := strconv.Atoi(string(m.Data))
	s.mu.Lock()
	s.got[m.Channel] = append(s.got[m.Channel], n)
	s.mu.Unlock()
	s.in.Add(-1)
}

func (s *serial) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.got {
		n += len(l)
	}
	return n
}

// TestShardedCluster: one sharded subscription to channels of different
// hash slots (on different masters) of a 3-master Redis Cluster gets every
// message of every channel, in order per channel, from one handler call at
// a time; NumShardSub sums the masters.
func TestShardedCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	pub := open(t, "redis+cluster://"+c.Nodes[0].Addr)
	sub := open(t, "redis+cluster://"+c.Nodes[1].Addr)
	var chans []string
	masters := map[string]bool{}
	for i := 0; len(chans) < 6; i++ {
		ch := "socket.io#/#room" + strconv.Itoa(i) + "#"
		chans = append(chans, ch)
		masters[c.Master(ch).Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("the channels all hash to one master: %v", masters)
	}
	h := &serial{got: map[string][]int{}}
	ctx := context.Background()
	s, err := sub.Subscribe(ctx, queue.Subscription{Channels: chans, Sharded: true}, h.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const perChan = 200
	var wg sync.WaitGroup
	for _, ch := range chans { // every channel at once: deliveries overlap
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= perChan; i++ {
				if err := pub.Publish(ctx, queue.Message{Channel: ch, Data: []byte(strconv.Itoa(i)), Sharded: true}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, 20*time.Second, "every message", func() bool { return h.total() == perChan*len(chans) })
	if n := h.overlaps.Load(); n != 0 {
		t.Fatalf("the handler ran concurrently %d times", n)
	}
	h.mu.Lock()
	for ch, l := range h.got {
		if lost := checkOrdered(t, l, perChan); lost != 0 {
			t.Fatalf("%s: %d lost", ch, lost)
		}
	}
	h.mu.Unlock()
	for _, ch := range chans {
		if out, err := testenv.RedisCommand(c.Nodes[0].Addr, "CLUSTER", "KEYSLOT", ch); err != nil || out != strconv.Itoa(int(slot(ch))) {
			t.Errorf("CLUSTER KEYSLOT %s = %q %v, slot() = %d", ch, out, err, slot(ch))
		}
		if n, err := pub.NumShardSub(ctx, ch); err != nil || n != 1 {
			t.Fatalf("NumShardSub(%s) = %d, %v; want 1", ch, n, err)
		}
	}
	if n, err := pub.NumShardSub(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("NumShardSub(nobody) = %d, %v", n, err)
	}
}

// TestShardedClusterSlotMoved: under sharded traffic the channel's slot
// is moved to another master (a resharding). The old owner answers
// SPUBLISH with ASK, then MOVED, and drops its subscribers of the channel
// (SUNSUBSCRIBE): the publisher follows the redirection without a failed
// publish, and the subscriber subscribes again on the new owner.
func TestShardedClusterSlotMoved(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	const ch = "socket.io#/#"
	tr := startTraffic(t, c.URL(), ch, true)
	from := c.Master(ch)
	to := c.Nodes[0]
	if to == from {
		to = c.Nodes[1]
	}
	id := func(p *testenv.Process) string {
		out, err := testenv.RedisCommand(p.Addr, "CLUSTER", "MYID")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	fromID, toID, s := id(from), id(to), strconv.Itoa(int(slot(ch)))
	for _, cmd := range [][]string{
		{to.Addr, "IMPORTING", fromID}, {from.Addr, "MIGRATING", toID},
		{to.Addr, "NODE", toID}, {from.Addr, "NODE", toID},
	} {
		if out, err := testenv.RedisCommand(cmd[0], append([]string{"CLUSTER", "SETSLOT", s}, cmd[1:]...)...); err != nil || out != "OK" {
			t.Fatalf("CLUSTER SETSLOT %s %v: %q %v", s, cmd[1:], out, err)
		}
	}
	waitFor(t, 30*time.Second, "the slot to move", func() bool { return c.Master(ch) == to })
	at := tr.published()
	t.Logf("slot %s moved from %s to %s after message %d", s, from.Addr, to.Addr, at)
	tr.resumed(at, 30*time.Second)
	tr.mu.Lock()
	errs := tr.errs
	tr.mu.Unlock()
	if errs != 0 {
		t.Errorf("%d publishes failed (redirection not followed)", errs)
	}
	tr.finish("sharded, slot moved")
}

// TestShardedClusterManualFailover: CLUSTER FAILOVER under sharded
// traffic. The demoted master stays up (a replica of its shard now); the
// publisher and the subscriber keep working, nothing comes twice or out
// of order, and the loss during the switch is reported.
func TestShardedClusterManualFailover(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 1)
	const ch = "socket.io#/#"
	tr := startTraffic(t, c.URL(), ch, true)
	old := c.Master(ch)
	var replica *testenv.Process
	for _, n := range c.Nodes[3:] {
		if role, _ := testenv.RedisCommand(n.Addr, "ROLE"); strings.Contains(role, strings.Replace(old.Addr, ":", " ", 1)) {
			replica = n
		}
	}
	if replica == nil {
		t.Fatalf("no replica of %s", old.Addr)
	}
	// a manual failover gives up after 5 s when the master does not
	// answer in time (a loaded machine): ask again then
	var asked time.Time
	waitFor(t, 60*time.Second, "the replica to take over", func() bool {
		if c.Master(ch) == replica {
			return true
		}
		if time.Since(asked) > 10*time.Second {
			out, err := testenv.RedisCommand(replica.Addr, "CLUSTER", "FAILOVER")
			t.Logf("CLUSTER FAILOVER: %q %v", out, err)
			asked = time.Now()
		}
		return false
	})
	at := tr.published()
	tr.resumed(at, 30*time.Second)
	tr.finish("sharded, CLUSTER FAILOVER")
}
