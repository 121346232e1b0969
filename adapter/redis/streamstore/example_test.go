package streamstore_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/adapter/redis/streamstore"
	"github.com/siobridge/siobridge/dialect/nodestreams"
	"github.com/siobridge/siobridge/server"
)

// A Go node of a cluster of socket.io servers with
// @socket.io/redis-streams-adapter and connectionStateRecovery: a client
// cut off from any node, Go or Node, recovers on this one and the other
// way round.
func Example() {
	ctx := context.Background()
	bus, err := redis.Open(ctx, "redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	d, err := nodestreams.New(nodestreams.Options{}) // streamName and channelPrefix "socket.io", as Node's
	if err != nil {
		log.Fatal(err)
	}
	const window = 2 * time.Minute // maxDisconnectionDuration
	srv := server.New(server.WithAdapter(bus, d),
		server.WithConnectionStateRecovery(window, true),
		server.WithRecoveryStore(streamstore.New(bus.Client(), d, streamstore.Options{MaxAge: window})))
	http.Handle("/socket.io/", srv)
}
