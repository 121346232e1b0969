package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

func TestMain(m *testing.M) {
	// go-redis retries a failed dial in the background for up to a
	// second after its pool closed (the killed cluster master)
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

func open(t *testing.T, url string, opts ...Option) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func uniq(t *testing.T) string {
	return fmt.Sprintf("siobridge-test-%s-%d", t.Name(), time.Now().UnixNano())
}

func TestPublishSubscribeBinarySafe(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr+"/0")
	ch := uniq(t)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	ctx := context.Background()
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: all}, queue.Message{Channel: ch, Data: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	got := s.Wait(t, 2, 5*time.Second)
	if !bytes.Equal(got[0].Data, all) || string(got[1].Data) != "second" || got[0].Channel != ch {
		t.Fatalf("got %+v", got)
	}
	if n, err := b.NumSub(ctx, ch); err != nil || n != 1 {
		t.Fatalf("NumSub = %d, %v", n, err)
	}
	if st := b.Stats(); st.Published != 2 || st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPatternsAndIsolation(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	prefix := uniq(t)
	var a, p, other testenv.Sink
	ctx := context.Background()
	sa, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{prefix + "-A"}}, a.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sp, err := b.Subscribe(ctx, queue.Subscription{Patterns: []string{queue.EscapeGlob(prefix+"#/#") + "*"}}, p.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	so, err := b.Subscribe(ctx, queue.Subscription{Channels: []string{prefix + "-B"}}, other.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	for i := 0; i < 10; i++ {
		if err := b.Publish(ctx,
			queue.Message{Channel: prefix + "-A", Data: []byte("a")},
			queue.Message{Channel: prefix + "#/#room" + fmt.Sprint(i) + "#", Data: []byte("p")},
		); err != nil {
			t.Fatal(err)
		}
	}
	a.Wait(t, 10, 5*time.Second)
	got := p.Wait(t, 10, 5*time.Second)
	if got[0].Pattern == "" || !strings.HasPrefix(got[3].Channel, prefix+"#/#room") {
		t.Fatalf("pattern delivery %+v", got[0])
	}
	// a marker on B proves B's subscriber is live; nothing else may arrive there
	if err := b.Publish(ctx, queue.Message{Channel: prefix + "-B", Data: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if g := other.Wait(t, 1, 5*time.Second); len(g) != 1 || string(g[0].Data) != "b" {
		t.Fatalf("channel B saw %+v", g)
	}
	if a.Count() != 10 {
		t.Fatalf("channel A saw %d messages, want 10", a.Count())
	}
}

func TestConcurrentPublishCoalesces(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	ch := uniq(t)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const workers, each = 16, 200
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := b.Publish(context.Background(), queue.Message{Channel: ch, Data: []byte(fmt.Sprintf("%d-%d", w, i))}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	got := s.Wait(t, workers*each, 20*time.Second)
	seen := map[string]bool{}
	for _, m := range got {
		seen[string(m.Data)] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct messages, want %d", len(seen), workers*each)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := Open(ctx, "redis://127.0.0.1:notaport"); err == nil {
		t.Error("bad URL accepted")
	}
	if _, err := Open(ctx, "http://127.0.0.1:6379"); err == nil || !strings.Contains(err.Error(), "unsupported URL scheme") {
		t.Errorf("bad scheme: %v", err)
	}
	// unreachable: a free port nobody listens on
	port := testenv.FreePort(t)
	start := time.Now()
	short, cancel2 := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel2()
	if _, err := Open(short, fmt.Sprintf("redis://127.0.0.1:%d", port)); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("unreachable: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Open ignored its context deadline")
	}
	testenv.Need(t, "redis", testenv.RedisAddr)
	// auth refused: the shared server has no password, so AUTH must fail
	if _, err := Open(ctx, "redis://nobody:wrong@"+testenv.RedisAddr); err == nil {
		t.Error("wrong credentials accepted")
	} else {
		t.Logf("auth error reads: %v", err)
	}
}

func TestParseSentinel(t *testing.T) {
	o, err := parseSentinel("user:p%40ss@h1:1,h2/3/mymaster2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Username != "user" || o.Password != "p@ss" || o.DB != 3 || o.MasterName != "mymaster2" ||
		len(o.SentinelAddrs) != 2 || o.SentinelAddrs[1] != "h2:26379" {
		t.Fatalf("parsed %+v", o)
	}
	if _, err := parseSentinel("/0"); err == nil {
		t.Fatal("sentinel URL without host accepted")
	}
}

func TestOpenThroughRegistry(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b, err := queue.Open(context.Background(), "redis://"+testenv.RedisAddr)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// TestOutageAndResubscribe restarts a private redis-server: publishes during
// the outage end within their deadline, and the subscription works again
// after the restart without any action from the caller.
//
// The bus reports the outage: Connected goes false then true again, the
// loss and the return are logged (with how long the bus was away) and the
// return is counted in Stats().Reconnects.
func TestOutageAndResubscribe(t *testing.T) {
	srv := testenv.StartRedis(t)
	var logs testenv.LogBuffer
	b := open(t, "redis://"+srv.Addr, WithLogger(logs.Logger()))
	if !b.Connected() {
		t.Fatal("not Connected after Open")
	}
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{"outage"}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := b.Publish(context.Background(), queue.Message{Channel: "outage", Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, 1, 5*time.Second)

	srv.Stop()
	waitConnected(t, b, false)
	failed := 0
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := b.Publish(ctx, queue.Message{Channel: "outage", Data: []byte("during")})
		cancel()
		if err != nil {
			failed++
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("publish during outage took %s", el)
		}
	}
	if failed == 0 {
		t.Fatal("every publish succeeded while the server was down")
	}
	srv.Start()
	// resubscription happens in the background; publish until delivered
	deadline := time.Now().Add(30 * time.Second)
	for s.Count() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the restart")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b.Publish(ctx, queue.Message{Channel: "outage", Data: []byte("after")})
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
	got := s.Wait(t, 2, time.Second)
	if string(got[1].Data) != "after" {
		t.Fatalf("after restart got %q", got[1].Data)
	}
	waitConnected(t, b, true)
	if n := b.Stats().Reconnects; n == 0 {
		t.Fatal("the outage was not counted in Reconnects")
	}
	out := logs.String()
	if !strings.Contains(out, "redis: lost the broker") || !strings.Contains(out, "redis: broker connection back") || !strings.Contains(out, "away=") {
		t.Fatalf("outage not logged:\n%s", out)
	}
}

// waitConnected waits (a bounded while) until b.Connected() is want.
func waitConnected(t *testing.T, b *Bus, want bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); b.Connected() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Connected() stayed %v", !want)
		}
	}
}

func TestCloseFailsPublish(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	b.Close()
	if err := b.Publish(context.Background(), queue.Message{Channel: "x"}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if _, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{"x"}}, func(queue.Message) {}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

var _ goredis.UniversalClient = (*goredis.Client)(nil)

func BenchmarkPublishSerial(b *testing.B) {
	testenv.Need(b, "redis", testenv.RedisAddr)
	bus, err := Open(context.Background(), "redis://"+testenv.RedisAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	msg := queue.Message{Channel: "siobridge-bench", Data: []byte(`{"n":1}`)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bus.Publish(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishParallel(b *testing.B) {
	testenv.Need(b, "redis", testenv.RedisAddr)
	bus, err := Open(context.Background(), "redis://"+testenv.RedisAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	msg := queue.Message{Channel: "siobridge-bench", Data: []byte(`{"n":1}`)}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bus.Publish(context.Background(), msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A subscription or publish that the user's ACL refuses (NOPERM) wraps
// queue.ErrForbidden, so callers can tell it from an outage and stop
// retrying; the allowed channel still works.
func TestACLRefusalIsForbidden(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	admin := open(t, "redis://"+testenv.RedisAddr+"/0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	user, allowed := fmt.Sprintf("siobridge-acl-%d", time.Now().UnixNano()), uniq(t)
	if err := admin.client.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">pw", "resetchannels", "&"+allowed, "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.client.Do(context.Background(), "ACL", "DELUSER", user) })
	tenant := open(t, "redis://"+user+":pw@"+testenv.RedisAddr+"/0")
	_, err := tenant.Subscribe(ctx, queue.Subscription{Channels: []string{allowed + "-other"}}, func(queue.Message) {})
	if !errors.Is(err, queue.ErrForbidden) || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("subscribe to a refused channel: %v, want NOPERM as queue.ErrForbidden", err)
	}
	err = tenant.Publish(ctx, queue.Message{Channel: allowed + "-other", Data: []byte("x")})
	if !errors.Is(err, queue.ErrForbidden) {
		t.Fatalf("publish to a refused channel: %v, want queue.ErrForbidden", err)
	}
	sub, err := tenant.Subscribe(ctx, queue.Subscription{Channels: []string{allowed}}, func(queue.Message) {})
	if err != nil {
		t.Fatalf("subscribe to the allowed channel: %v", err)
	}
	sub.Close()
	if err := tenant.Publish(ctx, queue.Message{Channel: allowed, Data: []byte("x")}); err != nil {
		t.Fatalf("publish to the allowed channel: %v", err)
	}
}

// TestPublishAsyncKeepsOrder: batches queued with PublishAsync without
// waiting reach Redis in the order they were queued, several in flight on
// the bus's connection, and each wait gives its batch's result; after
// Close, PublishAsync refuses.
func TestPublishAsyncKeepsOrder(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	ch := uniq(t)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const batches, per = 50, 100
	var waits []func(context.Context) error
	for i := 0; i < batches; i++ {
		msgs := make([]queue.Message, per)
		for j := range msgs {
			msgs[j] = queue.Message{Channel: ch, Data: []byte(strconv.Itoa(i*per + j))}
		}
		w, err := b.PublishAsync(msgs...)
		if err != nil {
			t.Fatal(err)
		}
		clear(msgs) // the bus keeps nothing of them
		waits = append(waits, w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, w := range waits {
		if err := w(ctx); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	for i, m := range s.Wait(t, batches*per, 10*time.Second) {
		if string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: order lost", i, m.Data)
		}
	}
	b.Close()
	if _, err := b.PublishAsync(queue.Message{Channel: ch, Data: []byte("x")}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("PublishAsync after Close: %v", err)
	}
}

// TestPublishBuffersSurviveGC: the fast path's write buffers are kept for
// the next batches across garbage collections (a sync.Pool is emptied by
// every collection, and a program that allocates much collects every few
// milliseconds: each batch then grew a fresh buffer, touching new
// memory), and what is kept is bounded.
func TestPublishBuffersSurviveGC(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	ch := uniq(t)
	ctx := context.Background()
	msgs := make([]queue.Message, 100)
	for i := range msgs {
		msgs[i] = queue.Message{Channel: ch, Data: bytes.Repeat([]byte{'x'}, 2000)}
	}
	if err := b.Publish(ctx, msgs...); err != nil { // warm up
		t.Fatal(err)
	}
	const rounds = 20
	alloc := testenv.AllocatedBytes(func() {
		for range rounds {
			runtime.GC()
			runtime.GC()
			if err := b.Publish(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
		}
	})
	if batch := uint64(len(msgs) * 2000); alloc > rounds*batch/4 {
		t.Fatalf("%d rounds of a %d-byte batch allocated %d bytes: the write buffers are not reused", rounds, batch, alloc)
	}

	p := b.fast
	for range 2 * maxKeptBufs {
		p.putBuf(make([]byte, 0, 1000))
	}
	p.putBuf(make([]byte, 0, maxBatchBytes+1))
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) > maxKeptBufs {
		t.Fatalf("%d buffers kept, want at most %d", len(p.free), maxKeptBufs)
	}
	for _, buf := range p.free {
		if cap(buf) > maxBatchBytes {
			t.Fatalf("a buffer of %d bytes kept, want at most %d", cap(buf), maxBatchBytes)
		}
	}
}
