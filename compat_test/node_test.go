package compat_test

import (
	"context"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

func needNode(t *testing.T) {
	needPeer(t, "node with the compat_test/node packages", func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		_, err := os.Stat("node/node_modules/socket.io")
		return err
	})
}

// startNodeServer starts a socket.io 4.8 server with the Redis adapter.
func startNodeServer(t *testing.T, key string) (*peer, string) {
	t.Helper()
	port := portString(t)
	p := startPeer(t, "node server "+port, "node", "node/server.js", port, key)
	p.waitFor("ready", 20*time.Second, func(l map[string]any) bool { return l["type"] == "ready" })
	return p, "http://127.0.0.1:" + port
}

func nodeClient(t *testing.T, url, room, nsp string) (*peer, string) {
	t.Helper()
	c := startPeer(t, "node client "+room+nsp, "node", "node/client.js", url, room, nsp)
	l := c.waitFor("connect", 20*time.Second, func(l map[string]any) bool {
		if l["type"] == "connect_error" {
			t.Fatalf("client: %v", l["message"])
		}
		return l["type"] == "connected"
	})
	return c, l["sid"].(string)
}

func TestNodeSocketIO(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needNode(t)
	key := uniq("sio")
	s1, url1 := startNodeServer(t, key)
	s2, url2 := startNodeServer(t, key)
	a, sidA := nodeClient(t, url1, "r1", "/")
	b, sidB := nodeClient(t, url2, "r2", "/")
	c, _ := nodeClient(t, url2, "r1", "/admin")
	bus := openBus(t, redisURL)
	em := emitter.New(bus, node.New(node.Options{Key: key}))
	defer em.Close()
	cli := []string{"--url", redisURL, "--dialect", "node", "--channel", key}
	ctx := context.Background()

	t.Run("room, several args with binary", func(t *testing.T) {
		if err := em.To("r1").Emit(ctx, "multi", "a", 1, []byte{0, 0xff}, map[string]any{"k": []any{1.5, nil, true}}); err != nil {
			t.Fatal(err)
		}
		l := a.waitFor("multi", 10*time.Second, isEvent("multi"))
		want := []any{"a", 1.0, map[string]any{"$binary": "AP8="}, map[string]any{"k": []any{1.5, nil, true}}}
		if !reflect.DeepEqual(l["args"], want) {
			t.Fatalf("client received %#v", l["args"])
		}
		absentAfterMarker(t, em, "/", sidB, b, "multi")
	})

	t.Run("sioemit to a room", func(t *testing.T) {
		mustSioemit(t, append(cli, "--to", "r2", "news", `{"n":1}`, `{"$binary":"AQI="}`)...)
		l := b.waitFor("news", 10*time.Second, isEvent("news"))
		if !reflect.DeepEqual(l["args"], []any{map[string]any{"n": 1.0}, map[string]any{"$binary": "AQI="}}) {
			t.Fatalf("got %#v", l["args"])
		}
	})

	t.Run("except", func(t *testing.T) {
		mustSioemit(t, append(cli, "--except", sidA, "all", `"not a"`)...)
		b.waitFor("all", 10*time.Second, isEventWith("all", "not a"))
		absentAfterMarker(t, em, "/", sidA, a, "all")
	})

	t.Run("namespace", func(t *testing.T) {
		if err := em.Of("/admin").To("r1").Emit(ctx, "solo", "admin only"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("solo", 10*time.Second, isEventWith("solo", "admin only"))
		absentAfterMarker(t, em, "/", sidA, a, "solo")
	})

	t.Run("volatile", func(t *testing.T) {
		if err := em.To(sidB).Volatile().Emit(ctx, "probe", "volatile"); err != nil {
			t.Fatal(err)
		}
		b.waitFor("volatile probe", 10*time.Second, isEventWith("probe", "volatile"))
	})

	t.Run("join and leave", func(t *testing.T) {
		mustSioemit(t, append(cli, "--to", sidA, "join", "r5")...)
		// the join is applied when the request comes back through Redis
		eventually(t, "delivery to the joined room", 10*time.Second, 200*time.Millisecond, func() bool {
			em.To("r5").Emit(ctx, "iso", "in r5")
			time.Sleep(100 * time.Millisecond)
			return len(a.events("iso")) > 0
		})
		mustSioemit(t, append(cli, "--to", sidA, "leave", "r5")...)
		marker := uniq("m")
		em.To(sidA).Emit(ctx, "marker", marker)
		a.waitFor("marker", 10*time.Second, isEventWith("marker", marker))
		n := len(a.events("iso"))
		if err := em.To("r5").Emit(ctx, "iso", "after leave"); err != nil {
			t.Fatal(err)
		}
		absentAfterMarker(t, em, "/", sidA, a, "no-such-event")
		if got := len(a.events("iso")); got != n {
			t.Fatalf("client still in r5 after leave: %d iso events, had %d", got, n)
		}
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		if err := em.Of("/").ServerSideEmit(ctx, "ping", 1, "two"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*peer{s1, s2} {
			l := s.waitFor("server-side ping", 10*time.Second, func(l map[string]any) bool { return l["type"] == "server-side" })
			if !reflect.DeepEqual(l["args"], []any{1.0, "two"}) {
				t.Fatalf("server got %#v", l["args"])
			}
		}
	})

	t.Run("EmitWithAck across two servers", func(t *testing.T) {
		replies, err := em.Of("/").Timeout(10*time.Second).EmitWithAck(ctx, "ask", "q")
		if err != nil {
			t.Fatal(err)
		}
		if len(replies) != 2 {
			t.Fatalf("%d replies, want 2 (one per client of the namespace): %#v", len(replies), replies)
		}
		for _, r := range replies {
			if !reflect.DeepEqual(r.Args, []any{`pong:"q"`}) {
				t.Fatalf("reply %#v", r)
			}
		}
	})

	t.Run("sioemit --ack", func(t *testing.T) {
		out := mustSioemit(t, append(cli, "--to", "r1", "--ack", "ask", "7")...)
		if strings.TrimSpace(out) != `{"args":["pong:7"]}` {
			t.Fatalf("output %q", out)
		}
	})

	t.Run("disconnect", func(t *testing.T) {
		mustSioemit(t, append(cli, "--to", sidB, "--close", "disconnect")...)
		l := b.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
		t.Logf("client saw disconnect reason %q", l["reason"])
	})
}

// TestReverseDecodingNode: what the real @socket.io/redis-emitter publishes
// decodes to the ops it means.
func TestReverseDecodingNode(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needNode(t)
	key := uniq("rev")
	d := node.New(node.Options{Key: key})
	bus := openBus(t, redisURL)
	var mu sync.Mutex
	var got []op.Op
	sub, err := bus.Subscribe(context.Background(), queue.Subscription{
		Patterns: []string{queue.EscapeGlob(key) + "*"},
	}, func(m queue.Message) {
		o, err := d.Decode(m)
		if err != nil {
			t.Errorf("decode %s: %v", m.Channel, err)
			return
		}
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	startPeer(t, "node emitter", "node", "node/emit.js", key)
	eventually(t, "5 messages", 20*time.Second, 20*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 5
	})
	want := []op.Op{
		&op.Emit{Target: op.Target{Namespace: "/admin", Rooms: []string{"r1", "r2"}, Except: []string{"sid9"}}, Event: "multi",
			Args: []any{"a", int64(1), []byte{0, 0xff}, map[string]any{"k": []any{1.5, nil, true}}}, Origin: "emitter"},
		&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Event: "one", Args: []any{map[string]any{"u": "é😀"}}, Volatile: true, Origin: "emitter"},
		&op.Join{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Rooms: []string{"room2"}, Origin: "emitter"},
		&op.Disconnect{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Close: true, Origin: "emitter"},
		&op.ServerSideEmit{Namespace: "/", Event: "ping", Args: []any{int64(1)}, Origin: "emitter"},
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("message %d:\n got %#v\nwant %#v", i, got[i], want[i])
		}
	}
}
