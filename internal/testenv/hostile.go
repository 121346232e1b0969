package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// HostileSizes are the input sizes of the hostile-input benchmarks: the
// cost per input byte must stay flat across them.
var HostileSizes = []int{1 << 10, 16 << 10, 128 << 10, 1 << 20}

// HostileCase is one input shape of a hostile-input benchmark.
type HostileCase struct {
	Name string
	// Make returns an input of about n bytes.
	Make func(n int) []byte
	// WantErr tells whether the decoder refuses the input (checked once
	// per size before timing, so a benchmark measures what it claims);
	// AnyErr accepts either outcome (a limit that only larger inputs hit).
	WantErr, AnyErr bool
}

// BenchHostile runs decode on every case at every size of HostileSizes as
// sub-benchmarks named case/size. Besides ns/op and B/op it reports ns/B,
// cpu-ns/B (process CPU time, GC included, steadier than wall time on a
// loaded machine) and allocB/B: time and allocated bytes per input byte.
func BenchHostile(b *testing.B, cases []HostileCase, decode func([]byte) error) {
	for _, c := range cases {
		for _, n := range HostileSizes {
			in := c.Make(n)
			b.Run(fmt.Sprintf("%s/%s", c.Name, sizeName(n)), func(b *testing.B) {
				if err := decode(in); !c.AnyErr && (err != nil) != c.WantErr {
					b.Fatalf("%d bytes: err %v, want an error: %v", len(in), err, c.WantErr)
				}
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cpu := cpuTime()
				for b.Loop() {
					decode(in)
				}
				cpu = cpuTime() - cpu
				runtime.ReadMemStats(&after)
				per := float64(b.N) * float64(len(in))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/B")
				b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/B")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "allocB/B")
			})
		}
	}
}

// Fill returns head, then item repeated with sep between to make about n
// bytes in all (at least once), then tail.
func Fill(n int, head, item, sep, tail string) []byte {
	k := max(1, (n-len(head)-len(tail)+len(sep))/(len(item)+len(sep)))
	return []byte(head + strings.Repeat(item+sep, k-1) + item + tail)
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMB", n>>20)
	}
	return fmt.Sprintf("%dKB", n>>10)
}
