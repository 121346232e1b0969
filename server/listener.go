package server

import (
	"log/slog"
	"net"

	"github.com/siobridge/siobridge/internal/listen"
)

// Listen listens on the TCP address addr, for an http.Server that serves
// s (Run uses it): a client that arrives while the process is out of file
// descriptors (RLIMIT_NOFILE) is refused at once, with "503 Service
// Unavailable" and a log line (at most one every few seconds, to the
// server's logger, or slog.Default when WithLogger was not given), instead
// of waiting unanswered in the kernel's backlog while net/http retries
// Accept. Accepted connections get no TCP keep-alive: the Engine.IO
// heartbeat finds dead peers.
func (s *Server) Listen(addr string) (net.Listener, error) {
	log := s.log
	if log.Handler() == slog.DiscardHandler {
		log = slog.Default()
	}
	return listen.TCP(addr, log)
}
