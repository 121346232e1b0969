package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
)

// recorder decodes what arrives on one side of a test bridge.
type recorder struct {
	mu  sync.Mutex
	ops []op.Op
	raw int
}

func record(t *testing.T, bus queue.Bus, d dialect.Dialect) *recorder {
	t.Helper()
	r := &recorder{}
	sub, err := bus.Subscribe(context.Background(), subscription(d, []string{"/"}, true), func(m queue.Message) {
		o, err := d.Decode(m)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.raw++
		if err == nil {
			r.ops = append(r.ops, o)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return r
}

func (r *recorder) snapshot() ([]op.Op, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]op.Op(nil), r.ops...), r.raw
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStats waits for c to read want: the relay counts a message once its
// publish returned, which may be after the other side got it.
func waitStats(t *testing.T, what string, c *counters, want Stats) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.snapshot() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s stats %+v, want %+v", what, c.snapshot(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publish(t *testing.T, bus queue.Bus, d dialect.Dialect, o op.Op) {
	t.Helper()
	msgs, err := d.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func startRelay(t *testing.T, a, b *side) (*relay, *testenv.LogBuffer) {
	t.Helper()
	var logs testenv.LogBuffer
	r := newRelay(slog.New(slog.NewTextHandler(&logs, nil)), a, b, false)
	if err := r.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r, &logs
}

// pythonToNode bridges pyD on one memory bus and nodeD on another.
func pythonToNode(t *testing.T, pyD, nodeD dialect.Dialect, nodeRequests bool) (busA, busB *memory.Bus, r *relay, logs *testenv.LogBuffer) {
	t.Helper()
	busA, busB = memory.New(), memory.New()
	t.Cleanup(func() { busA.Close(); busB.Close() })
	r, logs = startRelay(t, newSide("from", busA, pyD, nil, false), newSide("to", busB, nodeD, []string{"/"}, nodeRequests))
	return busA, busB, r, logs
}

// Python pickle on one bus and node on another: an emit and room
// operations each way arrive once, translated, and the bridge drops its
// own messages when they come back (counted as echoes) instead of
// relaying them again.
func TestRelayBothWays(t *testing.T) {
	pyD := python.NewPickle(python.Options{Channel: "py"})
	nodeD := node.New(node.Options{Key: "k"})
	busA, busB, r, _ := pythonToNode(t, pyD, nodeD, true)
	onA, onB := record(t, busA, pyD), record(t, busB, nodeD)

	worker := python.NewPickle(python.Options{Channel: "py"}) // a python-socketio worker
	emit := &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"r1"}}, Event: "news", Args: []any{"a", []byte{1}}}
	publish(t, busA, worker, emit)
	publish(t, busA, worker, &op.CloseRoom{Namespace: "/", Room: "r1"})
	waitUntil(t, "two ops on the node side", func() bool { ops, _ := onB.snapshot(); return len(ops) == 2 })
	waitUntil(t, "their echoes", func() bool { return r.ba.echoes.Load() == 2 })

	nodeEmitter := node.New(node.Options{Key: "k"})
	publish(t, busB, nodeEmitter, &op.Emit{Target: op.Target{Namespace: "/"}, Event: "back", Args: []any{1.5}})
	publish(t, busB, nodeEmitter, &op.Disconnect{Target: op.Target{Namespace: "/", Rooms: []string{"SID1"}}})
	waitUntil(t, "two more ops on the python side", func() bool { ops, _ := onA.snapshot(); return len(ops) == 4 })
	waitUntil(t, "their echoes", func() bool { return r.ab.echoes.Load() == 2 })

	// a last message each way: everything before it has been handled
	publish(t, busA, worker, &op.Emit{Target: op.Target{Namespace: "/"}, Event: "end-a"})
	publish(t, busB, nodeEmitter, &op.Emit{Target: op.Target{Namespace: "/"}, Event: "end-b"})
	waitUntil(t, "the ends", func() bool { return r.ab.echoes.Load() == 3 && r.ba.echoes.Load() == 3 })

	// 3 published by peers + 3 relayed, per side
	waitUntil(t, "six messages per side", func() bool {
		_, rawA := onA.snapshot()
		_, rawB := onB.snapshot()
		return rawA == 6 && rawB == 6
	})
	opsB, rawB := onB.snapshot()
	opsA, rawA := onA.snapshot()
	if len(opsA) != 6 || len(opsB) != 6 {
		t.Fatalf("messages on the python side %d, on the node side %d; want 6 each\n%#v\n%#v", rawA, rawB, opsA, opsB)
	}
	got := opsB[0].(*op.Emit)
	if got.Event != "news" || !reflect.DeepEqual(got.Rooms, []string{"r1"}) || !reflect.DeepEqual(got.Args, []any{"a", []byte{1}}) {
		t.Fatalf("relayed emit %#v", got)
	}
	if _, ok := opsB[1].(*op.Leave); !ok { // close-room: what io.in(r).socketsLeave(r) sends
		t.Fatalf("relayed close-room %#v", opsB[1])
	}
	if d, ok := opsA[3].(*op.Disconnect); !ok || !reflect.DeepEqual(d.Rooms, []string{"SID1"}) {
		t.Fatalf("relayed disconnect %#v", opsA[3])
	}
	want := Stats{Relayed: 3, Echoes: 3}
	waitStats(t, "a->b", &r.ab, want)
	waitStats(t, "b->a", &r.ba, want)
}

// Two pickle channels: close_room and disconnect carry no host id, so
// only the remembered digests stop them from bouncing between the sides.
func TestRelayOriginlessOpsDoNotLoop(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	a, b := python.NewPickle(python.Options{Channel: "a"}), python.NewPickle(python.Options{Channel: "b"})
	r, _ := startRelay(t, newSide("from", bus, a, nil, false), newSide("to", bus, b, nil, false))
	onB := record(t, bus, b)
	publish(t, bus, a, &op.CloseRoom{Namespace: "/", Room: "r"})
	publish(t, bus, a, &op.Disconnect{Target: op.Target{Namespace: "/", Rooms: []string{"S"}}})
	waitUntil(t, "echoes", func() bool { return r.ba.echoes.Load() == 2 })
	publish(t, bus, a, &op.Emit{Target: op.Target{Namespace: "/"}, Event: "end"})
	waitUntil(t, "end", func() bool { return r.ba.echoes.Load() == 3 })
	waitUntil(t, "three messages on b", func() bool { _, raw := onB.snapshot(); return raw == 3 })
	waitUntil(t, "three relayed a->b", func() bool { return r.ab.snapshot().Relayed == 3 })
	if ba := r.ba.snapshot(); ba.Relayed != 0 {
		t.Fatalf("b->a relayed %+v: an echo went back", ba)
	}
}

// Garbage is counted and dropped; an op kind the other side cannot take
// is counted every time and logged once.
func TestRelayMalformedAndUnsupported(t *testing.T) {
	pyD := python.New(python.Options{Channel: "py"})
	nodeD := node.New(node.Options{Key: "k"})
	busA, busB, r, logs := pythonToNode(t, pyD, nodeD, false)
	onB := record(t, busB, nodeD)
	ctx := context.Background()
	for range 3 {
		if err := busA.Publish(ctx, queue.Message{Channel: "py", Data: []byte("\x00not json")}); err != nil {
			t.Fatal(err)
		}
		// python-socketio's callback message: no node equivalent
		publish(t, busA, pyD, &op.AckReply{Namespace: "/", Host: "h", Sid: "s", ID: "1", Args: []any{"x"}})
	}
	publish(t, busA, pyD, &op.Emit{Target: op.Target{Namespace: "/"}, Event: "end"})
	waitUntil(t, "end", func() bool { ops, _ := onB.snapshot(); return len(ops) == 1 })
	waitStats(t, "a->b", &r.ab, Stats{Relayed: 1, Malformed: 3, Unsupported: 3})
	out := logs.String()
	if n := strings.Count(out, "not relayed (logged once per kind)"); n != 1 {
		t.Fatalf("the ack kind was logged %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "malformed messages are counted and dropped"); n != 1 {
		t.Fatalf("malformed logged %d times:\n%s", n, out)
	}
}

// The remembered digests are bounded by count and by age.
func TestRecentSetBounds(t *testing.T) {
	s := newRecentSet(8, time.Minute)
	now := time.Unix(0, 0)
	s.now = func() time.Time { return now }
	for i := range 100 {
		s.add([16]byte{byte(i)})
	}
	if n := s.len(); n != 8 {
		t.Fatalf("%d entries, want 8", n)
	}
	if s.take([16]byte{0}) || !s.take([16]byte{99}) || s.take([16]byte{99}) {
		t.Fatal("the oldest must be forgotten, the newest taken once")
	}
	// the same digest twice is taken twice
	s.add([16]byte{200})
	s.add([16]byte{200})
	if !s.take([16]byte{200}) || !s.take([16]byte{200}) || s.take([16]byte{200}) {
		t.Fatal("a digest added twice must be taken exactly twice")
	}
	now = now.Add(2 * time.Minute)
	if s.take([16]byte{98}) || s.len() != 0 {
		t.Fatalf("expired entries remain: %d", s.len())
	}
	if len(s.counts) != 0 {
		t.Fatalf("the map keeps %d digests", len(s.counts))
	}
}

// A node REMOTE_JOIN naming many sockets and rooms would be one python
// enter_room message per pair: it is refused, counted and logged, and
// nothing is published.
func TestRelayBoundsGrowth(t *testing.T) {
	nodeD := node.New(node.Options{Key: "k"})
	pyD := python.New(python.Options{Channel: "py"})
	busA, busB := memory.New(), memory.New()
	t.Cleanup(func() { busA.Close(); busB.Close() })
	r, logs := startRelay(t, newSide("from", busA, nodeD, []string{"/"}, true), newSide("to", busB, pyD, nil, false))
	onB := record(t, busB, pyD)
	sids, rooms := make([]string, 300), make([]string, 300)
	for i := range sids {
		sids[i], rooms[i] = fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i)
	}
	big := &op.Join{Target: op.Target{Namespace: "/", Rooms: sids}, Rooms: rooms}
	msgs, err := nodeD.Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pyD.Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a %d-byte REMOTE_JOIN is %d python messages", len(msgs[0].Data), len(out))
	// the cost of handling it is bounded by its size: measured on a direct
	// call (the relay's own subscription handles the published copy below)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var c counters
	r.handle(r.a, r.b, &c, queue.Message{Channel: msgs[0].Channel, Data: msgs[0].Data})
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(64*len(msgs[0].Data)+1<<20) {
		t.Fatalf("handling a %d-byte message allocated %d bytes", len(msgs[0].Data), grew)
	}
	if c.snapshot() != (Stats{Unsupported: 1}) {
		t.Fatalf("direct call stats %+v", c.snapshot())
	}
	publish(t, busA, nodeD, big)
	publish(t, busA, nodeD, &op.Join{Target: op.Target{Namespace: "/", Rooms: []string{"s1"}}, Rooms: []string{"r1"}})
	waitUntil(t, "the small join", func() bool { _, raw := onB.snapshot(); return raw == 1 })
	waitStats(t, "a->b", &r.ab, Stats{Relayed: 1, Unsupported: 1})
	if _, raw := onB.snapshot(); raw != 1 {
		t.Fatalf("%d messages on the other side, want the small join only", raw)
	}
	if !strings.Contains(logs.String(), "would grow too much") {
		t.Fatalf("not logged:\n%s", logs.String())
	}
}

// The digests of one side stay under the documented 1 MiB when full, even
// after many more additions.
func TestRecentSetMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newRecentSet(maxRecent, recentTTL)
	for i := range 10 * maxRecent {
		var d [16]byte
		d[0], d[1], d[2] = byte(i), byte(i>>8), byte(i>>16)
		s.add(d)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d digests hold %d bytes", s.len(), held)
	if s.len() != maxRecent || held > 1<<20 {
		t.Fatalf("%d entries holding %d bytes", s.len(), held)
	}
	runtime.KeepAlive(s)
}
