package emitter

import (
	"context"
	"errors"
	"testing"

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
