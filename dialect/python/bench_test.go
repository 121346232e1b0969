package python

import (
	"testing"

	"github.com/siobridge/siobridge/op"
)

func BenchmarkEncodeEmit(b *testing.B) {
	for _, d := range []*Dialect{New(Options{}), NewPickle(Options{})} {
		b.Run(d.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := d.Encode(&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"bench"}}, Event: "tick",
					Args: []any{map[string]any{"n": int64(i)}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
