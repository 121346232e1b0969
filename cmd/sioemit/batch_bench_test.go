package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/queue"
)

// nullBus takes messages and drops them: the benchmark measures reading,
// decoding and encoding the lines, not a broker.
type nullBus struct{}

func (nullBus) Publish(ctx context.Context, msgs ...queue.Message) error { return nil }
func (nullBus) Subscribe(context.Context, queue.Subscription, queue.Handler) (queue.Subscriber, error) {
	return nil, nil
}
func (nullBus) Close() error { return nil }

// BenchmarkBatchLines: one --batch line (a node room emit), read, decoded,
// encoded and handed to the bus.
func BenchmarkBatchLines(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 10000; i++ {
		sb.WriteString(`{"event":"tick","args":[{"n":` + strconv.Itoa(i*1000) + `}],"to":["bench"]}` + "\n")
	}
	in := sb.String()
	d := node.New(node.Options{Key: "bench"})
	b.ReportAllocs()
	b.SetBytes(int64(len(in)) / 10000)
	for done := 0; done < b.N; done += 10000 {
		o, _ := parseArgs([]string{"--batch", "-"}, func(string) string { return "" })
		em := emitter.New(nullBus{}, d)
		c := &cli{o: o, d: d, em: em, stdin: strings.NewReader(in), stdout: io.Discard, stderr: io.Discard}
		if code := c.batch(false); code != 0 {
			b.Fatal(code)
		}
		em.Close()
	}
}
