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
// server consuming the same channel, each effect observed on a client: a
// room emit with skip_sid (the skipped member gets nothing, the other
// does), close_room (a later emit to the room reaches nobody), disconnect
// (the client is disconnected), a multi-room emit with binary in another
// namespace, a broadcast.
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
	skipped := connect("/", "r1")
	gone := connect("/", "")
	other := connect("/", "")
	chat := connect("/chat", "r2")

	startPeer(t, "python emitter", "/usr/bin/python3", "python/emit.py", "--url", redisURL, "--channel", channel,
		"--skip", skipped.SID("/"), "--disconnect", gone.SID("/"))

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
	gotR1, gotOther, gotSkipped := find(inR1), find(other), find(skipped)
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
	if _, ok := gotSkipped["one"]; ok {
		t.Fatal("skip_sid: the skipped member of r1 got the room emit")
	}
	for _, got := range []map[string][]any{gotR1, gotOther, gotSkipped} {
		if _, ok := got["after-close"]; ok {
			t.Fatal("close_room: an emit to r1 after the room was closed reached a former member")
		}
	}
	eventually(t, "the disconnected client", 10*time.Second, 20*time.Millisecond, func() bool { return !gone.IsConnected("/") })
	if !other.IsConnected("/") || !inR1.IsConnected("/") {
		t.Fatal("disconnect reached another client")
	}
	multi, err := chat.WaitFor("/chat", "multi", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(multi[0].Args); got != "[a 1 [0 255] map[k:[1.5 <nil> true]]]" {
		t.Fatalf("multi args %s", got)
	}
	// a message is counted once performed: a client can see its event
	// just before
	eventually(t, "6 queue messages applied", 5*time.Second, 10*time.Millisecond, func() bool { return srv.QueueStats().Applied >= 6 })
	time.Sleep(100 * time.Millisecond) // nothing more arrives
	if st := srv.QueueStats(); st.Applied != 6 || st.Malformed != 0 {
		t.Fatalf("queue stats %+v, want 6 applied", st)
	}
}
