package jetstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/siobridge/siobridge/adapter/nats/jetstream"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server/servertest"
)

// TestSessionBucketBound: clients whose sessions carry large Data (what
// a hostile client can make an application keep) drop one after the
// other; the session bucket stays within SessionBytes: once it is full,
// the sessions that do not fit are not kept (counted, the disconnect
// goes on) and their clients come back to a fresh session, while those
// kept before are still recovered, which makes room again.
func TestSessionBucketBound(t *testing.T) {
	const bound = 16 << 10
	p := testenv.StartNATS(t, "-js", "-sd", t.TempDir())
	url := "nats://" + p.Addr
	a, b := newNode(t, url, "jsbound", jetstream.Options{SessionBytes: bound}),
		newNode(t, url, "jsbound", jetstream.Options{SessionBytes: bound})
	big := strings.Repeat("x", 3000)

	type dropped struct{ pid, offset string }
	var ds []dropped
	for range 20 { // 20 sessions of 3 KB: 60 KB
		c, _ := a.client(t, map[string]any{"data": big})
		a.srv.Of("/").To(c.SID("/")).Emit("end")
		_, evs := values(t, c)
		ds = append(ds, dropped{c.PID("/"), servertest.LastOffset(evs)})
		c.Drop()
		a.waitGone(t) // the disconnect ends, session kept or not
	}
	st := a.srv.Stats().Recovery
	if st.Saved == 0 || st.NotSaved == 0 || st.Saved+st.NotSaved != 20 {
		t.Fatalf("Stats.Recovery %+v: want some sessions saved, the others counted as not saved", st)
	}
	if !strings.Contains(a.logs.String(), "session not kept") {
		t.Errorf("no warning for the sessions not kept:\n%s", a.logs.String())
	}
	n := bucketBytes(t, url)
	if n > bound {
		t.Fatalf("the bucket holds %d bytes, bound %d", n, bound)
	}
	t.Logf("%d sessions saved, %d not; the bucket holds %d bytes (bound %d)", st.Saved, st.NotSaved, n, bound)

	if c, recovered := b.client(t, map[string]any{"pid": ds[len(ds)-1].pid, "offset": ds[len(ds)-1].offset}); recovered || c.PID("/") == ds[len(ds)-1].pid {
		t.Fatal("a session the bucket refused was recovered")
	}
	c, recovered := b.client(t, map[string]any{"pid": ds[0].pid, "offset": ds[0].offset})
	if !recovered {
		t.Fatal("a session kept before the bucket was full is not recovered")
	}
	if d, err := c.EmitWithAck("/", 5*time.Second, "data"); err != nil || len(d) != 1 || d[0] != "data of "+c.SID("/")+big {
		t.Fatalf("data %.40v %v", d, err)
	}

	// the session taken made room for another
	small, _ := a.client(t, nil)
	small.Drop()
	a.waitGone(t)
	if got := a.srv.Stats().Recovery.Saved; got != st.Saved+1 {
		t.Fatalf("%d sessions saved after one was taken, want %d", got, st.Saved+1)
	}
	if n := bucketBytes(t, url); n > bound {
		t.Fatalf("the bucket holds %d bytes, bound %d", n, bound)
	}
}

// bucketBytes is the size of the default session bucket on url.
func bucketBytes(t *testing.T, url string) uint64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := j.KeyValue(ctx, jetstream.DefaultName+"-sessions")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.Bytes()
}
