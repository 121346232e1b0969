package node

import (
	"testing"

	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
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

// BenchmarkAppendEmitStruct: an emit whose argument is a small struct,
// written by the struct path (structenc.go).
func BenchmarkAppendEmitStruct(b *testing.B) {
	type tick struct {
		N    int64   `json:"n"`
		Room string  `json:"room"`
		Load float64 `json:"load,omitempty"`
	}
	d := New(Options{})
	e := &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"bench"}}, Event: "tick"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Args = []any{tick{N: int64(i), Room: "bench", Load: 0.25}}
		if _, err := d.AppendEmit(buf[:0], new(queue.Message), e, nil); err != nil {
			b.Fatal(err)
		}
	}
}
