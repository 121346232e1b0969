package server_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

func shardedDialect(t *testing.T, key string, mode nodesharded.Mode) *nodesharded.Dialect {
	t.Helper()
	d, err := nodesharded.New(nodesharded.Options{Key: key, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// modeChannels are the channels a node-sharded member in mode subscribes
// to with one socket sid in room r: the main channel and its response
// channel always; r's in the dynamic modes; sid's in dynamic-private.
func modeChannels(key, uid, sid string, mode nodesharded.Mode) []string {
	main := key + "#/#"
	want := []string{main, main + uid + "#"}
	if mode != nodesharded.Static {
		want = append(want, main+"r#")
	}
	if mode == nodesharded.DynamicPrivate {
		want = append(want, main+sid+"#")
	}
	sort.Strings(want)
	return want
}

// TestShardedModeChannels: the channels a node-sharded server member
// subscribes to follow its subscription mode (createShardedAdapter's
// subscriptionMode), and an emitter in the same mode reaches its client
// by room and by socket id.
func TestShardedModeChannels(t *testing.T) {
	for _, mode := range []nodesharded.Mode{nodesharded.Static, nodesharded.Dynamic, nodesharded.DynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			bus := memory.New()
			defer bus.Close()
			d := shardedDialect(t, "modes", mode)
			srv := memberOn(t, bus, d)
			c := client(t, srv, "/", servertest.Options{})
			if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
				t.Fatal(err)
			}
			want := modeChannels("modes", server.MemberOrigin(srv), c.SID("/"), mode)
			if got := server.MemberChannels(srv); !slices.Equal(got, want) {
				t.Fatalf("subscribed to %q, want %q", got, want)
			}
			// room subscriptions are made in the background (as Node's
			// adapter makes them): emit once they are live
			for deadline := time.Now().Add(10 * time.Second); !slices.Equal(server.MemberSubscribed(srv), want); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("subscriptions live: %q, want %q", server.MemberSubscribed(srv), want)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			em := emitter.New(bus, d)
			defer em.Close()
			for ev, to := range map[string]string{"to-room": "r", "to-sid": c.SID("/")} {
				if err := em.To(to).Emit(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WaitFor("/", ev, 10*time.Second); err != nil {
					t.Fatalf("%s: %v", ev, err)
				}
			}
			c.Disconnect("/")
			for deadline := time.Now().Add(10 * time.Second); len(server.MemberChannels(srv)) != 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("after the socket left: %q", server.MemberChannels(srv))
				}
			}
		})
	}
}

// shardChannels is the union of PUBSUB SHARDCHANNELS pattern over the
// masters of rc, sorted.
func shardChannels(t *testing.T, rc *testenv.RedisCluster, pattern string) []string {
	t.Helper()
	var out []string
	for _, n := range rc.Nodes {
		got, err := testenv.RedisCommand(n.Addr, "PUBSUB", "SHARDCHANNELS", pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Fields(got)...)
	}
	sort.Strings(out)
	return out
}

// TestShardedModesOnRedisCluster: two Go members on a 3-master Redis
// Cluster, in static and in dynamic-private mode. Static: no SSUBSCRIBE
// per room (PUBSUB SHARDCHANNELS on the masters lists the main channel
// and the response channels only), and room emits from the other node and
// from an emitter still arrive; dynamic-private: a channel per room and
// per socket id, which carries the emits to that socket.
func TestShardedModesOnRedisCluster(t *testing.T) {
	rc := testenv.StartRedisCluster(t, 3, 0)
	for _, mode := range []nodesharded.Mode{nodesharded.Static, nodesharded.DynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			key := fmt.Sprintf("mode-%s-%d", mode, time.Now().UnixNano())
			d := shardedDialect(t, key, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var srvs []*server.Server
			var clients []*servertest.Client
			var bus queue.Bus
			for range 2 {
				b, err := queue.Open(ctx, rc.URL())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				bus = b
				srv := memberOn(t, b, d)
				c := client(t, srv, "/", servertest.Options{})
				if _, err := c.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
					t.Fatal(err)
				}
				srvs, clients = append(srvs, srv), append(clients, c)
			}
			var want []string
			for i, srv := range srvs {
				for _, ch := range modeChannels(key, server.MemberOrigin(srv), clients[i].SID("/"), mode) {
					if !slices.Contains(want, ch) {
						want = append(want, ch)
					}
				}
			}
			sort.Strings(want)
			var got []string
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if got = shardChannels(t, rc, key+"*"); slices.Equal(got, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("PUBSUB SHARDCHANNELS: %q, want %q", got, want)
				}
			}
			if mode == nodesharded.Static && len(want) != 3 {
				t.Fatalf("static mode: %q", want)
			}

			em := emitter.New(bus, d)
			defer em.Close()
			send := map[string]func(event string) error{
				"room emit from the other node": func(ev string) error { return srvs[0].Of("/").To("r").Emit(ev) },
				"to a socket id of the other node": func(ev string) error {
					return srvs[0].Of("/").To(clients[1].SID("/")).Emit(ev)
				},
				"room emit of an emitter": func(ev string) error { return em.To("r").Emit(ctx, ev) },
				"to a socket id, emitter": func(ev string) error { return em.To(clients[1].SID("/")).Emit(ctx, ev) },
			}
			for what, f := range send {
				ev := strings.ReplaceAll(what, " ", "-")
				if err := f(ev); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if _, err := clients[1].WaitFor("/", ev, 10*time.Second); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
		})
	}
}
