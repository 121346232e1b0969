package emitter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
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
// emit only the caller's argument list: with a dialect.EmitAppender
// dialect the payloads go to the batch's own buffer, not an op, a
// message list and a payload buffer each time.
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
	if perEmit := allocs / per; perEmit > 1.1 {
		t.Fatalf("%.2f allocations per emit, want at most 1", perEmit)
	}
	args := []byte(`[{"n":1,"s":"x"}]`)
	allocs = testing.AllocsPerRun(20, func() {
		for i := 0; i < per; i++ {
			b.EmitJSON(room, "tick", args)
		}
		b.Publish(ctx)
	})
	if perEmit := allocs / per; perEmit > 0.1 {
		t.Fatalf("EmitJSON: %.2f allocations per emit, want none", perEmit)
	}
}

// TestBatchEmitJSON: arguments given as JSON text arrive as the same
// values as when given as Go values, through the node dialect's fast path,
// its fallback, and a dialect without a fast path.
func TestBatchEmitJSON(t *testing.T) {
	ctx := context.Background()
	for _, d := range []dialect.Dialect{node.New(node.Options{}), python.New(python.Options{})} {
		t.Run(d.Name(), func(t *testing.T) {
			bus := memory.New()
			defer bus.Close()
			em := New(bus, d)
			defer em.Close()
			var mu sync.Mutex
			var got []*op.Emit
			sub, err := bus.Subscribe(ctx, queue.Subscription{Patterns: []string{"*"}}, func(m queue.Message) {
				o, err := d.Decode(m)
				if err != nil {
					t.Errorf("decode: %v", err)
					return
				}
				mu.Lock()
				got = append(got, o.(*op.Emit))
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			cases := []string{
				`[{"n":1,"s":"caf\u00e9"},[true,null,1.5],-7]`,
				`null`,
				`[{"b":1,"a":2}]`,
				`[12345678901234567890]`, // uint64: the value path
				`[{"1":"index-like"}]`,   // the value path
			}
			b := em.NewBatch()
			room := em.To("r")
			for _, c := range cases {
				if err := b.EmitJSON(room, "ev", []byte(c)); err != nil {
					t.Fatalf("EmitJSON(%s): %v", c, err)
				}
				args, err := decodeJSONArgs([]byte(c))
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Emit(room, "ev", args...); err != nil {
					t.Fatal(err)
				}
			}
			for _, bad := range []string{`[1,`, `{"a":1}`, `"x"`, `[1] 2`, ``} {
				if err := b.EmitJSON(room, "ev", []byte(bad)); err == nil {
					t.Errorf("EmitJSON(%q) accepted", bad)
				}
			}
			if err := b.EmitJSON(room, "connect", []byte(`[]`)); err == nil {
				t.Error("reserved event accepted")
			}
			if b.Len() != 2*len(cases) {
				t.Fatalf("refused emits changed the batch: len %d", b.Len())
			}
			if err := b.Publish(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n == 2*len(cases) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d emits arrived", n, 2*len(cases))
				}
				time.Sleep(5 * time.Millisecond)
			}
			for i := range cases {
				fromJSON, fromValues := got[2*i], got[2*i+1]
				if fromJSON.Event != "ev" || !reflect.DeepEqual(fromJSON.Args, fromValues.Args) || !reflect.DeepEqual(fromJSON.Rooms, []string{"r"}) {
					t.Errorf("case %s: from JSON %#v, from values %#v", cases[i], fromJSON, fromValues)
				}
			}
		})
	}
}

// TestBatchEmitNotPlain: Batch.Emit hands the node dialect the arguments
// as they are; what is not plain data (structs, named types, marshalers,
// a nil *big.Int) is normalized after all, and arrives as Operator.Emit
// sends it.
func TestBatchEmitNotPlain(t *testing.T) {
	ctx := context.Background()
	d := node.New(node.Options{})
	bus := memory.New()
	defer bus.Close()
	em := New(bus, d)
	defer em.Close()
	got := make(chan []byte, 16)
	sub, err := bus.Subscribe(ctx, queue.Subscription{Patterns: []string{"*"}}, func(m queue.Message) { got <- m.Data })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	type point struct {
		X, Y int
	}
	type names []string
	var nilBig *big.Int
	args := []any{point{1, 2}, names{"a"}, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), nilBig, json.RawMessage(`{"k":[1]}`), []string{"s"}, big.NewInt(5), int32(7), map[string]any{"p": point{3, 4}}}
	for _, a := range args {
		b := em.NewBatch()
		if err := b.Emit(em.To("r"), "ev", a); err != nil {
			t.Fatalf("Batch.Emit(%T): %v", a, err)
		}
		if err := b.Publish(ctx); err != nil {
			t.Fatal(err)
		}
		if err := em.To("r").Emit(ctx, "ev", a); err != nil {
			t.Fatalf("Emit(%T): %v", a, err)
		}
		batched, single := <-got, <-got
		if !bytes.Equal(batched, single) {
			t.Errorf("%T: batch sent % x, Emit % x", a, batched, single)
		}
	}
}
