// Command emitbench publishes N room-targeted emits through the Go emitter
// and the Redis bus, and prints one JSON line with the wall time. The
// driver (bench/run-emitter.sh) counts the publishes with Redis's own
// INFO commandstats.
//
//	go run ./bench/emitbench -n 200000 -dialect node -concurrency 64
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
)

func main() {
	url := flag.String("url", "redis://127.0.0.1:6379/0", "Redis URL")
	n := flag.Int("n", 200000, "number of emits")
	conc := flag.Int("concurrency", 64, "emitting goroutines")
	dialectName := flag.String("dialect", "node", "node | python | python-pickle")
	channel := flag.String("channel", "bench", "python channel / node key prefix")
	batchSize := flag.Int("batch", 0, "emit through emitter.Batch, this many emits per Publish (0: one Emit call per emit)")
	jsonArgs := flag.Bool("json", false, "with -batch: give the arguments as JSON text (Batch.EmitJSON), built with strconv, instead of a map per emit (Batch.Emit)")
	structArgs := flag.Bool("struct", false, "with -batch: give the arguments as a Go struct per emit (struct{ N int64 `json:\"n\"` }) through Batch.Emit, instead of a map")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *jsonArgs && *structArgs {
		fmt.Fprintln(os.Stderr, "-json and -struct exclude each other")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	var d dialect.Dialect
	switch *dialectName {
	case "node":
		d = node.New(node.Options{Key: *channel})
	case "python":
		d = python.New(python.Options{Channel: *channel})
	case "python-pickle":
		d = python.NewPickle(python.Options{Channel: *channel})
	default:
		fmt.Fprintln(os.Stderr, "unknown dialect")
		os.Exit(2)
	}
	ctx := context.Background()
	bus, err := redis.Open(ctx, *url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer bus.Close()
	em := emitter.New(bus, d)
	defer em.Close()
	room := em.To("bench")

	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := em.NewBatch() // reused: a Batch keeps its buffers between rounds
			var args []byte    // -json: this goroutine's argument text, reused
			for {
				if *batchSize > 0 {
					first := next.Add(int64(*batchSize)) - int64(*batchSize)
					if first >= int64(*n) {
						return
					}
					last := min(first+int64(*batchSize), int64(*n))
					for i := first; i < last; i++ {
						var err error
						switch {
						case *jsonArgs:
							args = append(strconv.AppendInt(append(args[:0], `[{"n":`...), i, 10), "}]"...)
							err = b.EmitJSON(room, "tick", args)
						case *structArgs:
							err = b.Emit(room, "tick", struct {
								N int64 `json:"n"`
							}{i})
						default:
							err = b.Emit(room, "tick", map[string]any{"n": i})
						}
						if err != nil {
							failed.Add(1)
						}
					}
					if err := b.Publish(ctx); err != nil {
						failed.Add(last - first)
					}
					continue
				}
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				if err := room.Emit(ctx, "tick", map[string]any{"n": i}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"contender": "go-" + *dialectName, "batch": *batchSize, "n": *n, "failed": failed.Load(),
		"seconds": el.Seconds(), "msgs_per_s": float64(*n) / el.Seconds(),
	})
}
