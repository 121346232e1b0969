package testenv

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
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

// CheckHostile decodes every case at 1 KiB and 256 KiB: the outcome must
// be what the case says, and the bytes allocated at most 64 times the
// input's size (plus 1 MiB).
func CheckHostile(t *testing.T, cases []HostileCase, decode func([]byte) error) {
	t.Helper()
	for _, c := range cases {
		for _, n := range []int{1 << 10, 256 << 10} {
			in := c.Make(n)
			var err error
			alloc := AllocatedBytes(func() { err = decode(in) })
			if !c.AnyErr && (err != nil) != c.WantErr {
				t.Errorf("%s/%d: err %v, want an error: %v", c.Name, n, err, c.WantErr)
			}
			if limit := uint64(64*len(in) + 1<<20); alloc > limit {
				t.Errorf("%s/%d: %d bytes allocated for %d bytes of input (limit %d)", c.Name, n, alloc, len(in), limit)
			}
		}
	}
}

// CheckDecoder is the body of the dialects' decode fuzzers: decoding m
// with d allocates at most 256 times its Data's size (plus 1 MiB); an
// error wraps dialect.ErrMalformed or dialect.ErrUnsupported; an op that
// decodes and that d encodes again (it may refuse, e.g. a reserved event
// name) gives a first message that decodes (a stream entry with an id).
func CheckDecoder(t *testing.T, d dialect.Dialect, m queue.Message) {
	t.Helper()
	var o op.Op
	var err error
	n := AllocatedBytes(func() { o, err = d.Decode(m) })
	if limit := uint64(256*len(m.Data) + 1<<20); n > limit {
		t.Fatalf("%d bytes of input allocated %d bytes", len(m.Data), n)
	}
	if err != nil {
		if !errors.Is(err, dialect.ErrMalformed) && !errors.Is(err, dialect.ErrUnsupported) {
			t.Fatalf("error %v wraps neither ErrMalformed nor ErrUnsupported", err)
		}
		return
	}
	msgs, err := d.Encode(o)
	if err != nil {
		return
	}
	again := msgs[0]
	if again.Stream {
		again.ID = "1-1"
	}
	if _, err := d.Decode(again); err != nil {
		t.Fatalf("%#v encodes to %q, which does not decode: %v", o, again.Data, err)
	}
}
