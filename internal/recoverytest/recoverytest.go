// Package recoverytest runs the connection-state-recovery scenarios that
// every store shared by the nodes of a cluster (server.RecoveryReplayer)
// must pass, on two Go nodes: a client dropped from one recovers on the
// other with everything it missed, and an offset no longer in the log
// gives a fresh session.
package recoverytest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/servertest"
)

// Node is a Go server of a cluster with a shared recovery store. Its
// clients join room "r" and get Data "data of <sid>" (followed by the
// "Data" string of their auth, if any) when they connect afresh; event
// "data" answers Data.
type Node struct {
	Srv       *server.Server
	recovered chan bool
	gone      chan string
}

// NewNode starts a server on bus in dialect d with store, connection
// state recovery for a minute, a send queue large enough for a replay of
// a few thousand events, and opts.
func NewNode(t *testing.T, bus queue.Bus, d dialect.Dialect, store server.RecoveryStore, opts ...server.Option) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := &Node{recovered: make(chan bool, 16), gone: make(chan string, 16)}
	n.Srv = server.New(append([]server.Option{server.WithConnectionStateRecovery(time.Minute, true), server.WithRecoveryStore(store),
		server.WithAdapter(bus, d), server.WithEngineOptions(engineio.Options{SendQueueSize: 4096})}, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Srv.Shutdown(ctx)
	})
	if err := n.Srv.AdapterReady(ctx); err != nil {
		t.Fatal(err)
	}
	ns := n.Srv.Of("/")
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

// Client connects a client with auth and reports whether it recovered.
func (n *Node) Client(t *testing.T, auth any) (*servertest.Client, bool) {
	t.Helper()
	c, err := servertest.New(n.Srv, servertest.Options{})
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

// WaitGone waits until a client of n has disconnected.
func (n *Node) WaitGone(t *testing.T) {
	t.Helper()
	select {
	case <-n.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see the client leave")
	}
}

// Values are the first arguments of the events on c up to the ends-th
// "end". (With a log fed by the adapter, Emit returns before the
// broadcast is in the log: the broadcasts of two nodes may reach it in
// any order, so each node sends an "end" after its own.)
func Values(t *testing.T, c *servertest.Client, ends int) (vals []string, evs []servertest.Received) {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(20 * time.Second); n < ends; {
		got, err := c.WaitFor("/", "end", time.Until(deadline))
		if err != nil {
			t.Fatalf("%d \"end\" of %d: %v", n, ends, err)
		}
		for _, e := range got {
			if n < ends {
				evs = append(evs, e)
			}
			if e.Event == "end" {
				n++
			}
		}
	}
	for _, e := range evs {
		if e.Event != "end" {
			vals = append(vals, fmt.Sprint(e.Args[0]))
		}
	}
	return vals, evs
}

// end sends "end" to room r from each node.
func end(nodes ...*Node) {
	for _, n := range nodes {
		n.Srv.Of("/").To("r").Emit("end")
	}
}

// RecoverOnOther: a client of node a is dropped; 1,000 events go to its
// room, from a and b alternately, plus some it must not get; it comes
// back to node b and recovers its id, rooms, Data and the 1,000 events,
// once each, before live ones, in the log's order (each node's in the
// order it emitted them; their offsets in increasing order by log).
func RecoverOnOther(t *testing.T, a, b *Node, log server.RecoveryReplayer) {
	t.Helper()
	c, _ := a.Client(t, nil)
	sid, pid := c.SID("/"), c.PID("/")
	a.Srv.Of("/").To("r").Emit("ev", "before")
	end(a, b)
	_, evs := Values(t, c, 2)
	offset := servertest.LastOffset(evs)
	if offset == "" {
		t.Fatalf("no offset: %+v", evs)
	}
	c.Drop()
	a.WaitGone(t)

	var want []string
	for i := range 1000 {
		from := a
		if i%2 == 1 {
			from = b
		}
		if err := from.Srv.Of("/").To("r").Emit("ev", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint(i))
		if i%100 == 0 {
			from.Srv.Of("/").To("other").Emit("ev", "other")
			from.Srv.Of("/").Except("r").Emit("ev", "except")
		}
	}
	c2, recovered := b.Client(t, map[string]any{"pid": pid, "offset": offset})
	if !recovered {
		t.Fatal("not recovered on the other node")
	}
	if c2.SID("/") != sid || c2.PID("/") != pid {
		t.Fatalf("recovered as %s/%s, was %s/%s", c2.SID("/"), c2.PID("/"), sid, pid)
	}
	a.Srv.Of("/").To("r").Emit("ev", "live")
	end(a, b)
	want = append(want, "live")
	got, evs := Values(t, c2, 2)
	checkOrder(t, got, evs, want, log)
	d, err := c2.EmitWithAck("/", 5*time.Second, "data")
	if err != nil || len(d) != 1 || d[0] != "data of "+sid {
		t.Fatalf("data %v %v", d, err)
	}
}

// PrunedIsFresh: after n events from a, which the store's bounds cannot
// all keep, a client that left a before them comes back to b with a
// fresh session and nothing replayed.
func PrunedIsFresh(t *testing.T, a, b *Node, n int) {
	t.Helper()
	c, _ := a.Client(t, nil)
	sid, pid := c.SID("/"), c.PID("/")
	end(a)
	_, evs := Values(t, c, 1)
	offset := servertest.LastOffset(evs)
	c.Drop()
	a.WaitGone(t)
	for i := range n {
		a.Srv.Of("/").To("r").Emit("ev", fmt.Sprint("missed ", i))
	}
	// once a client of b has a's "end", b has all of them (Emit may
	// return before the broadcast is in the log)
	observer, _ := b.Client(t, nil)
	end(a)
	Values(t, observer, 1)
	c2, recovered := b.Client(t, map[string]any{"pid": pid, "offset": offset})
	if recovered || c2.SID("/") == sid || c2.PID("/") == pid {
		t.Fatalf("recovered %v as %s/%s, was %s/%s", recovered, c2.SID("/"), c2.PID("/"), sid, pid)
	}
	end(b)
	got, _ := Values(t, c2, 1)
	if len(got) != 0 {
		t.Fatalf("a fresh session got %d events: %v", len(got), got[:min(len(got), 5)])
	}
}

// checkOrder checks that got holds every value of want once (want: "0",
// "1", ... from a and b alternately, then "live" from a), a's and b's
// each in their order, and that the offsets of evs increase.
func checkOrder(t *testing.T, got []string, evs []servertest.Received, want []string, log server.RecoveryReplayer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	next := [2]int{0, 1}  // the next value expected from a (even) and b (odd)
	last := len(want) - 1 // "live" stands for a's value after its last
	for i, v := range got {
		n, err := strconv.Atoi(v)
		if v == "live" {
			n, err = last+last%2, nil
		}
		if err != nil || n != next[n%2] {
			t.Fatalf("event %d is %s, want %d or %d next", i, v, next[0], next[1])
		}
		next[n%2] += 2
	}
	prev := ""
	for _, e := range evs {
		if e.Event != "ev" {
			continue
		}
		off, _ := e.Args[len(e.Args)-1].(string)
		if c, ok := log.CompareOffsets(prev, off); prev != "" && (!ok || c >= 0) {
			t.Fatalf("offset %q after %q", off, prev)
		}
		prev = off
	}
}
