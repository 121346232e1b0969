package streamstore_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/adapter/redis/streamstore"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/internal/recoverytest"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

func emit(ns, arg string) *op.Emit {
	return &op.Emit{Target: op.Target{Namespace: ns}, Event: "e", Args: []any{arg}}
}

func dialect(t *testing.T, key string, maxLen int64) *nodestreams.Dialect {
	t.Helper()
	d, err := nodestreams.New(nodestreams.Options{Key: key, StreamName: key, MaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func open(t *testing.T, addr string) *redis.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redis.Open(ctx, "redis://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// cluster starts two Go nodes with the node-streams dialect (stream
// trimmed to about maxLen entries) and the stream store on a private
// redis-server.
func cluster(t *testing.T, maxLen int64) (a, b *recoverytest.Node, store *streamstore.Store) {
	rs := testenv.StartRedis(t)
	key := fmt.Sprintf("streamrec-%d", time.Now().UnixNano())
	node := func() *recoverytest.Node {
		bus := open(t, rs.Addr)
		d := dialect(t, key, maxLen)
		store = streamstore.New(bus.Client(), d, streamstore.Options{MaxAge: time.Minute})
		return recoverytest.NewNode(t, bus, d, store)
	}
	return node(), node(), store
}

// TestRecoverOnOtherNode: see recoverytest.RecoverOnOther; the offsets
// are the stream's entry ids.
func TestRecoverOnOtherNode(t *testing.T) {
	a, b, store := cluster(t, 0)
	recoverytest.RecoverOnOther(t, a, b, store)
}

// TestPrunedOffsetIsFresh: once the stream (MAXLEN ~ 10) has dropped the
// client's offset, it gets a fresh session and nothing replayed.
func TestPrunedOffsetIsFresh(t *testing.T) {
	a, b, _ := cluster(t, 10)
	recoverytest.PrunedIsFresh(t, a, b, 300) // MAXLEN ~ trims whole nodes of 100 entries
}

// TestSessionsAsNode: a session is kept as the adapter's persistSession
// keeps it (SET sio:session:<pid> base64(msgpack {sid, pid, rooms,
// data}) PX), is taken once, and a session written by Node reads back.
func TestSessionsAsNode(t *testing.T) {
	rs := testenv.StartRedis(t)
	bus := open(t, rs.Addr)
	c := bus.Client()
	st := streamstore.New(c, dialect(t, "k", 0), streamstore.Options{MaxAge: 90 * time.Second})
	ctx := context.Background()
	sess := server.RecoverySession{PID: "p1", SID: "s1", Namespace: "/", Rooms: []string{"s1", "r"}, Data: map[string]any{"n": 1}}
	if err := st.Save(ctx, sess); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, "sio:session:p1").Result()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := base64.StdEncoding.DecodeString(v)
	// @msgpack/msgpack's encode({sid: "s1", pid: "p1", rooms: ["s1", "r"], data: {n: 1}})
	if want := "84a3736964a27331a3706964a27031a5726f6f6d7392a27331a172a46461746181a16e01"; hex.EncodeToString(b) != want {
		t.Fatalf("session %x\nwant    %s", b, want)
	}
	if ttl := c.PTTL(ctx, "sio:session:p1").Val(); ttl <= 0 || ttl > 90*time.Second {
		t.Fatalf("PTTL %s", ttl)
	}
	got, ok, err := st.Take(ctx, "p1")
	if err != nil || !ok || got.SID != "s1" || got.PID != "p1" || got.Namespace != "" || !reflect.DeepEqual(got.Rooms, []string{"s1", "r"}) ||
		!reflect.DeepEqual(got.Data, map[string]any{"n": int64(1)}) || time.Since(got.At) > time.Minute {
		t.Fatalf("Take: %+v %v %v", got, ok, err)
	}
	if _, ok, err := st.Take(ctx, "p1"); ok || err != nil {
		t.Fatalf("taken twice: %v %v", ok, err)
	}
	// nil Data is Node's default socket.data, {}
	if err := st.Save(ctx, server.RecoverySession{PID: "p2", SID: "s2"}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := st.Take(ctx, "p2"); !reflect.DeepEqual(got.Data, map[string]any{}) || len(got.Rooms) != 0 {
		t.Fatalf("nil data: %+v", got)
	}
	// hostile or foreign values: no session, and an error only for what
	// is not a session at all
	for pid, v := range map[string]string{"big": strings.Repeat("A", streamstore.DefaultMaxSessionBytes+4), "notb64": "!!", "array": base64.StdEncoding.EncodeToString([]byte{0x91, 1}),
		"nosid": base64.StdEncoding.EncodeToString([]byte{0x80})} {
		c.Set(ctx, "sio:session:"+pid, v, time.Minute)
		if _, ok, _ := st.Take(ctx, pid); ok {
			t.Errorf("%s: a session", pid)
		}
		if c.Exists(ctx, "sio:session:"+pid).Val() != 0 {
			t.Errorf("%s: still there", pid)
		}
	}
	if _, ok, err := st.Take(ctx, strings.Repeat("p", 100)); ok || err != nil {
		t.Fatalf("long pid: %v %v", ok, err)
	}
	if err := st.Save(ctx, server.RecoverySession{PID: "p3", SID: "s3", Data: strings.Repeat("x", streamstore.DefaultMaxSessionBytes)}); err == nil {
		t.Fatal("an oversized session was kept")
	}
}

// TestOffsets: entry ids, ordered as the stream orders them; anything
// else is not an offset of the log.
func TestOffsets(t *testing.T) {
	st := streamstore.New(goredis.NewClient(&goredis.Options{}), dialect(t, "k", 0), streamstore.Options{})
	for _, c := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"1-0", "1-0", 0, true}, {"1-9", "1-10", -1, true}, {"2-0", "1-99", 1, true}, {"18446744073709551615-0", "1-0", 1, true},
		{"1-0", "~1", 0, false}, {"1", "1-0", 0, false}, {"-1-0", "1-0", 0, false}, {"1-0 ", "1-0", 0, false},
		{"18446744073709551616-0", "1-0", 0, false}, {"", "1-0", 0, false}, {"a-0", "1-0", 0, false},
	} {
		got, ok := st.CompareOffsets(c.a, c.b)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("CompareOffsets(%q, %q) = %d %v", c.a, c.b, got, ok)
		}
	}
}

// TestReplayBounds: a replay past ReplayPages pages is incomplete (a
// fresh session), and one within them gives the namespace's broadcasts
// only, in order.
func TestReplayBounds(t *testing.T) {
	rs := testenv.StartRedis(t)
	bus := open(t, rs.Addr)
	d := dialect(t, "k", 0)
	ctx := context.Background()
	var ids []string
	for i := range 250 {
		ns := "/"
		if i%10 == 9 {
			ns = "/other"
		}
		msgs, err := d.Encode(emit(ns, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		last, err := bus.Client().XRevRangeN(ctx, "k", "+", "-", 1).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, last[0].ID)
	}
	collect := func(st *streamstore.Store, after, upto string) ([]string, bool) {
		var got []string
		ok, err := st.Replay(ctx, "/", after, upto, func(p server.LoggedPacket) { got = append(got, string(p.Data)+"@"+p.Offset) })
		if err != nil {
			t.Fatal(err)
		}
		return got, ok
	}
	got, ok := collect(streamstore.New(bus.Client(), d, streamstore.Options{}), ids[0], ids[249])
	if !ok || len(got) != 224 || got[0] != `["e","1"]@`+ids[1] || got[223] != `["e","248"]@`+ids[248] {
		t.Fatalf("replay: %v, %d packets: %v ... %v", ok, len(got), got[0], got[len(got)-1])
	}
	if got, ok := collect(streamstore.New(bus.Client(), d, streamstore.Options{ReplayPages: 2}), ids[0], ids[249]); ok {
		t.Fatalf("3 pages read with a bound of 2: %d packets", len(got))
	}
	if _, ok := collect(streamstore.New(bus.Client(), d, streamstore.Options{ReplayBytes: 1000}), ids[0], ids[249]); ok {
		t.Fatal("more than 1000 bytes read with a bound of 1000")
	}
	if got, ok := collect(streamstore.New(bus.Client(), d, streamstore.Options{}), ids[5], ids[5]); !ok || len(got) != 0 {
		t.Fatalf("nothing after the offset: %v %v", got, ok)
	}
	if _, ok := collect(streamstore.New(bus.Client(), d, streamstore.Options{}), "1-1", ids[5]); ok {
		t.Fatal("an offset not in the stream replayed")
	}
}

// TestNeedsTheAdapter: without WithAdapter and the node-streams dialect,
// nothing would bring the store's packets back: the server says so and
// keeps sessions and packets in the process (a client recovers there).
func TestNeedsTheAdapter(t *testing.T) {
	rs := testenv.StartRedis(t)
	bus := open(t, rs.Addr)
	var logs testenv.LogBuffer
	srv := server.New(server.WithLogger(logs.Logger()), server.WithConnectionStateRecovery(time.Minute, true),
		server.WithRecoveryStore(streamstore.New(bus.Client(), dialect(t, "k", 0), streamstore.Options{})))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	if !strings.Contains(logs.String(), "needs WithAdapter with a dialect that logs broadcasts") {
		t.Fatalf("not logged:\n%s", logs.String())
	}
	c, err := servertest.New(srv, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	sid, pid := c.SID("/"), c.PID("/")
	srv.Of("/").To(sid).Emit("ev", 1)
	evs, err := c.WaitFor("/", "ev", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Drop()
	for deadline := time.Now().Add(10 * time.Second); len(srv.Of("/").Sockets()) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not see the client go")
		}
	}
	back, err := c.Redial(servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if err := back.Connect("/", map[string]string{"pid": pid, "offset": servertest.LastOffset(evs)}); err != nil || back.SID("/") != sid {
		t.Fatalf("came back as %s (%v), was %s", back.SID("/"), err, sid)
	}
}
