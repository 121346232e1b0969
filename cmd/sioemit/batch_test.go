package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// recordBus records what is published, in order; fail decides, per
// Publish call (counted from 1), whether it fails.
type recordBus struct {
	nullBus
	mu      sync.Mutex
	msgs    []queue.Message
	calls   int
	fail    func(call int) bool
	onCall  func(msgs []queue.Message) // called at each Publish
	largest int                        // most messages in one call
}

func (b *recordBus) Publish(ctx context.Context, msgs ...queue.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.onCall != nil {
		b.onCall(msgs)
	}
	if b.fail != nil && b.fail(b.calls) {
		return errors.New("broker refused")
	}
	b.largest = max(b.largest, len(msgs))
	for _, m := range msgs {
		m.Data = bytes.Clone(m.Data) // the payload buffers are reused after Publish
		b.msgs = append(b.msgs, m)
	}
	return nil
}

// runBatch runs --batch on in through bus with the node dialect.
func runBatch(t testing.TB, bus queue.Bus, in io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	o, err := parseArgs(append([]string{"--batch", "-", "--dialect", "node", "--timeout", "2s"}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDialect(o.dialect, o.channel, o.shardedMode)
	if err != nil {
		t.Fatal(err)
	}
	em := emitter.New(bus, d)
	defer em.Close()
	var out, errb bytes.Buffer
	c := &cli{o: o, d: d, em: em, stdin: in, stdout: &out, stderr: &errb}
	code = c.batch(false)
	return code, out.String(), errb.String()
}

// decodeTicks decodes node emits (of key prefix "socket.io", or key) and
// returns their first argument's "n".
func decodeTicks(t *testing.T, msgs []queue.Message, key ...string) []int64 {
	t.Helper()
	d := node.New(node.Options{Key: strings.Join(key, "")})
	var ns []int64
	for _, m := range msgs {
		o, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, o.(*op.Emit).Args[0].(map[string]any)["n"].(int64))
	}
	return ns
}

func tickLines(from, to int) string {
	var sb strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&sb, `{"event":"tick","args":[{"n":%d}],"to":["r%d"]}`+"\n", i, i%3)
	}
	return sb.String()
}

// TestBatchOrderAndChunks: every line is published once, in the order of
// the file, in chunks (not one publish per line).
func TestBatchOrderAndChunks(t *testing.T) {
	const n = 5000
	bus := &recordBus{}
	code, out, stderr := runBatch(t, bus, strings.NewReader(tickLines(0, n)))
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("sent %d, failed 0", n)) || stderr != "" {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
	got := decodeTicks(t, bus.msgs)
	if len(got) != n {
		t.Fatalf("%d messages, want %d", len(got), n)
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("message %d carries n=%d: order lost", i, v)
		}
	}
	if bus.calls > n/100 {
		t.Fatalf("%d publish calls for %d lines: not batched", bus.calls, n)
	}
}

// TestBatchLineErrors: an invalid line is reported with its number and
// skipped; the other lines are sent; exit status 2.
func TestBatchLineErrors(t *testing.T) {
	lines := []string{
		`{"event":"tick","args":[{"n":0}]}`,
		`{"event":"tick","args":[1,]}`,                 // 2: trailing comma
		`{"event":"tick","bogus":1}`,                   // 3: unknown field
		`{"event":"connect"}`,                          // 4: reserved event
		`{"event":"tick","args":[{"$binary":"!!"}]}`,   // 5: invalid base64
		`{"event":"tick","args":[1e999]}`,              // 6: number out of range
		`{"event":"tick","args":[{"n":1}]} {"more":1}`, // 7: data after the object
		``,
		`{"event":"tick","args":[{"n":2}],"to":["a"],"except":null,"namespace":"/x"}`,
		`{"event":"tick","args":[` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `]}`, // 10: too deep
		`{"event":"tick","to":"notalist"}`,                                                        // 11
		`{"event":"tick","args":[{"n":3}]}`,
	}
	bus := &recordBus{}
	code, out, stderr := runBatch(t, bus, strings.NewReader(strings.Join(lines, "\n")))
	if code != exitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(out, "sent 3, failed 8") {
		t.Fatalf("out %q", out)
	}
	for _, n := range []int{2, 3, 4, 5, 6, 7, 10, 11} {
		if !strings.Contains(stderr, fmt.Sprintf("sioemit: line %d: ", n)) {
			t.Errorf("no error for line %d in %q", n, stderr)
		}
	}
	if strings.Count(stderr, "\n") != 8 {
		t.Errorf("want 8 error lines, got %q", stderr)
	}
	if got := decodeTicks(t, bus.msgs); fmt.Sprint(got) != "[0 2 3]" {
		t.Fatalf("sent %v", got)
	}
}

// TestBatchPublishErrors: a failed publish is reported once for its range
// of lines and counted for each of them (exit status 1); after
// maxFailedChunks failures in a row, sioemit stops reading.
func TestBatchPublishErrors(t *testing.T) {
	bus := &recordBus{fail: func(call int) bool { return call == 2 }}
	code, out, stderr := runBatch(t, bus, strings.NewReader(tickLines(0, 3*chunkEmits)))
	if code != exitBroker {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out, fmt.Sprintf("sent %d, failed %d", 2*chunkEmits, chunkEmits)) {
		t.Fatalf("out %q", out)
	}
	want := fmt.Sprintf("sioemit: lines %d-%d: ", chunkEmits+1, 2*chunkEmits)
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "broker refused") {
		t.Fatalf("stderr %q, want one line starting %q", stderr, want)
	}

	bus = &recordBus{fail: func(int) bool { return true }}
	var read atomic.Int64
	in := &countingReader{r: strings.NewReader(tickLines(0, 50*chunkEmits)), n: &read}
	code, _, stderr = runBatch(t, bus, in)
	if code != exitBroker || bus.calls != maxFailedChunks || !strings.Contains(stderr, "giving up") {
		t.Fatalf("broker down: exit %d after %d publishes: %q", code, bus.calls, stderr)
	}
	if strings.Count(stderr, "\n") != maxFailedChunks+1 {
		t.Fatalf("broker down: %d stderr lines: %q", strings.Count(stderr, "\n"), stderr)
	}
}

// countingReader counts the lines read from r.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(bytes.Count(p[:k], []byte{'\n'})))
	return k, err
}

// TestBatchStreams: sioemit reads ahead of what it has published by at
// most two chunks (and its read buffer), however long the input.
func TestBatchStreams(t *testing.T) {
	const n = 40 * chunkEmits
	var read atomic.Int64
	published := 0
	ahead := int64(0)
	bus := &recordBus{}
	bus.onCall = func(msgs []queue.Message) {
		published += len(msgs)
		ahead = max(ahead, read.Load()-int64(published))
	}
	in := &countingReader{r: strings.NewReader(tickLines(0, n)), n: &read}
	if code, _, stderr := runBatch(t, bus, in); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lineLen := int64(len(tickLines(n-1, n)))
	if limit := 2*int64(chunkEmits) + readBufferBytes/lineLen + 1; ahead > limit {
		t.Fatalf("read %d lines ahead of the publishes, want at most %d", ahead, limit)
	}
	if len(bus.msgs) != n {
		t.Fatalf("%d published", len(bus.msgs))
	}
}

// TestBatchHostileLines: a huge line and a deeply nested one cost
// bounded memory and are refused; the lines after them are sent.
func TestBatchHostileLines(t *testing.T) {
	huge := `{"event":"tick","args":["` + strings.Repeat("x", 64<<20) + `"]}`
	// maps of one member: the most memory per input byte that a line
	// can cost (a Go map takes about 300 bytes)
	deep := `{"event":"tick","args":[` + strings.Repeat("[", 1<<20) + `]}`
	wide := `{"event":"tick","args":[` + strings.Repeat(`{"":0},`, (maxLineBytes-100)/7) + `0]}`
	for _, tc := range []struct {
		name, line string
		ok         bool
		maxAlloc   uint64
	}{
		{"huge", huge, false, 3 * maxLineBytes},
		{"deep", deep, false, 3 * maxLineBytes},
		{"wide", wide, true, maxLineCost * maxLineBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.line + "\n" + `{"event":"tick","args":[{"n":7}]}` + "\n"
			bus := &recordBus{}
			var code int
			var stderr string
			alloc := testenv.AllocatedBytes(func() {
				code, _, stderr = runBatch(t, bus, strings.NewReader(in))
			})
			if tc.ok {
				if code != exitOK || len(bus.msgs) != 2 {
					t.Fatalf("exit %d, %d messages: %s", code, len(bus.msgs), stderr)
				}
			} else if code != exitUsage || !strings.HasPrefix(stderr, "sioemit: line 1: ") || len(bus.msgs) != 1 {
				t.Fatalf("exit %d, %d messages, stderr %.200q", code, len(bus.msgs), stderr)
			}
			if alloc > tc.maxAlloc {
				t.Fatalf("allocated %d bytes for a line of %d, want at most %d", alloc, len(tc.line), tc.maxAlloc)
			}
		})
	}
}

// TestBatchRedisExactlyOnce: on a real Redis, every line of a --batch
// file arrives exactly once, in the order of the file.
func TestBatchRedisExactlyOnce(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	url := "redis://" + testenv.RedisAddr + "/0"
	bus, err := queue.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	key := fmt.Sprintf("sioemit-batch-%d", time.Now().UnixNano())
	var sink testenv.Sink
	sub, err := bus.Subscribe(context.Background(), queue.Subscription{Patterns: []string{key + "#*"}}, sink.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 20000
	file := filepath.Join(t.TempDir(), "batch.jsonl")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(tickLines(0, n), `"to":["r0"]`, `"to":[]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, nil, "", "--url", url, "--dialect", "node", "--channel", key, "--batch", file)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("sent %d, failed 0", n)) {
		t.Fatalf("exit %d: %q %q", code, out, stderr)
	}
	msgs := sink.Wait(t, n, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // no duplicate arrives late
	if c := sink.Count(); c != n {
		t.Fatalf("%d messages arrived, want %d", c, n)
	}
	for i, v := range decodeTicks(t, msgs, key) {
		if v != int64(i) {
			t.Fatalf("message %d carries n=%d, want %d", i, v, i)
		}
	}
}
