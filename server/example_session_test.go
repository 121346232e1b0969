package server_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// An HTTP login route stores the user in a server-side session named by
// the "sess" cookie; each Socket.IO connection starts with a copy of it
// (Flask-SocketIO's manage_session=True), shared by the connection's
// namespaces. Add server.WithManageSession(false) to read and write the
// store instead (manage_session=False).
func ExampleWithSessionStore() {
	ctx := context.Background()
	store := server.NewMemorySessionStore()
	store.Set(ctx, "abc123", "user", "ann") // what the login route does

	srv := server.New(server.WithSessionStore(store, func(r *http.Request) string {
		if c, err := r.Cookie("sess"); err == nil {
			return c.Value
		}
		return ""
	}))
	defer srv.Shutdown(ctx)
	srv.On("/", "join", func(s *server.Socket, room string) { s.Set("room", room) })
	srv.On("/chat", "whoami", func(s *server.Socket) []any {
		user, _ := s.Get("user")
		room, _ := s.Get("room")
		return []any{user, room}
	})

	client, _ := servertest.New(srv, servertest.Options{Header: http.Header{"Cookie": {"sess=abc123"}}})
	defer client.Close()
	client.Connect("/", nil)
	client.Connect("/chat", nil)
	client.EmitWithAck("/", 5*time.Second, "join", "lobby")
	got, _ := client.EmitWithAck("/chat", 5*time.Second, "whoami")
	fmt.Println(got...)
	// Output: [ann lobby]
}
