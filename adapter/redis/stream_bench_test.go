package redis

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

// BenchmarkStreamRead reads a stream of 10,000 small entries (the
// fields the Node streams adapter writes) from its start with a stream
// reader, as a subscription reads what is appended: one op is the whole
// stream. It reports ns, allocations and bytes per entry.
func BenchmarkStreamRead(b *testing.B) {
	testenv.Need(b, "redis", testenv.RedisAddr)
	const entries = 10000
	ctx := context.Background()
	bus, err := Open(ctx, "redis://"+testenv.RedisAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	key := fmt.Sprintf("siobridge-bench-stream-%d", time.Now().UnixNano())
	defer bus.client.Del(ctx, key)
	pipe := bus.client.Pipeline()
	for i := range entries {
		pipe.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []string{
			"uid", "Kf3xQ9", "nsp", "/", "type", "3",
			"data", `{"opts":{"rooms":[],"except":[],"flags":{}},"packet":{"type":2,"data":["tick",` + strconv.Itoa(i) + `],"nsp":"/"}}`}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		got, done := 0, make(chan struct{})
		h := func(queue.Message) {
			if got++; got == entries {
				close(done)
			}
		}
		r := &streamReader{b: bus, key: key, h: h, start: "0-0", last: "0-0", stop: make(chan struct{}), done: make(chan struct{})}
		go r.run()
		<-done
		r.close()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	per := float64(b.N) * entries
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/entry")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/entry")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/entry")
}
