package emitter

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder subscribes to the ops channel and decodes what the emitter sends.
type recorder struct {
	mu  sync.Mutex
	ops []op.Op
	d   dialect.Dialect
}

func record(t *testing.T, bus queue.Bus, d dialect.Dialect) *recorder {
	t.Helper()
	r := &recorder{d: d}
	s, err := bus.Subscribe(context.Background(), queue.Subscription{Channels: []string{"ops"}}, func(m queue.Message) {
		o, err := d.Decode(m)
		if err != nil {
			t.Errorf("decode: %v", err)
			return
		}
		r.mu.Lock()
		r.ops = append(r.ops, o)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return r
}

func (r *recorder) wait(t *testing.T, n int) []op.Op {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		if len(r.ops) >= n {
			out := append([]op.Op(nil), r.ops...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("waited for %d ops", n)
	return nil
}

func setup(t *testing.T) (*memory.Bus, *fakeDialect, *Emitter) {
	bus := memory.New()
	d := &fakeDialect{origin: "me"}
	em := New(bus, d)
	t.Cleanup(func() { em.Close(); bus.Close() })
	return bus, d, em
}

func TestOperatorsBuildOps(t *testing.T) {
	bus, d, em := setup(t)
	rec := record(t, bus, d)
	ctx := context.Background()
	chat := em.Of("chat")
	steps := []func() error{
		func() error { return em.Emit(ctx, "hello", 1, "two", []byte{3}) },
		func() error {
			return chat.To("r1", "r2").To("r1").Except("sid9").Volatile().Compress(false).Emit(ctx, "news", map[string]int{"n": 1})
		},
		func() error { return chat.Send(ctx, "hi") },
		func() error { return chat.In("r1").SocketsJoin(ctx, "r2") },
		func() error { return chat.In("r1").SocketsLeave(ctx, "r3") },
		func() error { return em.To("sid1").DisconnectSockets(ctx, true) },
		func() error { return chat.CloseRoom(ctx, "r1") },
		func() error { return chat.ServerSideEmit(ctx, "ping", 1) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := rec.wait(t, len(steps))
	want := []op.Op{
		&op.Emit{Target: op.Target{Namespace: "/"}, Event: "hello", Args: []any{float64(1), "two", "Aw=="}},
		&op.Emit{Target: op.Target{Namespace: "/chat", Rooms: []string{"r1", "r2"}, Except: []string{"sid9"}}, Event: "news",
			Args: []any{map[string]any{"n": float64(1)}}, Volatile: true, Compress: new(bool)},
		&op.Emit{Target: op.Target{Namespace: "/chat"}, Event: "message", Args: []any{"hi"}},
		&op.Join{Target: op.Target{Namespace: "/chat", Rooms: []string{"r1"}}, Rooms: []string{"r2"}},
		&op.Leave{Target: op.Target{Namespace: "/chat", Rooms: []string{"r1"}}, Rooms: []string{"r3"}},
		&op.Disconnect{Target: op.Target{Namespace: "/", Rooms: []string{"sid1"}}, Close: true},
		&op.CloseRoom{Namespace: "/chat", Room: "r1"},
		&op.ServerSideEmit{Namespace: "/chat", Event: "ping", Args: []any{float64(1)}},
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("op %d:\n got %#v\nwant %#v", i, got[i], want[i])
		}
	}
	if st := em.Stats(); st.Published != uint64(len(steps)) {
		t.Errorf("stats %+v", st)
	}
}

func TestOperatorIsImmutable(t *testing.T) {
	_, _, em := setup(t)
	base := em.Of("/x").To("a")
	b1 := base.To("b")
	b2 := base.Except("c")
	if len(base.rooms) != 1 || len(base.except) != 0 || len(b1.rooms) != 2 || len(b2.rooms) != 1 || len(b2.except) != 1 {
		t.Fatalf("operators share state: base %+v b1 %+v b2 %+v", base, b1, b2)
	}
}

func TestEmitErrors(t *testing.T) {
	_, _, em := setup(t)
	ctx := context.Background()
	if err := em.Emit(ctx, "connect"); err == nil {
		t.Error("reserved event accepted")
	}
	if err := em.Emit(ctx, "x", make(chan int)); err == nil {
		t.Error("unencodable argument accepted")
	}
	err := em.To("s").SocketsJoin(ctx)
	if !errors.Is(err, dialect.ErrUnsupported) {
		t.Errorf("dialect refusal not visible through errors.Is: %v", err)
	}
	em.Close()
	if err := em.Emit(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("emit after Close: %v", err)
	}
}

// fakeServer answers acks the way a python server does (one reply per
// request, addressed to the requester) or, with counts, the way node
// servers do (a client count, then one reply per client).
func fakeServer(t *testing.T, bus queue.Bus, d dialect.Dialect, clients int, withCount bool, host string) {
	t.Helper()
	subs := queue.Subscription{Channels: []string{"ops"}}
	if withCount {
		subs.Channels = append(subs.Channels, "requests/")
	}
	s, err := bus.Subscribe(context.Background(), subs, func(m queue.Message) {
		o, err := d.Decode(m)
		if err != nil {
			return
		}
		e, ok := o.(*op.Emit)
		if !ok || e.Ack == nil {
			return
		}
		ctx := context.Background()
		var out []op.Op
		if withCount {
			out = append(out, &op.ClientCount{Namespace: e.Namespace, ID: e.Ack.ID, Count: clients})
		}
		for i := 0; i < clients; i++ {
			out = append(out, &op.AckReply{Namespace: e.Namespace, Host: host, Sid: fmt.Sprintf("c%d", i), ID: e.Ack.ID,
				Args: append([]any{"pong"}, e.Args...)})
		}
		for _, o := range out {
			msgs, _ := d.Encode(o)
			// garbage on the reply channel must be counted and dropped
			bus.Publish(ctx, queue.Message{Channel: "replies", Data: []byte("{garbage")})
			if err := bus.Publish(ctx, msgs...); err != nil {
				t.Errorf("server publish: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
}

func TestEmitWithAckSingleReply(t *testing.T) {
	bus, d, em := setup(t)
	fakeServer(t, bus, d, 1, false, "me")
	replies, err := em.To("sid1").EmitWithAck(context.Background(), "ping", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 1 || replies[0].Sid != "c0" || !reflect.DeepEqual(replies[0].Args, []any{"pong", float64(7)}) {
		t.Fatalf("replies %+v", replies)
	}
	st := em.Stats()
	if st.Malformed == 0 || st.Replies != 1 {
		t.Fatalf("stats %+v: want the garbage counted and one reply", st)
	}
}

func TestEmitWithAckIgnoresOtherHosts(t *testing.T) {
	bus, d, em := setup(t)
	fakeServer(t, bus, d, 1, false, "someone-else")
	replies, err := em.To("sid1").Timeout(100*time.Millisecond).EmitWithAck(context.Background(), "ping")
	if !errors.Is(err, ErrAckTimeout) || len(replies) != 0 {
		t.Fatalf("replies %v err %v: want a timeout with no replies", replies, err)
	}
	if em.Stats().AckTimeouts != 1 {
		t.Fatalf("stats %+v", em.Stats())
	}
}

func TestEmitWithAckCountsServers(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	d := counting{&fakeDialect{origin: "me"}}
	em := New(bus, d)
	defer em.Close()
	// two servers with 2 and 3 clients
	fakeServer(t, bus, d, 2, true, "")
	fakeServer(t, bus, d, 3, true, "")
	start := time.Now()
	replies, err := em.Of("/").Timeout(10*time.Second).EmitWithAck(context.Background(), "ping")
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 5 {
		t.Fatalf("got %d replies, want 5", len(replies))
	}
	if time.Since(start) >= 10*time.Second {
		t.Fatal("EmitWithAck waited for the timeout although every reply had arrived")
	}
}

func TestEmitWithAckNoServer(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	em := New(bus, counting{&fakeDialect{origin: "me"}})
	defer em.Close()
	_, err := em.EmitWithAck(context.Background(), "ping")
	if !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("err %v, want ErrAckTimeout when no server listens", err)
	}
}

func TestEmitWithAckContextCancel(t *testing.T) {
	_, _, em := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := em.To("sid").Timeout(time.Hour).EmitWithAck(ctx, "ping")
	if err == nil {
		t.Fatal("no error after the context ended")
	}
}

func TestCloseFailsPendingAcks(t *testing.T) {
	_, _, em := setup(t)
	done := make(chan error, 1)
	go func() {
		_, err := em.To("sid").Timeout(time.Hour).EmitWithAck(context.Background(), "ping")
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if em.waiterCount() > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	em.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("EmitWithAck did not return after Close")
	}
}

func (e *Emitter) waiterCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending)
}

func TestConcurrentUse(t *testing.T) {
	bus, d, em := setup(t)
	fakeServer(t, bus, d, 1, false, "me")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			op := em.Of(fmt.Sprintf("/n%d", i%3)).To(fmt.Sprintf("sid%d", i))
			for j := 0; j < 20; j++ {
				if err := op.Emit(context.Background(), "e", j); err != nil {
					errs <- err
					return
				}
			}
			r, err := op.EmitWithAck(context.Background(), "q", i)
			if err != nil || len(r) != 1 {
				errs <- fmt.Errorf("ack %d: %v %v", i, r, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
