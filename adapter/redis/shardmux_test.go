package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

// namedClients counts the connections of Redis at addr whose client
// name is name (CLIENT LIST).
func namedClients(t *testing.T, name string) int {
	t.Helper()
	out, err := testenv.RedisCommand(testenv.RedisAddr, "CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(out, " name="+name+" ")
}

// TestShardedSharesConnections: 2,000 sharded subscriptions of distinct
// channels on one bus (a Go node holding 2,000 rooms) use one connection
// to the server, not one each; every channel receives; closing half of
// them unsubscribes those (PUBSUB SHARDNUMSUB 0) and the others still
// receive.
func TestShardedSharesConnections(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	name := fmt.Sprintf("siobridge-shardmux-%d", time.Now().UnixNano())
	b := open(t, "redis://"+testenv.RedisAddr+"/0?client_name="+name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Publish(ctx, queue.Message{Channel: name, Data: []byte("warm up"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	before := namedClients(t, name)
	const n = 2000
	chans := make([]string, n)
	subs := make([]queue.Subscriber, n)
	got := make([]atomic.Int32, n)
	for i := range chans {
		chans[i] = "socket.io#/#" + name + "-" + strconv.Itoa(i) + "#"
		s, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{chans[i]}, Sharded: true}, func(m queue.Message) {
			if m.Channel == chans[i] && string(m.Data) == chans[i] {
				got[i].Add(1)
			}
		})
		if err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
		subs[i] = s
	}
	defer func() {
		for _, s := range subs {
			s.Close()
		}
	}()
	if opened := namedClients(t, name) - before; opened > 2 {
		t.Fatalf("%d sharded subscriptions opened %d connections, want at most 2 (one shard)", n, opened)
	}
	publishAll := func() {
		t.Helper()
		msgs := make([]queue.Message, n)
		for i, ch := range chans {
			msgs[i] = queue.Message{Channel: ch, Data: []byte(ch), Sharded: true}
		}
		if err := b.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	publishAll()
	waitFor(t, 20*time.Second, "every channel's message", func() bool {
		for i := range got {
			if got[i].Load() != 1 {
				return false
			}
		}
		return true
	})
	for i := 0; i < n/2; i++ {
		subs[i].Close()
	}
	counts, err := b.client.PubSubShardNumSub(ctx, chans...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, ch := range chans {
		if want := int64(i / (n / 2)); counts[ch] != want {
			t.Fatalf("PUBSUB SHARDNUMSUB %s = %d, want %d (subscription closed: %v)", ch, counts[ch], want, i < n/2)
		}
	}
	publishAll()
	waitFor(t, 20*time.Second, "the open channels' second message", func() bool {
		for i := n / 2; i < n; i++ {
			if got[i].Load() != 2 {
				return false
			}
		}
		return true
	})
	for i := 0; i < n/2; i++ {
		if c := got[i].Load(); c != 1 {
			t.Fatalf("closed subscription %d got %d messages", i, c)
		}
	}
}

// TestShardedRefCount: two subscriptions of one channel make one
// subscription in Redis and both get every message; the channel stays
// subscribed until the second one closes.
func TestShardedRefCount(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	ch := uniq(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s1, s2 testenv.Sink
	a, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}, Sharded: true}, s1.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch, ch}, Sharded: true}, s2.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := b.NumShardSub(ctx, ch); err != nil || n != 1 {
		t.Fatalf("NumShardSub = %d, %v; want 1 (one connection)", n, err)
	}
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("x"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	s1.Wait(t, 1, 5*time.Second)
	s2.Wait(t, 1, 5*time.Second)
	a.Close()
	if n, err := b.NumShardSub(ctx, ch); err != nil || n != 1 {
		t.Fatalf("after closing one: NumShardSub = %d, %v; want 1", n, err)
	}
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("y"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	if g := s2.Wait(t, 2, 5*time.Second); len(g) != 2 || string(g[1].Data) != "y" {
		t.Fatalf("the remaining subscription got %+v", g)
	}
	if s1.Count() != 1 {
		t.Fatalf("the closed subscription got %d messages", s1.Count())
	}
	c.Close()
	if n, err := b.NumShardSub(ctx, ch); err != nil || n != 0 {
		t.Fatalf("after closing both: NumShardSub = %d, %v; want 0", n, err)
	}
}

// TestShardedSlowHandler: a handler that does not return holds up only
// its own subscription; what its bounded queue cannot take is dropped and
// counted.
func TestShardedSlowHandler(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, "redis://"+testenv.RedisAddr, WithShardQueueBytes(2000))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	slowCh, fastCh := uniq(t)+"-slow", uniq(t)+"-fast"
	release := make(chan struct{})
	var slow atomic.Int32
	s, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{slowCh}, Sharded: true}, func(queue.Message) {
		if slow.Add(1) == 1 {
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(release) // before s.Close: the handler returns
	var fast testenv.Sink
	f, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{fastCh}, Sharded: true}, fast.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const n = 200
	data := make([]byte, 100)
	for i := 0; i < n; i++ {
		if err := b.Publish(ctx, queue.Message{Channel: slowCh, Data: data, Sharded: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, queue.Message{Channel: fastCh, Data: []byte("z"), Sharded: true}); err != nil {
		t.Fatal(err)
	}
	fast.Wait(t, 1, 5*time.Second)
	// the queue holds at most k messages, and the handler's batch taken
	// before it blocked as many
	k := 2000 / (len(slowCh) + len(data) + msgOverhead)
	waitFor(t, 5*time.Second, "the drops", func() bool { return b.ShardDropped() >= uint64(n-1-2*k) })
}

// BenchmarkShardedSubscribeClose: the cost of a room's channel on a Go
// node: Subscribe (SSUBSCRIBE on the shared connection, answer awaited)
// then Close (SUNSUBSCRIBE), with 1,000 other channels subscribed.
func BenchmarkShardedSubscribeClose(b *testing.B) {
	testenv.Need(b, "redis", testenv.RedisAddr)
	ctx := context.Background()
	bus, err := Open(ctx, "redis://"+testenv.RedisAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	prefix := fmt.Sprintf("siobridge-bench-%d-", time.Now().UnixNano())
	nop := func(queue.Message) {}
	for i := 0; i < 1000; i++ {
		s, err := bus.Subscribe(ctx, queue.Subscription{Channels: []string{prefix + "base" + strconv.Itoa(i)}, Sharded: true}, nop)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := bus.Subscribe(ctx, queue.Subscription{Channels: []string{prefix + strconv.Itoa(i)}, Sharded: true}, nop)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// TestShardedQueueTotalBound: the messages waiting for stalled handlers
// are bounded for the whole bus, not only per subscription: with a large
// per-subscription bound, two stalled handlers together hold at most the
// total, and what does not fit is dropped and counted.
func TestShardedQueueTotalBound(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const total = 3000
	b, err := Open(ctx, "redis://"+testenv.RedisAddr, WithShardQueueBytes(1<<20), WithShardQueueTotalBytes(total))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release := make(chan struct{})
	var chans []string
	for i := 0; i < 2; i++ {
		ch := fmt.Sprintf("%s-%d", uniq(t), i)
		chans = append(chans, ch)
		s, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{ch}, Sharded: true}, func(queue.Message) { <-release })
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	defer close(release) // before the Closes: the handlers return
	data := make([]byte, 100)
	for i := 0; i < 100; i++ {
		for _, ch := range chans {
			if err := b.Publish(ctx, queue.Message{Channel: ch, Data: data, Sharded: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.ShardDropped() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q := b.mux.queued.Load(); q > total || b.ShardDropped() == 0 {
		t.Fatalf("%d bytes queued (bound %d), %d dropped", q, total, b.ShardDropped())
	}
}
