package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// A client cut off comes back with its pid and last offset (as
// socket.io-client does by itself) and gets its id and missed events.
func ExampleWithConnectionStateRecovery() {
	srv := server.New(server.WithConnectionStateRecovery(2*time.Minute, true))
	defer srv.Shutdown(context.Background())
	left := make(chan struct{}, 1)
	srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error {
		if !s.Recovered() {
			s.Join("news")
		}
		return nil
	})
	srv.OnDisconnect("/", func(*server.Socket, string) { left <- struct{}{} })

	c, _ := servertest.New(srv, servertest.Options{})
	defer c.Close()
	c.Connect("/", nil)
	sid, pid := c.SID("/"), c.PID("/")
	srv.Of("/").To("news").Emit("headline", "first")
	seen, _ := c.WaitFor("/", "headline", 5*time.Second)
	c.Drop() // the network goes
	<-left
	srv.Of("/").To("news").Emit("headline", "missed")

	back, _ := c.Redial(servertest.Options{})
	defer back.Close()
	back.Connect("/", map[string]string{"pid": pid, "offset": servertest.LastOffset(seen)})
	missed, _ := back.WaitFor("/", "headline", 5*time.Second)
	fmt.Println(back.SID("/") == sid, missed[0].Args[0])
	// Output: true missed
}
