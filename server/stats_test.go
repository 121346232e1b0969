package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// statsDelta is what moved between two snapshots of Server.Stats.
func statsDelta(a, b server.Stats) server.Stats {
	return server.Stats{
		EventsIn: b.EventsIn - a.EventsIn, EventsOut: b.EventsOut - a.EventsOut,
		Broadcasts: b.Broadcasts - a.Broadcasts, Deliveries: b.Deliveries - a.Deliveries,
		Connects: b.Connects - a.Connects, ConnectErrors: b.ConnectErrors - a.ConnectErrors,
		LocalLatency: server.Histogram{Count: b.LocalLatency.Count - a.LocalLatency.Count},
		QueueLatency: server.Histogram{Count: b.QueueLatency.Count - a.QueueLatency.Count},
	}
}

func checkDelta(t *testing.T, step string, got, want server.Stats) {
	t.Helper()
	if got != want {
		t.Errorf("%s: counters moved by\n%+v\nwant\n%+v", step, got, want)
	}
}

// The counters and gauges of Server.Stats move with real traffic: events
// in and out, connects and refusals, broadcasts and their deliveries with
// a latency observation each, emits from the queue, sessions by
// transport, sockets, namespaces and rooms.
func TestStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := newServer(t)
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	srv.On("/", "ping", func(s *server.Socket) string {
		s.Emit("pong")
		return "ok"
	})
	srv.Of("/chat")
	bus := memory.New()
	defer bus.Close()
	d := python.New(python.Options{Channel: "stats"})
	sub, err := srv.ConsumeQueue(ctx, bus, d, server.QueueSubscription(d, "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()

	st := srv.Stats()
	if st.Namespaces != 2 || st.Sockets != 0 || st.Rooms != 0 || st.Polling != 0 || st.WebSocket != 0 {
		t.Fatalf("idle server: %+v", st)
	}

	// two WebSocket clients and a polling session
	a, err := servertest.Dial(hs.URL, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := servertest.Dial(hs.URL, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	resp, err := http.Get(hs.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("polling handshake: %s", resp.Status)
	}

	before := srv.Stats()
	for _, c := range []*servertest.Client{a, b} {
		if err := c.Connect("/", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Connect("/nowhere", nil); err == nil {
		t.Fatal("connected to a namespace that does not exist")
	}
	checkDelta(t, "connects", statsDelta(before, srv.Stats()), server.Stats{Connects: 2, ConnectErrors: 1})

	before = srv.Stats()
	if _, err := a.EmitWithAck("/", 5*time.Second, "ping"); err != nil {
		t.Fatal(err)
	}
	checkDelta(t, "ping", statsDelta(before, srv.Stats()), server.Stats{EventsIn: 1, EventsOut: 1})

	for _, c := range []*servertest.Client{a, b} {
		if _, err := c.EmitWithAck("/", 5*time.Second, "join", "news"); err != nil {
			t.Fatal(err)
		}
	}
	st = srv.Stats()
	if st.Sockets != 2 || st.Rooms != 1 || st.Namespaces != 2 || st.Polling != 1 || st.WebSocket != 2 {
		t.Fatalf("gauges: %+v", st)
	}

	before = srv.Stats()
	srv.Of("/").To("news").Emit("headline", "hello")
	srv.Of("/").To("empty-room").Emit("headline", "nobody")
	checkDelta(t, "broadcasts", statsDelta(before, srv.Stats()),
		server.Stats{EventsOut: 2, Broadcasts: 2, Deliveries: 2, LocalLatency: server.Histogram{Count: 1}})
	for _, c := range []*servertest.Client{a, b} {
		if _, err := c.WaitFor("/", "headline", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	before = srv.Stats()
	em := emitter.New(bus, python.New(python.Options{Channel: "stats"}))
	defer em.Close()
	if err := em.To("news").Emit(ctx, "headline", "from a worker"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*servertest.Client{a, b} {
		if _, err := c.WaitFor("/", "headline", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	after := srv.Stats()
	checkDelta(t, "queue", statsDelta(before, after),
		server.Stats{EventsOut: 2, Broadcasts: 1, Deliveries: 2, QueueLatency: server.Histogram{Count: 1}})
	if q := after.Queue; q.Applied != 1 || q.Received() != 1 {
		t.Errorf("queue stats %+v, received %d; want 1 applied of 1", q, q.Received())
	}
	for _, h := range []server.Histogram{after.LocalLatency, after.QueueLatency} {
		var n uint64
		for _, c := range h.Buckets {
			n += c
		}
		if n != h.Count || h.Sum <= 0 {
			t.Errorf("histogram %+v: buckets hold %d observations of %d, sum %s", h, n, h.Count, h.Sum)
		}
	}

	// one broadcast in LatencySampling is timed: the server's 17th here
	before = srv.Stats()
	for range server.LatencySampling {
		srv.Of("/").To("news").Emit("more")
	}
	checkDelta(t, "sampling", statsDelta(before, srv.Stats()), server.Stats{EventsOut: 2 * server.LatencySampling,
		Broadcasts: server.LatencySampling, Deliveries: 2 * server.LatencySampling, LocalLatency: server.Histogram{Count: 1}})

	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Sockets != 1 || srv.Stats().WebSocket != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after a client left: %+v", srv.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Socket.SetData attaches a value to one socket, read back by Data in its
// other handlers; another socket does not see it.
func TestSocketData(t *testing.T) {
	srv := newServer(t)
	srv.OnConnect("/", func(s *server.Socket, auth json.RawMessage) error {
		var a struct{ Name string }
		json.Unmarshal(auth, &a)
		s.SetData(a.Name)
		return nil
	})
	srv.On("/", "data", func(s *server.Socket) any { return s.Data() })
	a, b := client(t, srv, "", servertest.Options{}), client(t, srv, "", servertest.Options{})
	if err := a.Connect("/", map[string]string{"name": "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[*servertest.Client]any{a: "alice", b: ""} {
		if got, err := c.EmitWithAck("/", 5*time.Second, "data"); err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("Data() = %v %v, want %v", got, err, want)
		}
	}
}
