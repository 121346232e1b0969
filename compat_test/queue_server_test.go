package compat_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// TestPythonWorkerToOurServer: what python-socketio's write-only
// RedisManager (a Celery worker) publishes reaches the clients of our
// server consuming the same channel: room emits with binary and
// skip_sid, a room closed, a client disconnected, a broadcast.
func TestPythonWorkerToOurServer(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needFlaskSocketIO(t)
	channel := uniq("worker-to-go")
	bus := openBus(t, redisURL)
	srv := server.New()
	join := func(s *server.Socket, room string) { s.Join(room) }
	srv.On("/", "join", join)
	srv.On("/chat", "join", join)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	d := python.NewPickle(python.Options{Channel: channel}) // python-socketio 5.7 pickles
	sub, err := srv.ConsumeQueue(context.Background(), bus, d, server.QueueSubscription(d, "/", "/chat"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	connect := func(ns, room string) *servertest.Client {
		c, err := servertest.New(srv, servertest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.Connect(ns, nil); err != nil {
			t.Fatal(err)
		}
		if room != "" {
			c.EmitWithAck(ns, 5*time.Second, "join", room)
		}
		return c
	}
	inR1 := connect("/", "r1")
	other := connect("/", "")
	chat := connect("/chat", "r2")

	startPeer(t, "python emitter", "/usr/bin/python3", "python/emit.py", "--url", redisURL, "--channel", channel)

	// WaitFor returns every event received so far: "one" came before "done"
	find := func(c *servertest.Client) map[string][]any {
		t.Helper()
		evs, err := c.WaitFor("/", "done", 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]any{}
		for _, e := range evs {
			out[e.Event] = e.Args
		}
		return out
	}
	gotR1, gotOther := find(inR1), find(other)
	one, ok := gotR1["one"]
	if !ok {
		t.Fatalf("the r1 member did not get the room emit: %v", gotR1)
	}
	if m, ok := one[0].(map[string]any); !ok || m["u"] != "é😀" || m["big"] != math.Ldexp(1, 80) {
		t.Fatalf("one args %#v", one)
	}
	if _, ok := gotOther["one"]; ok {
		t.Fatal("a client outside r1 got the room emit")
	}
	multi, err := chat.WaitFor("/chat", "multi", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(multi[0].Args); got != "[a 1 [0 255] map[k:[1.5 <nil> true]]]" {
		t.Fatalf("multi args %s", got)
	}
	if st := srv.QueueStats(); st.Applied != 5 || st.Malformed != 0 {
		t.Fatalf("queue stats %+v, want 5 applied", st)
	}
}
