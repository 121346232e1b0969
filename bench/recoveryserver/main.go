// Command recoveryserver is the Go side of the recovery-cost benchmark
// (bench/run-recovery.sh), identical to bench/node/sio-recovery-server.js
// on socket.io 4.8: a single node with connection-state recovery
// (server.WithConnectionStateRecovery, as sioserver --recovery), no broker,
// WebSocket transport. Its events, acknowledged when the client asks:
//
//   - "join" ROOM: the socket joins ROOM;
//   - "burst" N: the server emits "ev" i for i in 0..N-1 to room "r" and
//     acknowledges with N once they are all queued;
//   - when a socket disconnects, the server emits "gone" (its id, the
//     reason) to room "ctl" (the benchmark's control client).
//
// With -streams URL it is a node of a node-streams cluster on that Redis
// (@socket.io/redis-streams-adapter's protocol: broadcasts and their
// offsets through the stream, sessions in Redis, as
// sioserver --dialect node-streams --recovery runs), the counterpart of
// sio-recovery-server.js with the streams adapter.
//
// Usage:
//
//	go run ./bench/recoveryserver -addr 127.0.0.1:3201 [-recovery 2m] [-streams redis://127.0.0.1:6379/0 -key K]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/adapter/redis/streamstore"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/server"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	recovery := flag.Duration("recovery", 2*time.Minute, "maxDisconnection of connection-state recovery (Node's default: 2m)")
	streams := flag.String("streams", "", "Redis URL: a node-streams cluster node (recovery through the stream) instead of one node in memory")
	key := flag.String("key", "socket.io", "with -streams: the stream name and channel prefix")
	flag.Parse()
	opts := []server.Option{server.WithTransports("websocket"), server.WithConnectionStateRecovery(*recovery, true)}
	if *streams != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		bus, err := redis.Open(ctx, *streams)
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		defer bus.Close()
		d, err := nodestreams.New(nodestreams.Options{Key: *key, StreamName: *key})
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, server.WithAdapter(bus, d),
			server.WithRecoveryStore(streamstore.New(bus.Client(), d, streamstore.Options{MaxAge: *recovery})))
	}
	srv := server.New(opts...)
	ns := srv.Of("/")
	ns.On("join", func(s *server.Socket, room string) { s.Join(room) })
	r := ns.To("r")
	ns.On("burst", func(s *server.Socket, n int) (int, error) {
		for i := range n {
			if err := r.Emit("ev", i); err != nil {
				return i, fmt.Errorf("burst: event %d: %w", i, err)
			}
		}
		return n, nil
	})
	ctl := ns.To("ctl")
	ns.OnDisconnect(func(s *server.Socket, reason string) {
		if err := ctl.Emit("gone", s.ID(), reason); err != nil {
			log.Printf("gone %s: %v", s.ID(), err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	ln, err := srv.Listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("recovery bench server on %s", *addr)
	log.Fatal(server.NewHTTPServer(*addr, mux).Serve(ln))
}
