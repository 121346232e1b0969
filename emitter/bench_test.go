package emitter

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
)

func memoryBus() *memory.Bus { return memory.New() }

// nullBus takes messages and drops them: the benchmarks measure the
// emitter and the dialect, not a broker.
type nullBus struct{}

func (nullBus) Publish(ctx context.Context, msgs ...queue.Message) error { return nil }
func (nullBus) Subscribe(context.Context, queue.Subscription, queue.Handler) (queue.Subscriber, error) {
	return nil, nil
}
func (nullBus) Close() error { return nil }

func BenchmarkEmit(b *testing.B) {
	em := New(nullBus{}, node.New(node.Options{}))
	room := em.To("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := room.Emit(ctx, "tick", map[string]any{"n": int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBatch emits b.N times through a Batch with emit (given the batch,
// a room and the emit's number), publishing every 256 emits.
func benchBatch(b *testing.B, emit func(batch *Batch, room *Operator, i int) error) {
	em := New(nullBus{}, node.New(node.Options{}))
	room := em.To("bench")
	ctx := context.Background()
	batch := em.NewBatch()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := emit(batch, room, i); err != nil {
			b.Fatal(err)
		}
		if batch.Len() == 256 {
			batch.Publish(ctx)
		}
	}
}

func BenchmarkBatch(b *testing.B) {
	benchBatch(b, func(batch *Batch, room *Operator, i int) error {
		return batch.Emit(room, "tick", map[string]any{"n": int64(i)})
	})
}

// BenchmarkBatchReusedMap is BenchmarkBatch without the map per emit: the
// library's own share of an emit.
func BenchmarkBatchReusedMap(b *testing.B) {
	m := map[string]any{"n": int64(0)}
	benchBatch(b, func(batch *Batch, room *Operator, i int) error {
		m["n"] = int64(i)
		return batch.Emit(room, "tick", m)
	})
}

// BenchmarkBatchStruct is BenchmarkBatch with the argument as a Go struct:
// the node dialect writes it straight from its fields (before, every emit
// went through op.Normalize, that is json.Marshal and a JSON decode).
func BenchmarkBatchStruct(b *testing.B) {
	type tick struct {
		N int64 `json:"n"`
	}
	benchBatch(b, func(batch *Batch, room *Operator, i int) error {
		return batch.Emit(room, "tick", tick{N: int64(i)})
	})
}

// BenchmarkBatchJSON: the arguments as JSON text (Batch.EmitJSON).
func BenchmarkBatchJSON(b *testing.B) {
	args := []byte(`[{"n":123456}]`)
	benchBatch(b, func(batch *Batch, room *Operator, i int) error {
		return batch.EmitJSON(room, "tick", args)
	})
}

// TestPooledPayloadsStayIntact: payload buffers are reused after each
// publish; what the subscribers received must never change afterwards.
func TestPooledPayloadsStayIntact(t *testing.T) {
	bus := memoryBus()
	defer bus.Close()
	d := node.New(node.Options{})
	em := New(bus, d)
	defer em.Close()
	got := make(chan queue.Message, 4096)
	sub, err := bus.Subscribe(context.Background(), queue.Subscription{Channels: []string{"socket.io#/#r#"}}, func(m queue.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const workers, each = 8, 200
	done := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			b := em.NewBatch()
			for i := 0; i < each; i++ {
				if err := em.To("r").Emit(context.Background(), "e", w*1000+i); err != nil {
					done <- err
					return
				}
				b.Emit(em.To("r"), "e", 1_000_000+w*1000+i)
			}
			done <- b.Publish(context.Background())
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	var msgs []queue.Message
	for len(msgs) < 2*workers*each {
		msgs = append(msgs, <-got)
	}
	for _, m := range msgs { // decoded only now: after many buffers were reused
		o, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		v := o.(*op.Emit).Args[0].(int64)
		if seen[v] {
			t.Fatalf("value %d seen twice: a buffer was reused under a delivered message", v)
		}
		seen[v] = true
	}
}

// BenchmarkEmitStruct is BenchmarkEmit with a struct argument.
func BenchmarkEmitStruct(b *testing.B) {
	type tick struct {
		N int64 `json:"n"`
	}
	em := New(nullBus{}, node.New(node.Options{}))
	room := em.To("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := room.Emit(ctx, "tick", tick{N: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// recordingBus keeps a copy of every published message.
type recordingBus struct {
	nullBus
	msgs []queue.Message
}

func (r *recordingBus) Publish(ctx context.Context, msgs ...queue.Message) error {
	for _, m := range msgs {
		m.Data = append([]byte(nil), m.Data...) // the emitter reuses the buffers
		r.msgs = append(r.msgs, m)
	}
	return nil
}

// TestEmitWritesArgumentsAsTheyAre: with the node dialect, Emit writes a
// plain struct argument straight from its fields instead of normalizing
// it first (json.Marshal and a decode: 18 allocations before), with the
// bytes the normalized path gives; what the direct path does not take
// (a time.Time field) still goes the normalized way.
func TestEmitWritesArgumentsAsTheyAre(t *testing.T) {
	type tick struct {
		N    int64  `json:"n"`
		Room string `json:"room,omitempty"`
	}
	type stamped struct {
		At time.Time `json:"at"`
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	bus := &recordingBus{}
	em := New(bus, node.New(node.Options{}))
	defer em.Close()
	ctx := context.Background()
	for _, args := range [][2]any{
		{tick{N: 7, Room: "r"}, map[string]any{"n": int64(7), "room": "r"}},
		{&tick{N: 8}, map[string]any{"n": int64(8)}},
		{stamped{At: at}, map[string]any{"at": "2026-12-01T00:00:00Z"}},
	} {
		bus.msgs = nil
		for _, a := range args {
			if err := em.To("r").Emit(ctx, "tick", a); err != nil {
				t.Fatal(err)
			}
		}
		if len(bus.msgs) != 2 || !bytes.Equal(bus.msgs[0].Data, bus.msgs[1].Data) || bus.msgs[0].Channel != bus.msgs[1].Channel {
			t.Fatalf("%#v: published %+v, want the bytes of %#v", args[0], bus.msgs, args[1])
		}
	}
	if raceEnabled {
		return // allocation counts are not meaningful under the race detector
	}
	room := em.To("r")
	allocs := testing.AllocsPerRun(100, func() {
		if err := room.Emit(ctx, "tick", tick{N: 7}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 8 {
		t.Fatalf("Emit of a small struct: %.0f allocations, want at most 8 (the normalized path takes 18)", allocs)
	}
}
