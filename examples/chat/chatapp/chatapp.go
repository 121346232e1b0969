// Package chatapp is the chat demo of examples/chat: a page served by
// siobridge's server with the official socket.io client, where users join a
// room and see each other's messages.
package chatapp

import (
	_ "embed"
	"net/http"
	"strings"
	"time"

	"github.com/siobridge/siobridge/server"
)

//go:embed index.html
var page []byte

// New returns the chat's Socket.IO server and an HTTP handler serving the
// page (/), the socket.io client (/socket.io.min.js, read from clientJS, a
// file that npm installs) and Socket.IO (/socket.io/).
func New(clientJS string) (*server.Server, http.Handler) {
	// a user's messages are relayed in the order they were typed
	srv := server.New(server.WithPing(5*time.Second, 5*time.Second), server.WithAsyncHandlers(false))
	srv.On("/", "join", func(s *server.Socket, name, room string) string {
		name, room = strings.TrimSpace(name), strings.TrimSpace(room)
		if name == "" || room == "" {
			return "a name and a room are needed"
		}
		s.Set("name", name)
		s.Set("room", room)
		s.Join(room)
		srv.Of("/").To(room).Emit("status", name+" has entered the room.")
		return "ok"
	})
	srv.On("/", "text", func(s *server.Socket, text string) {
		name, _ := s.Get("name")
		room, _ := s.Get("room")
		if r, ok := room.(string); ok && text != "" {
			srv.Of("/").To(r).Emit("message", name, text)
		}
	})
	srv.OnDisconnect("/", func(s *server.Socket, reason string) {
		if room, ok := s.Get("room"); ok {
			name, _ := s.Get("name")
			srv.Of("/").To(room.(string)).Emit("status", name.(string)+" has left the room.")
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.HandleFunc("/socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, clientJS)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return srv, mux
}
