package jetstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	sbnats "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/adapter/nats/jetstream"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/servertest"
)

// node is a Go server of a two-node cluster on a NATS bus with a
// JetStream recovery store.
type node struct {
	srv       *server.Server
	bus       *sbnats.Bus
	logs      *testenv.LogBuffer
	recovered chan bool
	gone      chan string
}

func newNode(t *testing.T, url, channel string, o jetstream.Options) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bus, err := sbnats.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	store, err := jetstream.New(ctx, bus.Conn(), o)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{bus: bus, logs: &testenv.LogBuffer{}, recovered: make(chan bool, 16), gone: make(chan string, 16)}
	n.srv = server.New(server.WithConnectionStateRecovery(time.Minute, true), server.WithRecoveryStore(store),
		server.WithLogger(n.logs.Logger()),
		server.WithAdapter(bus, python.New(python.Options{Channel: channel})),
		server.WithEngineOptions(engineio.Options{SendQueueSize: 4096}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.srv.Shutdown(ctx)
	})
	if err := n.srv.AdapterReady(ctx); err != nil {
		t.Fatal(err)
	}
	ns := n.srv.Of("/")
	ns.OnConnect(func(s *server.Socket, auth json.RawMessage) error {
		if !s.Recovered() {
			s.Join("r")
			var a struct{ Data string } // what a client asks for (large, for a hostile one)
			json.Unmarshal(auth, &a)
			s.SetData("data of " + s.ID() + a.Data)
		}
		n.recovered <- s.Recovered()
		return nil
	})
	ns.OnDisconnect(func(s *server.Socket, reason string) { n.gone <- reason })
	ns.On("data", func(s *server.Socket) any { return s.Data() })
	return n
}

func (n *node) client(t *testing.T, auth any) (*servertest.Client, bool) {
	t.Helper()
	c, err := servertest.New(n.srv, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Connect("/", auth); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-n.recovered:
		return c, r
	case <-time.After(10 * time.Second):
		t.Fatal("no connect handler")
	}
	return nil, false
}

func (n *node) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-n.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see the client leave")
	}
}

// cluster starts a private JetStream nats-server and two nodes on it.
func cluster(t *testing.T, o jetstream.Options) (a, b *node) {
	p := testenv.StartNATS(t, "-js", "-sd", t.TempDir())
	url := "nats://" + p.Addr
	channel := fmt.Sprintf("jsrec-%d", time.Now().UnixNano())
	return newNode(t, url, channel, o), newNode(t, url, channel, o)
}

// values are the first arguments of the events up to "end" on c.
func values(t *testing.T, c *servertest.Client) (vals []string, evs []servertest.Received) {
	t.Helper()
	evs, err := c.WaitFor("/", "end", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Event != "end" {
			vals = append(vals, fmt.Sprint(e.Args[0]))
		}
	}
	return vals, evs
}

// TestRecoverOnOtherNode: a client of node A is dropped; 1,000 events go
// to its room, from A and B alternately, plus some it must not get; it
// comes back to node B and recovers its id, rooms, Data and the 1,000
// events, in order, once each, before live ones.
func TestRecoverOnOtherNode(t *testing.T) {
	a, b := cluster(t, jetstream.Options{})
	c, _ := a.client(t, nil)
	sid, pid := c.SID("/"), c.PID("/")
	a.srv.Of("/").To("r").Emit("ev", "before")
	b.srv.Of("/").To("r").Emit("end")
	_, evs := values(t, c)
	offset := servertest.LastOffset(evs)
	if offset == "" {
		t.Fatalf("no offset: %+v", evs)
	}
	c.Drop()
	a.waitGone(t)

	var want []string
	for i := range 1000 {
		from := a
		if i%2 == 1 {
			from = b
		}
		if err := from.srv.Of("/").To("r").Emit("ev", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint(i))
		if i%100 == 0 {
			from.srv.Of("/").To("other").Emit("ev", "other")
			from.srv.Of("/").Except("r").Emit("ev", "except")
		}
	}
	c2, recovered := b.client(t, map[string]any{"pid": pid, "offset": offset})
	if !recovered {
		t.Fatal("not recovered on the other node")
	}
	if c2.SID("/") != sid || c2.PID("/") != pid {
		t.Fatalf("recovered as %s/%s, was %s/%s", c2.SID("/"), c2.PID("/"), sid, pid)
	}
	a.srv.Of("/").To("r").Emit("ev", "live")
	a.srv.Of("/").To("r").Emit("end")
	want = append(want, "live")
	got, _ := values(t, c2)
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s", i, got[i], want[i])
		}
	}
	d, err := c2.EmitWithAck("/", 5*time.Second, "data")
	if err != nil || len(d) != 1 || d[0] != "data of "+sid {
		t.Fatalf("data %v %v", d, err)
	}
}

// TestPrunedOffsetIsFresh: when the packets after the client's offset
// were pruned (a stream too small), it gets a fresh session and nothing
// replayed.
func TestPrunedOffsetIsFresh(t *testing.T) {
	a, b := cluster(t, jetstream.Options{LogBytes: 4 << 10})
	c, _ := a.client(t, nil)
	sid, pid := c.SID("/"), c.PID("/")
	a.srv.Of("/").To("r").Emit("end")
	_, evs := values(t, c)
	offset := servertest.LastOffset(evs)
	c.Drop()
	a.waitGone(t)
	for i := range 200 { // far more than 4 KiB
		a.srv.Of("/").To("r").Emit("ev", fmt.Sprint("missed ", i))
	}
	c2, recovered := b.client(t, map[string]any{"pid": pid, "offset": offset})
	if recovered || c2.SID("/") == sid || c2.PID("/") == pid {
		t.Fatalf("recovered %v as %s/%s, was %s/%s", recovered, c2.SID("/"), c2.PID("/"), sid, pid)
	}
	b.srv.Of("/").To("r").Emit("end")
	got, _ := values(t, c2)
	if len(got) != 0 {
		t.Fatalf("a fresh session got %d events: %v", len(got), got[:min(len(got), 5)])
	}
}
