package emitter

import (
	"context"
	"testing"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/queue"
)

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

func BenchmarkBatch(b *testing.B) {
	em := New(nullBus{}, node.New(node.Options{}))
	room := em.To("bench")
	ctx := context.Background()
	batch := em.NewBatch()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := batch.Emit(room, "tick", map[string]any{"n": int64(i)}); err != nil {
			b.Fatal(err)
		}
		if batch.Len() == 256 {
			batch.Publish(ctx)
		}
	}
}
