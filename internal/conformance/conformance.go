// Package conformance builds the reference servers of the official
// engine.io-protocol and socket.io-protocol test suites on siobridge's
// server, for examples/conformance and the Go ports of the suites.
package conformance

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
)

// Settings asserted by both suites.
const (
	PingInterval = 300 * time.Millisecond
	PingTimeout  = 200 * time.Millisecond
	MaxPayload   = 1_000_000
)

// EngineIO returns the engine.io suite's echo server: every message is
// sent back as it came.
func EngineIO() *engineio.Server {
	s := engineio.NewServer(engineio.Options{PingInterval: PingInterval, PingTimeout: PingTimeout, MaxPayload: MaxPayload,
		CORS: &engineio.CORS{Origins: []string{"*"}}})
	s.OnConnection(func(c *engineio.Conn) {
		c.OnMessage(func(data []byte, binary bool) { c.Send(append([]byte(nil), data...), binary) })
	})
	return s
}

// SocketIO returns the socket.io suite's reference server: namespaces "/"
// and "/custom" emit "auth" with the handshake auth on connect; "message"
// is echoed as "message-back" and "message-with-ack" is acknowledged with
// its arguments; other namespaces are refused.
func SocketIO() *server.Server {
	srv := server.New(server.WithPing(PingInterval, PingTimeout), server.WithMaxPayload(MaxPayload),
		server.WithConnectTimeout(time.Second), server.WithCORS(false, "*"))
	for _, ns := range []string{"/", "/custom"} {
		srv.OnConnect(ns, func(s *server.Socket, auth json.RawMessage) error {
			return s.Emit("auth", auth)
		})
	}
	srv.On("/", "message", func(s *server.Socket, args ...any) {
		s.Emit("message-back", args...)
	})
	srv.On("/", "message-with-ack", func(s *server.Socket, args ...any) server.Args {
		return server.Args(args)
	})
	return srv
}

// Handler serves both: /engine.io/ and /socket.io/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", EngineIO())
	mux.Handle("/socket.io/", SocketIO())
	return mux
}
