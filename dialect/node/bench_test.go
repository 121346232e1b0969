package node

import (
	"testing"

	"github.com/siobridge/siobridge/op"
)

func BenchmarkEncodeEmit(b *testing.B) {
	d := New(Options{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := d.Encode(&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"bench"}}, Event: "tick",
			Args: []any{map[string]any{"n": int64(i)}}}); err != nil {
			b.Fatal(err)
		}
	}
}
