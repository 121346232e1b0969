package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// gateBus is an in-memory bus whose broker answers a publish only once
// the gate is open (a slow or absent broker), or refuses it.
type gateBus struct {
	*memory.Bus
	gate    chan struct{}
	fail    atomic.Bool
	calls   atomic.Int64 // Publish calls
	largest atomic.Int64 // most messages in one call
}

func (g *gateBus) Publish(ctx context.Context, msgs ...queue.Message) error {
	g.calls.Add(1)
	for n := int64(len(msgs)); ; {
		if old := g.largest.Load(); n <= old || g.largest.CompareAndSwap(old, n) {
			break
		}
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.fail.Load() {
		return errors.New("test broker: refused")
	}
	return g.Bus.Publish(ctx, msgs...)
}

// returns runs f and reports whether it returned within 10 s.
func returns(f func()) bool {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// A broadcast does not wait for the broker (Emit returns once this node's
// clients are served, as Node's adapter does: one client's handlers, run
// in order, used to wait a broker round trip each); the broadcasts still
// reach the other nodes in order, and an operation that waits for its
// publish (SocketsJoin) waits for the broadcasts made before it.
func TestClusterEmitDoesNotWaitForTheBroker(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	d := python.New(python.Options{Channel: "gate"})
	gb := &gateBus{Bus: bus, gate: make(chan struct{})}
	a, b := memberOn(t, gb, d), memberOn(t, bus, d)
	c := client(t, b, "/", servertest.Options{})
	if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var err error
		if !returns(func() { err = a.Of("/").To("r").Emit("e", i) }) {
			close(gb.gate)
			t.Fatal("Emit waited for the broker")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	joined := make(chan error, 1)
	go func() { joined <- a.Of("/").In("r").SocketsJoin("r2") }()
	close(gb.gate)
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	got, err := c.WaitFor("/", "e", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(got) < 3 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		got = append(got, c.Received("/")...)
	}
	var seq []string
	for _, r := range got {
		seq = append(seq, fmt.Sprint(r.Args))
	}
	if fmt.Sprint(seq) != "[[0] [1] [2]]" {
		t.Fatalf("the other node's client got %v, want the three broadcasts in order", seq)
	}
	// the join was published after the broadcasts: it is in effect on B
	if err := b.Of("/").To("r2").Emit("in-r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor("/", "in-r2", 5*time.Second); err != nil {
		t.Fatal("the join published after the broadcasts did not reach the other node:", err)
	}
}

// The broadcasts a member has queued while the broker answers an earlier
// publish go out together in one Publish (one round trip, not one per
// broadcast), in their order, at most MaxCoalescedMsgs in one call.
func TestClusterBroadcastsShareAPublish(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	d := python.New(python.Options{Channel: "coalesce"})
	gb := &gateBus{Bus: bus, gate: make(chan struct{})}
	a, b := memberOn(t, gb, d), memberOn(t, bus, d)
	c := client(t, b, "/", servertest.Options{})
	if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
		t.Fatal(err)
	}
	n := 2*server.MaxCoalescedMsgs + 100
	for i := range n {
		if err := a.Of("/").To("r").Emit("e", i); err != nil {
			close(gb.gate)
			t.Fatal(err)
		}
	}
	close(gb.gate)
	var got []any
	for deadline := time.Now().Add(10 * time.Second); len(got) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the other node's client got %d of %d broadcasts", len(got), n)
		}
		for _, r := range c.Received("/") {
			got = append(got, r.Args[0])
		}
	}
	for i, v := range got {
		if fmt.Sprint(v) != fmt.Sprint(i) {
			t.Fatalf("broadcast %d arrived as %v: order lost", i, v)
		}
	}
	// the first waited at the gate; the others queued behind it, in
	// calls of at most MaxCoalescedMsgs
	if calls := gb.calls.Load(); calls > 5 {
		t.Fatalf("%d Publish calls for %d queued broadcasts: not coalesced", calls, n)
	}
	if l := gb.largest.Load(); l > server.MaxCoalescedMsgs {
		t.Fatalf("one Publish carried %d broadcasts, more than the bound %d", l, server.MaxCoalescedMsgs)
	}
}

// While the broker does not answer, the broadcasts waiting for it are
// bounded in bytes: past MaxPublishBacklog, Emit returns ErrPublishBacklog
// at once and counts it.
func TestClusterPublishBacklogBounded(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	gb := &gateBus{Bus: bus, gate: make(chan struct{})}
	defer close(gb.gate)
	a := memberOn(t, gb, python.New(python.Options{Channel: "backlog"}))
	payload := strings.Repeat("x", 1<<20)
	accepted := 0
	var err error
	for range 2 * server.MaxPublishBacklog >> 20 {
		if !returns(func() { err = a.Of("/").To("r").Emit("big", payload) }) {
			t.Fatal("Emit waited for the broker")
		}
		if err != nil {
			break
		}
		accepted++
	}
	if !errors.Is(err, server.ErrPublishBacklog) {
		t.Fatalf("after %d broadcasts of 1 MiB: %v, want ErrPublishBacklog", accepted, err)
	}
	if max := server.MaxPublishBacklog>>20 + 1; accepted > max {
		t.Fatalf("%d broadcasts of 1 MiB waited for the broker, want at most %d", accepted, max)
	}
	if st := a.QueueStats(); st.PublishErrs == 0 {
		t.Fatalf("the refused broadcast was not counted: %+v", st)
	}
}

// A broadcast the broker refuses after Emit returned is counted (and
// logged); the node's own clients were served.
func TestClusterFailedBackgroundPublishCounted(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	gb := &gateBus{Bus: bus, gate: make(chan struct{})}
	close(gb.gate)
	a := memberOn(t, gb, python.New(python.Options{Channel: "refused"}))
	c := client(t, a, "/", servertest.Options{})
	if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
		t.Fatal(err)
	}
	gb.fail.Store(true)
	if err := a.Of("/").To("r").Emit("e"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor("/", "e", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); a.QueueStats().PublishErrs != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want one publish error", a.QueueStats())
		}
	}
}
