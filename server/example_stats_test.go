package server_test

import (
	"context"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// Reading the server's counters (package server/metrics exports them to
// Prometheus).
func ExampleServer_Stats() {
	srv := server.New()
	defer srv.Shutdown(context.Background())
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	c, _ := servertest.New(srv, servertest.Options{})
	defer c.Close()
	c.Connect("/", nil)
	c.EmitWithAck("/", 5*time.Second, "join", "news")
	srv.Of("/").To("news").Emit("headline", "hello")

	st := srv.Stats()
	fmt.Println("websocket sessions:", st.WebSocket, "sockets:", st.Sockets, "rooms:", st.Rooms)
	fmt.Println("events in:", st.EventsIn, "broadcasts:", st.Broadcasts, "deliveries:", st.Deliveries)
	fmt.Println("latency observations:", st.LocalLatency.Count)
	// Output:
	// websocket sessions: 1 sockets: 1 rooms: 1
	// events in: 1 broadcasts: 1 deliveries: 1
	// latency observations: 1
}
