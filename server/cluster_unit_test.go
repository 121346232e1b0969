package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/wstest"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// memberOn starts a server that is a cluster member on bus.
func memberOn(t *testing.T, bus queue.Bus, d dialect.Dialect) *server.Server {
	t.Helper()
	srv := newServer(t, server.WithAdapter(bus, d))
	srv.On("/", "join", func(s *server.Socket, room string) bool { s.Join(room); return true })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.AdapterReady(ctx); err != nil {
		t.Fatal(err)
	}
	return srv
}

// Selections made only of this node's sockets publish nothing; the others
// publish once, and the node's own message, back from the bus, is not
// delivered a second time.
func TestClusterLocalSelectionsStayLocal(t *testing.T) {
	for _, d := range []dialect.Dialect{python.New(python.Options{Channel: "local"}), node.New(node.Options{Key: "local"})} {
		t.Run(d.Name(), func(t *testing.T) {
			bus := memory.New()
			defer bus.Close()
			srv := memberOn(t, bus, d)
			c := client(t, srv, "/", servertest.Options{})
			c.EmitWithAck("/", 5*time.Second, "join", "r")
			before := bus.Stats().Published
			srv.Of("/").To(c.SID("/")).Emit("private")
			srv.Of("/").In(c.SID("/")).SocketsJoin("r2")
			if got := bus.Stats().Published; got != before {
				t.Fatalf("%d messages published for this node's own sockets", got-before)
			}
			srv.Of("/").To("r").Emit("room")
			srv.Of("/").To("r").Emit("end")
			got, err := c.WaitFor("/", "end", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// broadcasts are published in the background and come back after
			// "end" was delivered locally: wait for them to be skipped
			for deadline := time.Now().Add(5 * time.Second); srv.QueueStats().Own < 2; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("own messages not back: %+v", srv.QueueStats())
				}
			}
			if got := bus.Stats().Published; got != before+2 {
				t.Fatalf("%d messages published for two room broadcasts, want 2", got-before)
			}
			got = append(got, c.Received("/")...)
			var events []string
			for _, r := range got {
				events = append(events, r.Event)
			}
			if fmt.Sprint(events) != "[private room end]" {
				t.Fatalf("received %v", events)
			}
		})
	}
}

// What the dialect cannot express is refused with ErrUnsupported before
// anything is done, on this node either.
func TestClusterUnsupportedDoesNothing(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	srv := memberOn(t, bus, python.NewPickle(python.Options{Channel: "unsupported"}))
	c := client(t, srv, "/", servertest.Options{})
	c.EmitWithAck("/", 5*time.Second, "join", "r")
	if err := srv.Of("/").In("r").SocketsJoin("r2"); !errors.Is(err, dialect.ErrUnsupported) {
		t.Fatalf("SocketsJoin by room with python-pickle: %v", err)
	}
	if _, err := srv.Of("/").To("r", "r3").EmitWithAck(context.Background(), "ask"); !errors.Is(err, dialect.ErrUnsupported) {
		t.Fatalf("EmitWithAck to two rooms with python: %v", err)
	}
	for _, r := range srv.Of("/").Socket(c.SID("/")).Rooms() {
		if r == "r2" {
			t.Fatal("the refused join was done locally")
		}
	}
	if c.Received("/") != nil {
		t.Fatal("the refused emit was delivered locally")
	}
}

// A client that answers one acknowledgement id twice counts once: the
// cluster's broadcast acks share one channel between the asked sockets.
func TestClusterAckAnsweredTwiceCountsOnce(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	srv := memberOn(t, bus, node.New(node.Options{Key: "twice"}))
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer hs.CloseClientConnections()
	var sids []string
	var conns []*wstest.Conn
	for range 2 {
		w := wstest.Dial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socket.io/?EIO=4&transport=websocket")
		w.Read()
		w.Send("40")
		_, ack := w.Read() // 40{"sid":"..."}
		sids = append(sids, ack[len(`40{"sid":"`):len(ack)-2])
		conns = append(conns, w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	type result struct {
		answers [][]any
		err     error
	}
	done := make(chan result, 1)
	go func() {
		a, err := srv.Of("/").To(sids...).EmitWithAck(ctx, "ask")
		done <- result{a, err}
	}()
	_, ev := conns[0].Read() // 42<id>["ask"]
	id := strings.TrimSuffix(strings.TrimPrefix(ev, "42"), `["ask"]`)
	conns[0].Send("43" + id + `["a"]`)
	conns[0].Send("43" + id + `["a again"]`) // the second client never answers
	r := <-done
	if !errors.Is(r.err, server.ErrAckTimeout) || len(r.answers) != 1 {
		t.Fatalf("answers %v, err %v; want one answer and a timeout", r.answers, r.err)
	}
}

// Namespaces created after the server joined its cluster are subscribed
// too (the node dialect has channels per namespace).
func TestClusterLaterNamespace(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	d := node.New(node.Options{Key: "later"})
	a, b := memberOn(t, bus, d), memberOn(t, bus, d)
	for _, srv := range []*server.Server{a, b} {
		srv.Of("/chat")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := srv.AdapterReady(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := client(t, b, "/chat", servertest.Options{})
	if err := a.Of("/chat").Emit("hello", "chat"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor("/chat", "hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// The subscriptions of dynamic namespaces go with them: namespace names
// that clients invent cannot grow a node's subscriptions (the node dialect
// has channels per namespace) without bound.
func TestClusterDynamicNamespaceSubscriptionsRemoved(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	srv := memberOn(t, bus, node.New(node.Options{Key: "dyn"}))
	srv.OfPattern(regexp.MustCompile(`^/dyn-\d+$`), func(n *server.Namespace) {})
	baseWant, baseLive := server.MemberSubscriptions(srv)
	c := client(t, srv, "/", servertest.Options{})
	for i := range 30 {
		ns := fmt.Sprintf("/dyn-%d", i)
		if err := c.Connect(ns, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Disconnect(ns); err != nil {
			t.Fatal(err)
		}
	}
	// the server handles the DISCONNECTs in order: once it answers on
	// another namespace, they are done
	if err := c.Connect("/dyn-x", nil); err == nil {
		t.Fatal("a namespace outside the pattern was accepted")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		want, live := server.MemberSubscriptions(srv)
		if want == baseWant && live == baseLive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions after 30 dynamic namespaces came and went: %d wanted, %d live; before %d, %d", want, live, baseWant, baseLive)
		}
	}
}

// refusingBus is an in-memory bus whose broker refuses every subscription
// for lack of permission.
type refusingBus struct{ *memory.Bus }

func (refusingBus) Subscribe(context.Context, queue.Subscription, queue.Handler) (queue.Subscriber, error) {
	return nil, fmt.Errorf("test bus: NOPERM: %w", queue.ErrForbidden)
}

// A subscription the broker refuses for lack of permission is not retried
// until the caller's deadline: AdapterReady says so at once (sioserver
// exits 1 with the refusal instead of waiting out its start-up timeout).
func TestClusterForbiddenSubscriptionFailsAtOnce(t *testing.T) {
	bus := refusingBus{memory.New()}
	defer bus.Close()
	srv := newServer(t, server.WithAdapter(bus, python.New(python.Options{Channel: "forbidden"})))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.AdapterReady(ctx)
	if !errors.Is(err, queue.ErrForbidden) {
		t.Fatalf("AdapterReady: %v, want the refusal (queue.ErrForbidden)", err)
	}
}

// TestLocalBroadcast: Local (Flask-SocketIO's ignore_queue, socket.io's
// io.local) reaches this node's sockets only and publishes nothing, for
// emits, room changes and FetchSockets; the same calls without Local
// reach the other node.
func TestLocalBroadcast(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	d := node.New(node.Options{Key: "local-bc"})
	a, b := memberOn(t, bus, d), memberOn(t, bus, d)
	ca, cb := client(t, a, "/", servertest.Options{}), client(t, b, "/", servertest.Options{})
	before := bus.Stats().Published
	if err := a.Of("/").Local().Emit("local-only"); err != nil {
		t.Fatal(err)
	}
	a.Of("/").Local().SocketsJoin("here")
	if got := bus.Stats().Published; got != before {
		t.Fatalf("Local published %d messages", got-before)
	}
	infos, err := a.Of("/").Local().FetchSockets(context.Background())
	if err != nil || len(infos) != 1 || infos[0].ID != ca.SID("/") {
		t.Fatalf("Local FetchSockets: %+v %v, want this node's socket only", infos, err)
	}
	a.Of("/").To("here").Emit("room-here")
	if err := a.Of("/").Emit("everyone"); err != nil {
		t.Fatal(err)
	}
	// WaitFor hands over every event received so far: "everyone" comes last
	events := func(c *servertest.Client) map[string]bool {
		t.Helper()
		got, err := c.WaitFor("/", "everyone", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // what node b would get has had time to arrive
		m := map[string]bool{}
		for _, e := range append(got, c.Received("/")...) {
			m[e.Event] = true
		}
		return m
	}
	if got := events(ca); !got["local-only"] || !got["room-here"] {
		t.Fatalf("this node's client got %v, want local-only and room-here", got)
	}
	if got := events(cb); got["local-only"] || got["room-here"] {
		t.Fatalf("the other node's client got %v: Local reached it", got)
	}
}
