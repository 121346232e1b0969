package admin_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/admin"
)

// In a cluster (two servers on a real Redis, python dialect) each server
// is instrumented with its own ServerID, and the admin namespace's
// emits cross the cluster as python-socketio's do: an admin client of
// one server sees the statistics of both, the sockets that connect to
// the other and their rooms, and its operations reach the other's
// sockets.
func TestClusterAdmin(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b [6]byte
	rand.Read(b[:])
	d := python.New(python.Options{Channel: "admin-test-" + hex.EncodeToString(b[:])})
	var urls []string
	var srvs []*server.Server
	for _, id := range []string{"node-a", "node-b"} {
		bus, err := queue.Open(ctx, "redis://"+testenv.RedisAddr+"/0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() }) // after the server's shutdown (cleanups run last first)
		srv, _, url := start(t, admin.Options{ServerID: id, StatsInterval: 100 * time.Millisecond}, nil, server.WithAdapter(bus, d))
		if err := srv.AdapterReady(ctx); err != nil {
			t.Fatal(err)
		}
		urls, srvs = append(urls, url), append(srvs, srv)
	}
	adm := adminClient(t, urls[0])
	for _, id := range []string{"node-a", "node-b"} {
		adm.wait("server_stats", func(v []any) bool { return v[0].(map[string]any)["serverId"] == id })
	}
	c, err := dial(t, urls[1], "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	sid := c.SID("/")
	adm.wait("socket_connected", func(v []any) bool { return v[0].(map[string]any)["id"] == sid })
	adm.c.Emit("/admin", "join", "/", "vip", sid) // the socket is on node-b
	adm.wait("room_joined", args("/", "vip", sid))
	if s := srvs[1].Of("/").Socket(sid); s == nil {
		t.Fatal("the socket is gone")
	}
}
