package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/metrics"
	"github.com/siobridge/siobridge/server/servertest"
)

// scrape reads url's metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the value of metric name with labels (name=value pairs); a
// histogram's value is its sample count. It fails the test when the
// metric is absent.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// waitFor scrapes until cond holds, or fails after the timeout.
func waitFor(t *testing.T, url string, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams := scrape(t, url)
		if cond(fams) {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Scraped through promhttp on a real server after real traffic — two
// WebSocket clients and a polling session, a refused connect, client
// events, a direct emit, a broadcast, an emit and a malformed message
// through a real Redis — every metric moved as it should, with HELP text
// and names that pass promlint.
func TestScrapeAfterTraffic(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus, err := queue.Open(ctx, "redis://"+testenv.RedisAddr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	channel := fmt.Sprintf("metrics-%d", time.Now().UnixNano())
	d := python.New(python.Options{Channel: channel})

	srv := server.New()
	defer srv.Shutdown(context.Background())
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	srv.On("/", "ping", func(s *server.Socket) string {
		s.Emit("pong")
		return "ok"
	})
	sub, err := srv.ConsumeQueue(ctx, bus, d, server.QueueSubscription(d, "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/metrics", metrics.Handler(srv, metrics.Options{Bus: bus}))
	hs := httptest.NewServer(mux)
	defer hs.Close()
	url := hs.URL + "/metrics"

	fams := scrape(t, url)
	for name, want := range map[string]float64{"siobridge_sockets": 0, "siobridge_events_received_total": 0,
		"siobridge_broadcasts_total": 0, "siobridge_queue_messages_received_total": 0, "siobridge_bus_up": 1} {
		if got := value(t, fams, name); got != want {
			t.Errorf("before any traffic, %s = %v, want %v", name, got, want)
		}
	}

	var clients []*servertest.Client
	for range 2 {
		c, err := servertest.Dial(hs.URL, servertest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Connect("/", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.EmitWithAck("/", 5*time.Second, "join", "news"); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if err := clients[0].Connect("/nowhere", nil); err == nil {
		t.Fatal("connected to a namespace that does not exist")
	}
	resp, err := http.Get(hs.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if _, err := clients[0].EmitWithAck("/", 5*time.Second, "ping"); err != nil {
		t.Fatal(err)
	}
	srv.Of("/").To("news").Emit("headline", "local")
	em := emitter.New(bus, python.New(python.Options{Channel: channel}))
	defer em.Close()
	if err := em.To("news").Emit(ctx, "headline", "from a worker"); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, queue.Message{Channel: server.QueueSubscription(d, "/").Channels[0], Data: []byte("not a message")}); err != nil {
		t.Fatal(err)
	}
	fams = waitFor(t, url, "the queue's two messages", func(f map[string]*dto.MetricFamily) bool {
		return value(t, f, "siobridge_queue_messages_received_total") == 2
	})

	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"siobridge_clients", []string{"transport", "websocket"}, 2},
		{"siobridge_clients", []string{"transport", "polling"}, 1},
		{"siobridge_sockets", nil, 2},
		{"siobridge_namespaces", nil, 1},
		{"siobridge_rooms", nil, 1},
		{"siobridge_connects_total", nil, 2},
		{"siobridge_connect_errors_total", nil, 1},
		{"siobridge_events_received_total", nil, 3},      // two joins, a ping
		{"siobridge_events_sent_total", nil, 1 + 2 + 2},  // the pong, two broadcasts to two sockets
		{"siobridge_broadcasts_total", nil, 2},           // the local one, the worker's
		{"siobridge_broadcast_deliveries_total", nil, 4}, // two each
		{"siobridge_delivery_latency_seconds", []string{"origin", "local"}, 1},
		{"siobridge_delivery_latency_seconds", []string{"origin", "queue"}, 1},
		{"siobridge_queue_messages_total", []string{"outcome", "applied"}, 1},
		{"siobridge_queue_messages_total", []string{"outcome", "malformed"}, 1},
		{"siobridge_queue_messages_total", []string{"outcome", "unsupported"}, 0},
		{"siobridge_queue_publish_errors_total", nil, 0},
		{"siobridge_bus_up", nil, 1},
		{"siobridge_bus_reconnects_total", nil, 0},
	} {
		if got := value(t, fams, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	if got := value(t, fams, "siobridge_bus_published_total"); got < 2 {
		t.Errorf("siobridge_bus_published_total = %v, want at least the emit and the malformed message", got)
	}
	if got := value(t, fams, "siobridge_bus_delivered_total"); got < 2 {
		t.Errorf("siobridge_bus_delivered_total = %v, want at least 2", got)
	}
	h := fams["siobridge_delivery_latency_seconds"].Metric[0].Histogram
	if h.GetSampleSum() <= 0 || len(h.Bucket) != len(server.LatencyBuckets)+1 { // and +Inf
		t.Errorf("latency histogram: sum %v, %d buckets", h.GetSampleSum(), len(h.Bucket))
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "siobridge_") && f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	problems, err := testutil.CollectAndLint(metrics.NewCollector(srv, metrics.Options{Bus: bus}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// When the broker goes away, siobridge_bus_up drops to 0; when it is
// back, to 1, and siobridge_bus_reconnects_total counts the return.
func TestBusOutage(t *testing.T) {
	redis := testenv.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus, err := queue.Open(ctx, "redis://"+redis.Addr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	srv := server.New()
	defer srv.Shutdown(context.Background())
	hs := httptest.NewServer(metrics.Handler(srv, metrics.Options{Bus: bus}))
	defer hs.Close()
	up := func(want float64) func(map[string]*dto.MetricFamily) bool {
		return func(f map[string]*dto.MetricFamily) bool { return value(t, f, "siobridge_bus_up") == want }
	}
	waitFor(t, hs.URL, "bus up", up(1))
	redis.Stop()
	down := waitFor(t, hs.URL, "bus down after the broker stopped", up(0))
	during := value(t, down, "siobridge_bus_disconnected_seconds_total")
	time.Sleep(300 * time.Millisecond)
	redis.Start()
	fams := waitFor(t, hs.URL, "bus up after the broker restarted", up(1))
	if got := value(t, fams, "siobridge_bus_reconnects_total"); got != 1 {
		t.Errorf("siobridge_bus_reconnects_total = %v, want 1", got)
	}
	// the time without the broker counts while the outage lasts, and stays
	after := value(t, fams, "siobridge_bus_disconnected_seconds_total")
	if after < 0.3 || after <= during {
		t.Errorf("siobridge_bus_disconnected_seconds_total: %v during the outage, %v after it (the broker was away over 0.3 s)", during, after)
	}
}

// siobridge_recovery_sessions_total counts connection state recovery's
// sessions: one saved as its client dropped, then restored.
func TestRecoverySessions(t *testing.T) {
	srv := server.New(server.WithConnectionStateRecovery(time.Minute, true))
	defer srv.Shutdown(context.Background())
	srv.Of("/").OnConnect(func(s *server.Socket, auth json.RawMessage) error { s.Join("r"); return nil })
	hs := httptest.NewServer(metrics.Handler(srv, metrics.Options{}))
	defer hs.Close()
	c, err := servertest.New(srv, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	srv.Of("/").To("r").Emit("end")
	evs, err := c.WaitFor("/", "end", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	auth := map[string]any{"pid": c.PID("/"), "offset": servertest.LastOffset(evs)}
	c.Drop()
	sessions := func(outcome string, want float64) func(map[string]*dto.MetricFamily) bool {
		return func(f map[string]*dto.MetricFamily) bool {
			return value(t, f, "siobridge_recovery_sessions_total", "outcome", outcome) == want
		}
	}
	waitFor(t, hs.URL, "a session saved", sessions("saved", 1))
	c2, err := c.Redial(servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Connect("/", auth); err != nil {
		t.Fatal(err)
	}
	fams := waitFor(t, hs.URL, "a session restored", sessions("restored", 1))
	if got := value(t, fams, "siobridge_recovery_sessions_total", "outcome", "not_saved"); got != 0 {
		t.Errorf("not_saved = %v", got)
	}
}
