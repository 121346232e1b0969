package server_test

import (
	"context"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// Two server processes share their clients through a queue: a broadcast
// made on one reaches the clients of both. In production each process
// opens its own bus with queue.Open(ctx, "redis://...") (or amqp://,
// nats://); one in-memory bus stands in for the broker here.
func ExampleWithAdapter() {
	ctx := context.Background()
	bus := memory.New()
	defer bus.Close()
	d := python.New(python.Options{Channel: "my-app"})

	var nodes []*server.Server
	var clients []*servertest.Client
	for range 2 {
		srv := server.New(server.WithAdapter(bus, d)) // each node takes its own host id
		defer srv.Shutdown(ctx)
		srv.On("/", "join", func(s *server.Socket, room string) bool { s.Join(room); return true })
		if err := srv.AdapterReady(ctx); err != nil {
			panic(err)
		}
		c, _ := servertest.New(srv, servertest.Options{})
		defer c.Close()
		c.Connect("/", nil)
		c.EmitWithAck("/", 5*time.Second, "join", "lobby")
		nodes, clients = append(nodes, srv), append(clients, c)
	}

	nodes[0].Of("/").To("lobby").Emit("news", "hello")
	for i, c := range clients {
		got, _ := c.WaitFor("/", "news", 5*time.Second)
		fmt.Println("client of node", i, "got", got[0].Event, got[0].Args)
	}
	// Output:
	// client of node 0 got news [hello]
	// client of node 1 got news [hello]
}
