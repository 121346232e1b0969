package server_test

import (
	"context"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/queue/memory"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// A worker emits through the queue; the server delivers to its client. In
// production the bus is queue.Open(ctx, "redis://...") (or amqp://,
// nats://) in both processes; the in-memory bus stands in for it here.
func ExampleServer_ConsumeQueue() {
	ctx := context.Background()
	bus := memory.New()
	defer bus.Close()

	// the server process
	srv := server.New()
	defer srv.Shutdown(ctx)
	d := python.New(python.Options{Channel: "my-app"})
	sub, err := srv.ConsumeQueue(ctx, bus, d, server.QueueSubscription(d, "/"))
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	client, _ := servertest.New(srv, servertest.Options{})
	defer client.Close()
	client.Connect("/", nil)

	// the worker process: its own dialect instance (its own origin)
	em := emitter.New(bus, python.New(python.Options{Channel: "my-app"}))
	defer em.Close()
	em.To(client.SID("/")).Emit(ctx, "report", "ready", 42)

	got, _ := client.WaitFor("/", "report", 5*time.Second)
	fmt.Println(got[0].Event, got[0].Args)
	// Output: report [ready 42]
}
