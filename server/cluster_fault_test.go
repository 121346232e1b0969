package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	sbamqp "github.com/siobridge/siobridge/adapter/amqp"
	sbnats "github.com/siobridge/siobridge/adapter/nats"
	sbredis "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// Fault tests (issue #7, compat test 6): a three-node cluster on a broker
// process of the test's own, under steady traffic, survives a broker
// restart, the death of one node and garbage on its channel.

// liveness bounds every wait of the fault tests: it only turns a hang
// into a failure, it measures nothing.
const liveness = 90 * time.Second

// broker is a broker process a fault test can kill and restart.
type broker interface {
	Stop()
	Start()
}

// faultCase is one bus of the fault tests.
type faultCase struct {
	name string
	// start starts a private broker and returns its URL.
	start func(t *testing.T) (broker, string)
	open  func(ctx context.Context, url string, log *slog.Logger) (queue.Bus, error)
}

var faultCases = []faultCase{
	{"redis",
		func(t *testing.T) (broker, string) {
			p := testenv.StartRedis(t)
			return p, "redis://" + p.Addr
		},
		func(ctx context.Context, url string, log *slog.Logger) (queue.Bus, error) {
			return sbredis.Open(ctx, url, sbredis.WithLogger(log))
		}},
	{"nats",
		func(t *testing.T) (broker, string) {
			p := testenv.StartNATS(t)
			return p, "nats://" + p.Addr
		},
		func(ctx context.Context, url string, log *slog.Logger) (queue.Bus, error) {
			return sbnats.Open(ctx, url, sbnats.WithLogger(log))
		}},
	{"amqp",
		func(t *testing.T) (broker, string) {
			p := startRabbit(t)
			return p, "amqp://guest:guest@" + p.addr + "/"
		},
		func(ctx context.Context, url string, log *slog.Logger) (queue.Bus, error) {
			return sbamqp.Open(ctx, url, sbamqp.WithLogger(log))
		}},
}

// faultNode is one server of a fault-test cluster, with one client.
type faultNode struct {
	srv *server.Server
	bus queue.Bus
	c   *servertest.Client
	log *logBuffer

	// what c received (test goroutine only)
	ticks  map[int]bool
	events map[string]bool
}

// waitUntil polls cond until it holds; the test fails after liveness.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(liveness); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %s", what, liveness)
		}
	}
}

// collect takes what n's client received so far (Received forgets it)
// and returns the distinct tick numbers and the other events seen.
func (n *faultNode) collect() (ticks map[int]bool, events map[string]bool) {
	if n.ticks == nil {
		n.ticks, n.events = map[int]bool{}, map[string]bool{}
	}
	for _, r := range n.c.Received("/") {
		if r.Event != "tick" {
			n.events[r.Event] = true
			continue
		}
		if len(r.Args) == 1 {
			if f, ok := r.Args[0].(float64); ok {
				n.ticks[int(f)] = true
			}
		}
	}
	return n.ticks, n.events
}

// received reports whether n's client received event.
func (n *faultNode) received(event string) bool {
	_, events := n.collect()
	return events[event]
}

// TestClusterFaults runs, on each bus, three Go nodes (python dialect) on a
// private broker: node A broadcasts a numbered "tick" every few
// milliseconds; the broker is killed and restarted. Every node notices
// (BusConnected false, then true), reconnects and resubscribes by itself,
// and ticks reach every node again; how many were lost during the outage
// is reported (t.Log), not asserted. Every call made during the outage
// returns. Then node A dies and B still reaches C; garbage on the channel
// is counted as malformed and dropped while delivery goes on. Nothing
// leaks once everything is closed.
func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts broker processes")
	}
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			// runs last: after the servers, clients, buses and brokers are closed
			t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
			runFaults(t, fc)
		})
	}
}

func runFaults(t *testing.T, fc faultCase) {
	brk, url := fc.start(t)
	channel := fmt.Sprintf("faults-%s-%d", fc.name, time.Now().UnixNano())
	d := python.New(python.Options{Channel: channel})
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()

	var nodes []*faultNode
	for range 3 {
		n := &faultNode{log: &logBuffer{}}
		bus, err := fc.open(ctx, url, n.log.logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() })
		n.bus = bus
		n.srv = newServer(t, server.WithAdapter(bus, d), server.WithLogger(n.log.logger()))
		n.srv.On("/", "ping", func(s *server.Socket) string { return "pong" })
		if err := n.srv.AdapterReady(ctx); err != nil {
			t.Fatal(err)
		}
		n.c = client(t, n.srv, "/", servertest.Options{})
		nodes = append(nodes, n)
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	csid := c.c.SID("/")
	allConnected := func(want bool) func() bool {
		return func() bool {
			for _, n := range nodes {
				if n.srv.BusConnected() != want {
					return false
				}
			}
			return true
		}
	}
	if !allConnected(true)() {
		t.Fatal("BusConnected is false once the adapters are ready")
	}

	// steady traffic: A broadcasts tick 1, 2, 3, ... every 5 ms, each on
	// a goroutine of its own (at most maxInFlight at once), so that a
	// broadcast waiting for the broker does not hold back the next ones
	const maxInFlight = 256
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		var wg sync.WaitGroup
		defer wg.Wait()
		slots := make(chan struct{}, maxInFlight)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			select {
			case <-stop:
				return
			case slots <- struct{}{}:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.srv.Of("/").Emit("tick", i); err != nil {
					failed.Add(1)
				}
				<-slots
			}()
			sent.Store(int64(i))
		}
	}()
	stopTraffic := func() {
		t.Helper()
		select {
		case <-stop:
		default:
			close(stop)
		}
		select {
		case <-trafficDone:
		case <-time.After(liveness):
			t.Fatal("a broadcast made during the outage never returned")
		}
	}
	defer stopTraffic()
	// fresh reports whether a tick sent after now reached every client
	fresh := func() func() bool {
		after := int(sent.Load())
		return func() bool {
			for _, n := range nodes {
				ok := false
				got, _ := n.collect()
				for k := range got {
					if k > after {
						ok = true
						break
					}
				}
				if !ok {
					return false
				}
			}
			return true
		}
	}
	waitUntil(t, "50 ticks sent", func() bool { return sent.Load() >= 50 })
	waitUntil(t, "ticks on every node before the outage", fresh())

	// the outage
	brk.Stop()
	outageFrom := int(sent.Load())
	waitUntil(t, "BusConnected false on every node", allConnected(false))
	// calls made during the outage return within their context
	ackCtx, ackCancel := context.WithTimeout(ctx, 500*time.Millisecond)
	ackStart := time.Now()
	_, err := a.srv.Of("/").To(csid).EmitWithAck(ackCtx, "ping")
	if err == nil {
		t.Error("EmitWithAck to another node's socket succeeded while the broker was down")
	}
	t.Logf("%s: EmitWithAck (500 ms context) during the outage returned after %s: %v", fc.name, time.Since(ackStart).Round(time.Millisecond), err)
	ackCancel()
	time.Sleep(300 * time.Millisecond) // let traffic run into the outage
	brk.Start()
	waitUntil(t, "BusConnected true on every node", allConnected(true))
	outageTo := int(sent.Load())
	waitUntil(t, "a fresh tick on every node after the restart", fresh())
	stopTraffic()

	total := int(sent.Load())
	for i, n := range nodes {
		got, _ := n.collect()
		lost := 0
		for k := 1; k <= total; k++ {
			if !got[k] {
				lost++
			}
		}
		t.Logf("%s: node %d: received %d of %d ticks, lost %d (the broker was killed after tick %d, every node was connected again after tick %d)",
			fc.name, i, len(got), total, lost, outageFrom, outageTo)
	}
	t.Logf("%s: %d broadcasts returned an error (the node's own clients were served)", fc.name, failed.Load())
	for i, n := range nodes {
		out := n.log.String()
		if !strings.Contains(out, "lost the broker") || !strings.Contains(out, "broker connection back") || !strings.Contains(out, "away=") {
			t.Errorf("node %d: outage not logged:\n%s", i, out)
		}
		if st := n.bus.(queue.StatsReporter).Stats(); st.Reconnects == 0 {
			t.Errorf("node %d: no reconnect counted: %+v", i, st)
		}
	}

	// node A dies: B still reaches C
	a.c.Close()
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	a.srv.Shutdown(sctx)
	scancel()
	a.bus.Close()
	if err := b.srv.Of("/").Emit("after-a"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "B's broadcast on C once A is gone", func() bool { return c.received("after-a") })

	// garbage on the channel is counted, dropped, and delivery goes on
	valid, err := d.Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "x", Args: []any{"y"}})
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64)
	for i := range random {
		random[i] = byte(rand.IntN(256))
	}
	random[0] = 0xff // neither JSON nor a pickle
	garbage := [][]byte{
		random,
		valid[0].Data[:len(valid[0].Data)/2], // truncated JSON
		[]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x06method"), // truncated pickle
	}
	before := []uint64{b.srv.QueueStats().Malformed, c.srv.QueueStats().Malformed}
	for _, g := range garbage {
		if err := b.bus.Publish(ctx, queue.Message{Channel: valid[0].Channel, Data: g}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.srv.Of("/").Emit("after-garbage"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "C's broadcast on B after the garbage", func() bool { return b.received("after-garbage") })
	waitUntil(t, "the garbage counted on B and C", func() bool {
		return b.srv.QueueStats().Malformed-before[0] >= uint64(len(garbage)) && c.srv.QueueStats().Malformed-before[1] >= uint64(len(garbage))
	})
	for i, n := range []*faultNode{b, c} {
		if got := n.srv.QueueStats().Malformed - before[i]; got != uint64(len(garbage)) {
			t.Errorf("node %d: %d malformed messages counted, want %d", i+1, got, len(garbage))
		}
	}
}

// rabbitNode is a RabbitMQ node of the test's own: its own node name,
// ports, database and logs, no plugins. The shared broker is untouched.
type rabbitNode struct {
	t    *testing.T
	bin  string
	dir  string
	env  []string
	addr string
	cmd  *exec.Cmd
}

// startRabbit starts a private RabbitMQ node on free loopback ports.
func startRabbit(t *testing.T) *rabbitNode {
	t.Helper()
	bin, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		if os.Getenv("SIOBRIDGE_REQUIRE_BROKERS") != "" {
			t.Fatalf("rabbitmq-server not installed: %v", err)
		}
		t.Skipf("rabbitmq-server not installed: %v", err)
	}
	// not t.TempDir: the node may run as the rabbitmq user, which must
	// reach the directory
	dir, err := os.MkdirTemp("", "siobridge-rabbit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	port, dist := testenv.FreePort(t), testenv.FreePort(t)
	conf := filepath.Join(dir, "rabbitmq.conf")
	plugins := filepath.Join(dir, "enabled_plugins")
	for name, body := range map[string]string{conf: "listeners.tcp.1 = 127.0.0.1:" + strconv.Itoa(port) + "\n", plugins: "[].\n"} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &rabbitNode{t: t, bin: bin, dir: dir, addr: "127.0.0.1:" + strconv.Itoa(port), env: []string{
		"RABBITMQ_NODENAME=siobridge-fault-" + strconv.Itoa(port) + "@localhost",
		"RABBITMQ_CONFIG_FILE=" + conf,
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + plugins,
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(dist),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_FEATURE_FLAGS_FILE=" + filepath.Join(dir, "feature_flags"),
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "pid"),
	}}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the node and waits until it accepts AMQP connections.
func (r *rabbitNode) Start() {
	r.t.Helper()
	out, err := os.OpenFile(filepath.Join(r.dir, "out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	r.cmd = exec.Command(r.bin)
	r.cmd.Env = append(os.Environ(), r.env...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start rabbitmq-server: %v", err)
	}
	if err := testenv.WaitPort(r.addr, liveness); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.dir, "out"))
		r.t.Fatalf("rabbitmq-server: %v\n%s", err, log)
	}
}

// Stop kills the node (SIGKILL, as a crash would) and waits for it to
// exit. The start script may run the Erlang VM as another user in a
// process group of its own, so the VM is killed by the pid it wrote.
func (r *rabbitNode) Stop() {
	if r.cmd == nil {
		return
	}
	pidFile := filepath.Join(r.dir, "pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			for deadline := time.Now().Add(liveness); syscall.Kill(pid, 0) == nil && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		}
		os.Remove(pidFile)
	}
	r.cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(liveness):
		r.t.Errorf("rabbitmq-server did not exit")
	}
	r.cmd = nil
}

var (
	_ broker = (*testenv.Process)(nil)
	_ broker = (*rabbitNode)(nil)
)

// stallBus is a bus whose broker takes connections but never answers a
// publish: Publish waits for its context.
type stallBus struct {
	*memory.Bus
	started chan struct{}
}

func (b *stallBus) Publish(ctx context.Context, msgs ...queue.Message) error {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// Calls that take a context and publish (EmitWithAck, FetchSockets,
// AllRooms, ServerSideEmitWithAck) give up when their caller's context
// ends, not only after the server's own publish bound, when the broker
// hangs: the error is the caller's cancellation.
func TestClusterCallsEndWithTheirContext(t *testing.T) {
	bus := &stallBus{Bus: memory.New(), started: make(chan struct{}, 1)}
	defer bus.Close()
	srv := newServer(t, server.WithAdapter(bus, node.New(node.Options{Key: "stall"})))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.AdapterReady(ctx); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"EmitWithAck", func(ctx context.Context) error { _, err := srv.Of("/").To("r").EmitWithAck(ctx, "x"); return err }},
		{"FetchSockets", func(ctx context.Context) error { _, err := srv.Of("/").FetchSockets(ctx); return err }},
		{"AllRooms", func(ctx context.Context) error { _, err := srv.Of("/").AllRooms(ctx); return err }},
		{"ServerSideEmitWithAck", func(ctx context.Context) error { _, err := srv.Of("/").ServerSideEmitWithAck(ctx, "x"); return err }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-bus.started // the call is publishing: the caller gives up
			cancel()
		}()
		err := c.call(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s while the broker hangs, cancelled by its caller: %v, want context.Canceled", c.name, err)
		}
	}
}
