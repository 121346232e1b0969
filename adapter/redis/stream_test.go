package redis

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

// entry is a Stream message of fields k=v,...
func entry(stream string, maxLen int64, kv ...string) queue.Message {
	var data []byte
	for i := 0; i+1 < len(kv); i += 2 {
		data = queue.AppendStreamField(data, kv[i], kv[i+1])
	}
	return queue.Message{Channel: stream, Stream: true, MaxLen: maxLen, Data: data}
}

// fields reads a delivered entry back as k=v,... (in Data's order).
func fields(t testing.TB, m queue.Message) string {
	t.Helper()
	var l []string
	if err := queue.StreamFields(m.Data, func(f, v []byte) bool {
		l = append(l, string(f)+"="+string(v))
		return true
	}); err != nil {
		t.Fatalf("%+v: %v", m, err)
	}
	return strings.Join(l, ",")
}

// checkStream publishes entries to a fresh stream through b (after one
// written before the subscription, which must not come) and a Pub/Sub
// message on a channel of the same subscription, and checks what the
// subscription delivers and what Redis holds.
func checkStream(t *testing.T, b *Bus) {
	ctx := context.Background()
	key, ch := uniq(t)+"-stream", uniq(t)+"-ch"
	t.Cleanup(func() { b.client.Del(context.Background(), key) })
	if err := b.Publish(ctx, entry(key, 0, "n", "before")); err != nil {
		t.Fatal(err)
	}
	var s testenv.Sink
	sub, err := b.Subscribe(ctx, queue.Subscription{Streams: []string{key}, Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var msgs []queue.Message
	for i := range 250 {
		msgs = append(msgs, entry(key, 1000, "uid", "u1", "nsp", "/", "type", "3", "data", strconv.Itoa(i)))
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("pubsub")}); err != nil {
		t.Fatal(err)
	}
	got := s.Wait(t, 251, 20*time.Second)
	prev := "0-0"
	n := 0
	for _, m := range got {
		if !m.Stream {
			if string(m.Data) != "pubsub" || m.Channel != ch {
				t.Fatalf("channel message %+v", m)
			}
			continue
		}
		// the fields in the entry's order (go-redis's map lost it: they came sorted)
		if want := "uid=u1,nsp=/,type=3,data=" + strconv.Itoa(n); m.Channel != key || fields(t, m) != want {
			t.Fatalf("entry %d: %s on %s, want %s", n, fields(t, m), m.Channel, want)
		}
		if !idLess(prev, m.ID) {
			t.Fatalf("entry %d: id %s after %s", n, m.ID, prev)
		}
		prev = m.ID
		n++
	}
	if n != 250 {
		t.Fatalf("%d entries delivered", n)
	}
	// the entry as written: its fields in order, and trimmed by MAXLEN ~
	last, err := b.client.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].ID != prev {
		t.Fatalf("last entry %+v %v, want id %s", last, err, prev)
	}
	raw, err := b.client.Do(ctx, "XRANGE", key, prev, prev).Slice()
	if err != nil || fmt.Sprint(raw) != "[["+prev+" [uid u1 nsp / type 3 data 249]]]" {
		t.Fatalf("XRANGE gives %v %v", raw, err)
	}
	if err := b.Publish(ctx, entry(key, 20, "n", "trim")); err != nil {
		t.Fatal(err)
	}
	if l, err := b.client.XLen(ctx, key).Result(); err != nil || l >= 250 {
		t.Fatalf("XLEN %d %v: not trimmed", l, err)
	}
}

// idLess compares two stream entry ids.
func idLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		return x < y
	}
	p, _ := strconv.ParseUint(as, 10, 64)
	q, _ := strconv.ParseUint(bs, 10, 64)
	return p < q
}

// TestStreams: entries appended with Stream messages (the fast RESP path)
// reach a subscription of the stream in order with their ids, together
// with the Pub/Sub messages of its channels.
func TestStreams(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	if b.fast == nil {
		t.Fatal("not the fast path")
	}
	checkStream(t, b)
}

// TestStreamsCluster: the same on a Redis Cluster (go-redis pipelines,
// the reader on the stream's master).
func TestStreamsCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 0)
	b := open(t, c.URL())
	checkStream(t, b)
}

// TestStreamsDB: on a database other than 0 (redis://host/5) the fast
// path appends to the URL's database (SELECT), where the reader follows
// the stream.
func TestStreamsDB(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr+"/5")
	if b.fast == nil {
		t.Fatal("not the fast path")
	}
	checkStream(t, b)
}

// TestStreamRefusals: a Stream message without fields is refused and
// nothing of its Publish call is sent.
func TestStreamRefusals(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	b := open(t, "redis://"+testenv.RedisAddr)
	key := uniq(t)
	ctx := context.Background()
	for _, m := range []queue.Message{{Channel: key, Stream: true}, {Channel: key, Stream: true, Data: []byte{9, 'x'}}} {
		if err := b.Publish(ctx, entry(key, 0, "a", "1"), m); err == nil {
			t.Fatalf("%+v accepted", m)
		}
	}
	if n, err := b.client.XLen(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("XLEN %d %v after refused publishes", n, err)
	}
	if _, err := b.Subscribe(ctx, queue.Subscription{}, func(queue.Message) {}); err == nil {
		t.Fatal("empty subscription accepted")
	}
}

// following subscribes to stream key on b, appends an entry n=first and
// waits until it is delivered.
func following(t *testing.T, b *Bus, key, first string) *testenv.Sink {
	t.Helper()
	s := new(testenv.Sink)
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Streams: []string{key}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	if err := b.Publish(context.Background(), entry(key, 0, "n", first)); err != nil {
		t.Fatal(err)
	}
	s.Wait(t, 1, 10*time.Second)
	return s
}

// appendAfter appends an entry n=after to stream key through b after an
// outage, again until the bus takes it (it reconnects in the background),
// and checks that s, which had one entry, then delivers it, and nothing
// else (a reader resuming from the stream's start would).
func appendAfter(t *testing.T, b *Bus, key string, s *testenv.Sink) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := b.Publish(context.Background(), entry(key, 0, "n", "after"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after the outage: %v", err)
		}
	}
	s.Wait(t, 2, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := s.Wait(t, 2, time.Second); len(got) != 2 || fields(t, got[1]) != "n=after" || !idLess(got[0].ID, got[1].ID) {
		t.Fatalf("after the outage: %d entries, the last %s %s", len(got), got[len(got)-1].ID, fields(t, got[len(got)-1]))
	}
}

// TestStreamResumesAfterGap: the reader's connection is killed and it
// cannot reconnect (a password appears) while entries are appended; once
// it can, it delivers them, after the last one it had, each once.
func TestStreamResumesAfterGap(t *testing.T) {
	srv := testenv.StartRedis(t)
	s := following(t, open(t, "redis://"+srv.Addr), "st", "0")
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "requirepass", "gap").Err(); err != nil { // admin stays authenticated
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		if err := admin.XAdd(ctx, &goredis.XAddArgs{Stream: "st", Values: []string{"n", strconv.Itoa(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.ConfigSet(ctx, "requirepass", "").Err(); err != nil {
		t.Fatal(err)
	}
	got := s.Wait(t, 51, 30*time.Second)
	for i, m := range got {
		if fields(t, m) != "n="+strconv.Itoa(i) {
			t.Fatalf("entry %d is %s", i, fields(t, m))
		}
	}
	time.Sleep(200 * time.Millisecond) // nothing more comes (a resume from the start would)
	if n := s.Count(); n != 51 {
		t.Fatalf("%d entries delivered, want 51", n)
	}
}

// TestStreamRedisRestart: after the Redis server restarts (its stream
// gone), the reader reconnects by itself and delivers the new entries.
func TestStreamRedisRestart(t *testing.T) {
	srv := testenv.StartRedis(t)
	var logs testenv.LogBuffer
	b := open(t, "redis://"+srv.Addr, WithLogger(logs.Logger()))
	s := following(t, b, "st", "before")
	srv.Stop()
	srv.Start()
	appendAfter(t, b, "st", s)
	if !strings.Contains(logs.String(), "reading the stream failed") {
		t.Fatalf("the lost stream connection was not logged:\n%s", logs.String())
	}
}

// TestStreamEntryTooLarge: an entry larger than WithStreamEntryMaxBytes,
// between two small ones, is skipped without being read into memory
// (its bytes are discarded as they come), counted, logged once with the
// stream, its id and its size; the entries around it are delivered in
// order, and the reader goes on after it (it is not read again).
func TestStreamEntryTooLarge(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	var logs testenv.LogBuffer
	b := open(t, "redis://"+testenv.RedisAddr, WithStreamEntryMaxBytes(1<<20), WithLogger(logs.Logger()))
	key := uniq(t)
	ctx := context.Background()
	t.Cleanup(func() { b.client.Del(context.Background(), key) })
	var s testenv.Sink
	held, gate := make(chan struct{}), make(chan struct{})
	sub, err := b.Subscribe(ctx, queue.Subscription{Streams: []string{key}}, func(m queue.Message) {
		s.Handle(m)
		if s.Count() == 1 { // the reader waits here while the next entries are appended
			close(held)
			<-gate
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	xadd := func(p goredis.Pipeliner, v string) *goredis.StringCmd {
		return p.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []string{"n", v}})
	}
	if _, err := b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error { xadd(p, "0"); return nil }); err != nil {
		t.Fatal(err)
	}
	<-held
	big := strings.Repeat("x", 5<<20)
	var bigID *goredis.StringCmd
	if _, err := b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		xadd(p, "1")
		bigID = xadd(p, big)
		xadd(p, "2")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// what the reader allocates to read the three entries (one reply)
	var got []queue.Message
	alloc := testenv.AllocatedBytes(func() {
		close(gate)
		got = s.Wait(t, 3, 20*time.Second)
	})
	t.Logf("reading the entries allocated %d bytes", alloc)
	time.Sleep(100 * time.Millisecond) // a delivered big entry would come now
	got = s.Wait(t, 3, time.Second)
	var l []string
	for _, m := range got {
		l = append(l, fields(t, m))
	}
	if strings.Join(l, " ") != "n=0 n=1 n=2" {
		t.Fatalf("delivered %.80q, want n=0 n=1 n=2", l)
	}
	if d := b.StreamEntriesDropped(); d != 1 {
		t.Fatalf("%d entries dropped, want 1", d)
	}
	if alloc > 2<<20 {
		t.Fatalf("reading the entries allocated %d bytes: the %d-byte entry was read into memory", alloc, len(big))
	}
	line := regexp.MustCompile(`(?m)^.*stream entry.*$`).FindString(logs.String())
	size := regexp.MustCompile(` bytes=(\d+)`).FindStringSubmatch(line)
	if !strings.Contains(line, "stream="+key) || !strings.Contains(line, "id="+bigID.Val()) || size == nil {
		t.Fatalf("the dropped entry was not logged with its stream, id %s and size:\n%s", bigID.Val(), logs.String())
	}
	if n, _ := strconv.Atoi(size[1]); n < len(big) {
		t.Fatalf("logged size %d, want at least %d", n, len(big))
	}
	// too large and the stream's last entry: the reader goes on after it
	if _, err := b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error { xadd(p, big); return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the second big entry dropped", func() bool { return b.StreamEntriesDropped() == 2 })
	if _, err := b.client.TxPipelined(ctx, func(p goredis.Pipeliner) error { xadd(p, "3"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := s.Wait(t, 4, 10*time.Second); len(got) != 4 || fields(t, got[3]) != "n=3" {
		t.Fatalf("after the second big entry: %d entries, the last %.80s", len(got), fields(t, got[len(got)-1]))
	}
	time.Sleep(100 * time.Millisecond) // a reader that did not go past it reads it again
	if d := b.StreamEntriesDropped(); d != 2 || strings.Count(logs.String(), "stream entry") != 2 {
		t.Fatalf("%d entries dropped, %d logged, want 2", d, strings.Count(logs.String(), "stream entry"))
	}
}

// TestStreamSentinelFailover: the reader of a redis+sentinel:// bus reads
// on the master the sentinel names (its connection dialed as go-redis
// dials: through the sentinel); after SENTINEL FAILOVER it moves to the
// new master and delivers what is appended there, after the last entry
// it had.
func TestStreamSentinelFailover(t *testing.T) {
	st := testenv.StartRedisSentinel(t)
	b := open(t, st.URL())
	s := following(t, b, "st", "before")
	before, err := st.CurrentMaster()
	if err != nil {
		t.Fatal(err)
	}
	reading := func(addr string) bool {
		out, err := testenv.RedisCommand(addr, "CLIENT", "LIST")
		return err == nil && strings.Contains(out, "cmd=xread")
	}
	if !reading(before) {
		t.Fatalf("no XREAD on the master %s", before)
	}
	st.Failover(t)
	var now string
	waitFor(t, 30*time.Second, "the sentinel to switch masters", func() bool {
		now, err = st.CurrentMaster()
		return err == nil && now != before
	})
	waitFor(t, 30*time.Second, "the reader on the new master", func() bool { return reading(now) })
	appendAfter(t, b, "st", s)
}

// TestStreamClusterMasterKilled: the master of the stream's slot is
// killed; its replica takes over (with the stream, replicated), and the
// reader, reloading the slot map, follows it and delivers what is
// appended there, after the last entry it had.
func TestStreamClusterMasterKilled(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3, 1)
	b := open(t, c.URL())
	const key = "socket.io"
	s := following(t, b, key, "before")
	victim := c.Master(key)
	victim.Stop()
	now := c.WaitNewMaster(key, victim, 60*time.Second)
	appendAfter(t, b, key, s)
	if out, err := testenv.RedisCommand(now.Addr, "CLIENT", "LIST"); err != nil || !strings.Contains(out, "cmd=xread") {
		t.Fatalf("no XREAD on the new master %s: %v", now.Addr, err)
	}
}
