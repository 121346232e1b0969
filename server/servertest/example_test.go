package servertest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// A server handler that asks the client and waits for its answer
// (Socket.EmitWithAck) is tested with a client whose On handler gives
// that answer, here over HTTP long-polling.
func ExampleClient_On() {
	srv := server.New()
	defer srv.Shutdown(context.Background())
	srv.On("/", "greet", func(s *server.Socket) (string, error) {
		r, err := s.EmitWithAckTimeout(5*time.Second, "name?")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("hello, %v", r[0]), nil
	})

	c, err := servertest.New(srv, servertest.Options{Transport: servertest.Polling})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.On("/", "name?", func(args []any) []any { return []any{"Ann"} })
	if err := c.Connect("/", nil); err != nil {
		panic(err)
	}
	r, err := c.EmitWithAck("/", 5*time.Second, "greet")
	fmt.Println(r, err)
	// Output: [hello, Ann] <nil>
}
