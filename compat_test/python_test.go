package compat_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/siobridge/siobridge/adapter/amqp"
	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

const redisURL = "redis://" + testenv.RedisAddr + "/0"

// fsio is one Flask-SocketIO 5.3.2 server on a message queue.
type fsio struct {
	t       *testing.T
	url     string // http URL of the server
	mq      string
	channel string // "" = Flask-SocketIO's default
}

func startFSIO(t *testing.T, mq, channel string) *fsio {
	t.Helper()
	needFlaskSocketIO(t)
	port := portString(t)
	args := []string{"/usr/bin/python3", "python/fsio_server.py", "--port", port, "--mq", mq}
	if channel != "" {
		args = append(args, "--channel", channel)
	}
	startPeer(t, "flask-socketio server", args...)
	if err := testenv.WaitPort("127.0.0.1:"+port, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return &fsio{t: t, url: "http://127.0.0.1:" + port, mq: mq, channel: channel}
}

// client connects a python-socketio client (polling) that joins room.
func (s *fsio) client(room string, namespaces ...string) (*peer, string) {
	s.t.Helper()
	args := []string{"/usr/bin/python3", "python/client.py", "--url", s.url, "--room", room,
		"--events", "multi,news,probe,marker,ask,solo,all,after-close,iso,stream,message,json"}
	for _, ns := range namespaces {
		args = append(args, "--namespace", ns)
	}
	c := startPeer(s.t, "python client "+room, args...)
	l := c.waitFor("connect", 20*time.Second, func(l map[string]any) bool { return l["type"] == "connected" })
	return c, l["sid"].(string)
}

// ready waits until the server's queue listener delivers: python-socketio
// subscribes lazily, after its first client connected.
func ready(t *testing.T, em *emitter.Emitter, ns, sid string, c *peer) {
	t.Helper()
	eventually(t, "first delivery through the queue", 20*time.Second, 250*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := em.Of(ns).To(sid).Emit(ctx, "probe"); err != nil {
			t.Logf("probe: %v", err)
		}
		time.Sleep(150 * time.Millisecond)
		return len(c.events("probe")) > 0
	})
}

// absentAfterMarker checks that c never received event: a marker sent to
// the client's sid after the event is waited for first (the queue and the
// server keep the order).
func absentAfterMarker(t *testing.T, em *emitter.Emitter, ns, sid string, c *peer, event string) {
	t.Helper()
	marker := uniq("m")
	if err := em.Of(ns).To(sid).Emit(context.Background(), "marker", marker); err != nil {
		t.Fatal(err)
	}
	c.waitFor("marker "+marker, 10*time.Second, isEventWith("marker", marker))
	if got := c.events(event); len(got) > 0 {
		t.Fatalf("client %s received %q although it should not: %v", sid, event, got)
	}
}

func openBus(t *testing.T, url string) queue.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := queue.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	return bus
}

func TestFlaskSocketIORedis(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	testFlaskSocketIO(t, redisURL, redisURL, uniq("fsio"))
}

// TestFlaskSocketIOAMQP: the server uses Kombu on RabbitMQ, the Go side
// adapter/amqp; both declare the same fanout exchange.
func TestFlaskSocketIOAMQP(t *testing.T) {
	testenv.Need(t, "rabbitmq", testenv.AMQPAddr)
	testFlaskSocketIO(t, "amqp://guest:guest@"+testenv.AMQPAddr+"//", "amqp://guest:guest@"+testenv.AMQPAddr+"/", uniq("fsio-amqp"))
}

// TestFlaskSocketIODefaultChannel uses Flask-SocketIO's true default channel.
func TestFlaskSocketIODefaultChannel(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	srv := startFSIO(t, redisURL, "")
	a, sidA := srv.client(uniq("room"))
	em := emitter.New(openBus(t, redisURL), python.NewPickle(python.Options{}))
	defer em.Close()
	ready(t, em, "/", sidA, a)
	mustSioemit(t, "--url", redisURL, "--dialect", "python-pickle", "--to", sidA, "solo", `"default channel"`)
	a.waitFor("solo", 10*time.Second, isEventWith("solo", "default channel"))
}

func testFlaskSocketIO(t *testing.T, serverMQ, goURL, channel string) {
	srv := startFSIO(t, serverMQ, channel)
	a, sidA := srv.client("r1", "/", "/chat")
	b, sidB := srv.client("r2")
	bus := openBus(t, goURL)
	em := emitter.New(bus, python.NewPickle(python.Options{Channel: channel}))
	defer em.Close()
	ready(t, em, "/", sidA, a)
	ready(t, em, "/", sidB, b)
	cli := []string{"--url", goURL, "--dialect", "python-pickle", "--channel", channel}
	ctx := context.Background()

	t.Run("go emitter, several args with bytes, to a room", func(t *testing.T) {
		err := em.To("r1").Emit(ctx, "multi", "a", 1, []byte{0, 0xff}, map[string]any{"k": []any{1.5, nil, true}, "u": "é😀"})
		if err != nil {
			t.Fatal(err)
		}
		l := a.waitFor("multi", 10*time.Second, isEvent("multi"))
		want := []any{"a", 1.0, map[string]any{"$binary": "AP8="}, map[string]any{"k": []any{1.5, nil, true}, "u": "é😀"}}
		if !reflect.DeepEqual(l["args"], want) {
			t.Fatalf("client received %#v, want %#v", l["args"], want)
		}
		absentAfterMarker(t, em, "/", sidB, b, "multi")
	})

	t.Run("sioemit to a room", func(t *testing.T) {
		mustSioemit(t, append(cli, "--to", "r1", "news", `{"n":1}`, "plain text", `{"$binary":"AQI="}`)...)
		l := a.waitFor("news", 10*time.Second, isEvent("news"))
		want := []any{map[string]any{"n": 1.0}, "plain text", map[string]any{"$binary": "AQI="}}
		if !reflect.DeepEqual(l["args"], want) {
			t.Fatalf("client received %#v", l["args"])
		}
	})

	t.Run("single sid", func(t *testing.T) {
		mustSioemit(t, append(cli, "--to", sidB, "solo", `"just b"`)...)
		b.waitFor("solo", 10*time.Second, isEventWith("solo", "just b"))
		absentAfterMarker(t, em, "/", sidA, a, "solo")
	})

	t.Run("except a sid", func(t *testing.T) {
		mustSioemit(t, append(cli, "--except", sidA, "all", `"not a"`)...)
		b.waitFor("all", 10*time.Second, isEventWith("all", "not a"))
		absentAfterMarker(t, em, "/", sidA, a, "all")
	})

	t.Run("namespace", func(t *testing.T) {
		mustSioemit(t, append(cli, "-n", "/chat", "--to", "r1", "news", `"in chat"`)...)
		a.waitFor("news in /chat", 10*time.Second, func(l map[string]any) bool {
			return isEventWith("news", "in chat")(l) && l["namespace"] == "/chat"
		})
	})

	t.Run("sioemit --ack", func(t *testing.T) {
		out := mustSioemit(t, append(cli, "--to", sidA, "--ack", "ask", `{"q":1}`)...)
		if strings.TrimSpace(out) != fmt.Sprintf(`{"sid":"%s","args":["pong",{"q":1}]}`, sidA) {
			t.Fatalf("ack output %q", out)
		}
	})

	t.Run("go EmitWithAck", func(t *testing.T) {
		replies, err := em.To(sidB).Timeout(10*time.Second).EmitWithAck(ctx, "ask", "x", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(replies) != 1 || replies[0].Sid != sidB || !reflect.DeepEqual(replies[0].Args, []any{"pong", "x", int64(2)}) {
			t.Fatalf("replies %#v", replies)
		}
	})

	t.Run("ack timeout exits 3", func(t *testing.T) {
		code, _, _ := sioemit(t, append(cli, "--to", "no-such-sid", "--ack", "--timeout", "500ms", "ask")...)
		if code != 3 {
			t.Fatalf("exit %d, want 3", code)
		}
	})

	t.Run("join and leave refused for python-socketio 5.7", func(t *testing.T) {
		for _, sub := range []string{"join", "leave"} {
			code, _, errOut := sioemit(t, append(cli, "--to", sidA, sub, "r9")...)
			if code != 2 || !strings.Contains(errOut, "5.10") {
				t.Fatalf("%s: exit %d %q", sub, code, errOut)
			}
		}
	})

	t.Run("close-room", func(t *testing.T) {
		mustSioemit(t, append(cli, "close-room", "r1")...)
		mustSioemit(t, append(cli, "--to", "r1", "after-close")...)
		absentAfterMarker(t, em, "/", sidA, a, "after-close")
	})

	t.Run("disconnect", func(t *testing.T) {
		mustSioemit(t, append(cli, "--to", sidB, "disconnect")...)
		b.waitFor("disconnect", 10*time.Second, func(l map[string]any) bool { return l["type"] == "disconnected" })
	})
}

// TestReverseDecodingPython: what python-socketio's write-only RedisManager
// publishes decodes to the ops it means.
func TestReverseDecodingPython(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	needFlaskSocketIO(t)
	channel := uniq("reverse")
	bus := openBus(t, redisURL)
	d := python.NewPickle(python.Options{Channel: channel})
	var mu sync.Mutex
	var got []op.Op
	sub, err := bus.Subscribe(context.Background(), queue.Subscription{Channels: []string{channel}}, func(m queue.Message) {
		o, err := d.Decode(m)
		if err != nil {
			t.Errorf("decode: %v", err)
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
	p := startPeer(t, "python emitter", "/usr/bin/python3", "python/emit.py", "--url", redisURL, "--channel", channel)
	_ = p
	eventually(t, "5 messages", 20*time.Second, 50*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 5
	})
	host := "0123456789abcdef0123456789abcdef"
	big80, _ := new(big.Int).SetString("1208925819614629174706176", 10)
	want := []op.Op{
		&op.Emit{Target: op.Target{Namespace: "/chat", Rooms: []string{"r1", "r2"}, Except: []string{"SID9"}}, Event: "multi",
			Args: []any{"a", int64(1), []byte{0, 0xff}, map[string]any{"k": []any{1.5, nil, true}}}, Origin: host},
		&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"r1"}}, Event: "one", Args: []any{map[string]any{"big": big80, "u": "é😀"}}, Origin: host},
		&op.CloseRoom{Namespace: "/chat", Room: "r1"},
		&op.Disconnect{Target: op.Target{Namespace: "/", Rooms: []string{"SID1"}}},
		&op.Emit{Target: op.Target{Namespace: "/"}, Event: "done", Origin: host},
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("message %d:\n got %#v\nwant %#v", i, got[i], want[i])
		}
	}
}

// TestChannelIsolationPython: a Flask-SocketIO server on channel A does not
// deliver what is published on channel B of the same broker.
func TestChannelIsolationPython(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	chA, chB := uniq("iso-a"), uniq("iso-b")
	srv := startFSIO(t, redisURL, chA)
	c, sid := srv.client("r")
	bus := openBus(t, redisURL)
	emA := emitter.New(bus, python.NewPickle(python.Options{Channel: chA}))
	emB := emitter.New(bus, python.NewPickle(python.Options{Channel: chB}))
	defer emA.Close()
	defer emB.Close()
	ready(t, emA, "/", sid, c)
	for i := 0; i < 5; i++ {
		if err := emB.Emit(context.Background(), "iso", i); err != nil {
			t.Fatal(err)
		}
	}
	absentAfterMarker(t, emA, "/", sid, c, "iso")
}

// TestBrokerRestartPython restarts a private redis-server while a Go
// emitter streams emits to a Flask-SocketIO server's client.
func TestBrokerRestartPython(t *testing.T) {
	redisProc := testenv.StartRedis(t)
	url := "redis://" + redisProc.Addr + "/0"
	channel := uniq("restart")
	srv := startFSIO(t, url, channel)
	c, sid := srv.client("r")
	bus := openBus(t, url)
	em := emitter.New(bus, python.NewPickle(python.Options{Channel: channel}))
	defer em.Close()
	ready(t, em, "/", sid, c)

	const n = 60
	failed, slow := 0, 0
	var worst time.Duration
	for i := 0; i < n; i++ {
		if i == 15 {
			redisProc.Stop()
		}
		if i == 30 {
			redisProc.Start()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		err := em.To(sid).Emit(ctx, "stream", i)
		el := time.Since(start)
		cancel()
		worst = max(worst, el)
		if el > 3*time.Second {
			slow++
		}
		if err != nil {
			failed++
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("emit %d: %v", i, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d of %d emits failed during the outage; slowest emit returned after %s", failed, n, worst)
	if slow > 0 {
		t.Fatalf("%d emits did not return near their 1 s deadline", slow)
	}
	if failed == 0 {
		t.Fatal("no emit failed although the broker was down")
	}
	// after the restart: the emitter works, and once python's listener has
	// resubscribed (its back-off is 1, 2, 4 ... s) the client receives again
	eventually(t, "delivery after the restart", 90*time.Second, 500*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := em.To(sid).Emit(ctx, "marker", "after-restart"); err != nil {
			t.Logf("emit after restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		for _, l := range c.events("marker") {
			if args, _ := l["args"].([]any); len(args) > 0 && args[0] == "after-restart" {
				return true
			}
		}
		return false
	})
}
