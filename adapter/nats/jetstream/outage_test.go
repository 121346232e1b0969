package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/adapter/nats/jetstream"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server/servertest"
)

// traffic emits "t<i>" to room r from a and b alternately until stop,
// and records which emits returned nil.
type traffic struct {
	mu       sync.Mutex
	accepted []string
	failed   []string
	errs     []error
	stop     chan struct{}
	done     chan struct{}
}

func startTraffic(a, b *node) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-time.After(5 * time.Millisecond): // a steady pace, not a measure
			}
			from := a
			if i%2 == 1 {
				from = b
			}
			v := fmt.Sprint("t", i)
			err := from.srv.Of("/").To("r").Emit("ev", v)
			tr.mu.Lock()
			if err == nil {
				tr.accepted = append(tr.accepted, v)
			} else {
				tr.failed = append(tr.failed, v)
				tr.errs = append(tr.errs, err)
			}
			tr.mu.Unlock()
		}
	}()
	return tr
}

// counts returns how many emits were accepted and how many failed.
func (tr *traffic) counts() (accepted, failed int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.accepted), len(tr.failed)
}

// waitFor waits until cond holds of the counts.
func (tr *traffic) waitFor(t *testing.T, what string, cond func(accepted, failed int) bool) {
	t.Helper()
	waitUntil(t, what, func() bool { return cond(tr.counts()) })
}

func (tr *traffic) end() {
	close(tr.stop)
	<-tr.done
}

// TestOutage: the NATS server of a two-node cluster is killed and
// started again (same port, same store directory) while events go to a
// room. Emits during the outage return an error at once; a node shuts
// down meanwhile; the nodes follow the stream again by themselves:
// clients connected throughout get every accepted event once, in order;
// a session saved before the outage is recovered after it, with every
// event logged since (before, during and after the outage); a client
// dropped during the outage is not kept (counted) and gets a fresh
// session; one dropped after it recovers on the other node.
func TestOutage(t *testing.T) {
	p := testenv.StartNATS(t, "-js", "-sd", t.TempDir())
	url := "nats://" + p.Addr
	channel := fmt.Sprintf("jsout-%d", time.Now().UnixNano())
	a, b := newNode(t, url, channel, jetstream.Options{}), newNode(t, url, channel, jetstream.Options{})
	x := newNode(t, url, channel, jetstream.Options{}) // shut down during the outage
	wa, _ := a.client(t, nil)                          // watchers: connected throughout
	wb, _ := b.client(t, nil)
	f, _ := b.client(t, nil) // dropped after the outage
	c, _ := a.client(t, nil) // dropped before the outage, back after it
	e, _ := a.client(t, nil) // dropped during the outage
	sid, pid := c.SID("/"), c.PID("/")
	b.srv.Of("/").To("r").Emit("end")
	for _, w := range []*servertest.Client{wa, wb, e, f} {
		values(t, w)
	}
	_, evs := values(t, c)
	offset := servertest.LastOffset(evs)
	c.Drop()
	a.waitGone(t)

	var want []string // logged before the outage, missed by c
	for i := range 50 {
		from := a
		if i%2 == 1 {
			from = b
		}
		if err := from.srv.Of("/").To("r").Emit("ev", fmt.Sprint("pre", i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint("pre", i))
	}
	tr := startTraffic(a, b)
	tr.waitFor(t, "traffic", func(acc, _ int) bool { return acc >= 20 })

	p.Stop()
	tr.waitFor(t, "emits failing during the outage", func(_, failed int) bool { return failed >= 3 })
	for a.bus.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := x.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown during the outage: %v", err)
	}
	ePID := e.PID("/")
	e.Drop()
	a.waitGone(t) // the disconnect ends although the session cannot be saved

	p.Start()
	acc0, _ := tr.counts()
	tr.waitFor(t, "emits accepted after the outage", func(acc, _ int) bool { return acc >= acc0+40 })
	tr.end()
	if err := a.srv.Of("/").To("r").Emit("end"); err != nil {
		t.Fatal(err)
	}
	unavailable := 0
	for _, err := range tr.errs {
		switch {
		case errors.Is(err, jetstream.ErrUnavailable):
			unavailable++
		case errors.Is(err, context.DeadlineExceeded): // in flight as the server died
		default:
			t.Errorf("emit during the outage: %v", err)
		}
	}
	t.Logf("%d emits accepted, %d failed (%d at once: %v)", len(tr.accepted), len(tr.failed), unavailable, tr.errs[len(tr.errs)-1])

	got := map[string][]string{}
	for name, w := range map[string]*servertest.Client{"watcher on a": wa, "watcher on b": wb} {
		vals, _ := values(t, w)
		got[name] = vals
		checkStream(t, name, vals, want, tr)
	}
	if !slices.Equal(got["watcher on a"], got["watcher on b"]) {
		t.Errorf("the watchers differ: %d and %d events", len(got["watcher on a"]), len(got["watcher on b"]))
	}

	c2, recovered := b.client(t, map[string]any{"pid": pid, "offset": offset})
	if !recovered || c2.SID("/") != sid {
		t.Fatalf("a session saved before the outage: recovered %v as %s, was %s", recovered, c2.SID("/"), sid)
	}
	b.srv.Of("/").To("r").Emit("end")
	vals, _ := values(t, c2)
	if !slices.Equal(vals, got["watcher on b"]) {
		t.Fatalf("recovered %d events, the watchers got %d", len(vals), len(got["watcher on b"]))
	}

	e2, recovered := b.client(t, map[string]any{"pid": ePID, "offset": offset})
	if recovered || e2.PID("/") == ePID {
		t.Fatalf("a session dropped during the outage was recovered")
	}
	if st := a.srv.Stats().Recovery; st.NotSaved != 1 {
		t.Errorf("Stats.Recovery %+v: want the session dropped during the outage as not saved", st)
	}

	b.srv.Of("/").To(f.SID("/")).Emit("mark")
	evs, err := f.WaitFor("/", "mark", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fPID, fOffset := f.PID("/"), servertest.LastOffset(evs)
	f.Drop()
	b.waitGone(t)
	var post []string
	for i := range 10 {
		v := fmt.Sprint("post", i)
		if err := []*node{a, b}[i%2].srv.Of("/").To("r").Emit("ev", v); err != nil {
			t.Fatal(err)
		}
		post = append(post, v)
	}
	f2, recovered := a.client(t, map[string]any{"pid": fPID, "offset": fOffset})
	if !recovered {
		t.Fatal("a client dropped after the outage did not recover")
	}
	a.srv.Of("/").To("r").Emit("end")
	if vals, _ := values(t, f2); !slices.Equal(vals, post) {
		t.Fatalf("dropped after the outage, recovered %v, want %v", vals, post)
	}
}

// checkStream checks what a client connected throughout got: want first,
// then every accepted emit of tr once and in emit order; a failed emit
// at most once (one caught in flight as the connection dropped may still
// reach the stream after the reconnection).
func checkStream(t *testing.T, name string, vals, want []string, tr *traffic) {
	t.Helper()
	if len(vals) < len(want) || !slices.Equal(vals[:len(want)], want) {
		t.Fatalf("%s: the events logged before the outage: got %v", name, vals[:min(len(vals), len(want))])
	}
	accepted := map[string]bool{}
	for _, v := range tr.accepted {
		accepted[v] = true
	}
	seen := map[string]int{}
	var order []string // the accepted ones as they arrived
	late := 0
	for _, v := range vals[len(want):] {
		seen[v]++
		switch {
		case seen[v] > 1:
			t.Errorf("%s: %s twice", name, v)
		case accepted[v]:
			order = append(order, v)
		case strings.HasPrefix(v, "t"):
			late++
		default:
			t.Errorf("%s: unexpected %s", name, v)
		}
	}
	if !slices.Equal(order, tr.accepted) {
		t.Errorf("%s: the accepted emits arrived as %v, were sent as %v", name, order, tr.accepted)
	}
	t.Logf("%s: %d accepted emits, %d failed ones delivered all the same", name, len(order), late)
}
