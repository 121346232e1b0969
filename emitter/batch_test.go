package emitter

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue/memory"
)

func TestBatch(t *testing.T) {
	bus, d, em := setup(t)
	rec := record(t, bus, d)
	b := em.NewBatch()
	for i := 0; i < 5; i++ {
		if err := b.Emit(em.To("r"), "tick", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Emit(em.To("r"), "connect"); err == nil {
		t.Fatal("reserved event accepted")
	}
	other := New(memory.New(), d)
	defer other.Close()
	if err := b.Emit(other.To("r"), "x"); err == nil {
		t.Fatal("operator of another emitter accepted")
	}
	if b.Len() != 5 {
		t.Fatalf("Len %d", b.Len())
	}
	if err := b.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rec.wait(t, 5)
	for i, o := range got {
		e := o.(*op.Emit)
		if e.Event != "tick" || e.Args[0] != float64(i) {
			t.Fatalf("emit %d: %#v", i, e)
		}
	}
	if b.Len() != 0 || em.Stats().Published != 5 {
		t.Fatalf("after publish: len %d stats %+v", b.Len(), em.Stats())
	}
	em.Close()
	b.Emit(em.To("r"), "x")
	if err := b.Publish(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

// TestBatchBytes: Bytes is the size of what the batch holds, for callers
// that bound it; Publish empties it.
func TestBatchBytes(t *testing.T) {
	bus, _, em := setup(t)
	defer bus.Close()
	b := em.NewBatch()
	if b.Bytes() != 0 {
		t.Fatalf("empty batch holds %d bytes", b.Bytes())
	}
	small := b.Bytes()
	b.Emit(em.To("r"), "tick", 1)
	one := b.Bytes()
	b.Emit(em.To("r"), "tick", strings.Repeat("x", 1000))
	if one <= small || b.Bytes() < one+1000 {
		t.Fatalf("sizes %d, %d, %d", small, one, b.Bytes())
	}
	if err := b.Emit(em.To("r"), "connect"); err == nil {
		t.Fatal("reserved event accepted")
	}
	if b.Len() != 2 {
		t.Fatalf("a refused emit changed the batch: len %d", b.Len())
	}
	if err := b.Publish(context.Background()); err != nil || b.Bytes() != 0 || b.Len() != 0 {
		t.Fatalf("after publish: %v, %d bytes, len %d", err, b.Bytes(), b.Len())
	}
}

// TestBatchReuseAllocs: a Batch reused round after round allocates per
// emit only the caller's argument list and what the dialect returns (the
// message list, and the payload buffer's return to its pool),
// not an op and a growing message list each time.
func TestBatchReuseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	em := New(nullBus{}, node.New(node.Options{}))
	defer em.Close()
	room := em.To("bench")
	b := em.NewBatch()
	ctx := context.Background()
	const per = 256
	allocs := testing.AllocsPerRun(20, func() {
		for i := 0; i < per; i++ {
			b.Emit(room, "tick", int64(i%200))
		}
		b.Publish(ctx)
	})
	if perEmit := allocs / per; perEmit > 3.1 {
		t.Fatalf("%.2f allocations per emit, want at most 3", perEmit)
	}
}
