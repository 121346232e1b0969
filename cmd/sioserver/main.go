// Command sioserver serves Socket.IO and, given a broker, joins a cluster
// of Socket.IO servers: other sioserver processes, Go programs using
// server.WithAdapter, Flask-SocketIO / python-socketio servers (python,
// python-pickle dialects) or Node socket.io servers with
// @socket.io/redis-adapter (node dialect).
//
//	sioserver [--addr HOST:PORT] [--url URL] [--dialect NAME] [--channel NAME]
//	          [--namespace NS]... [--cors ORIGIN]... [--static DIR]
//	          [--allow-client-rooms] [--allow-client-publish]
//
// Run sioserver -h for the flags. It logs with log/slog on stderr and
// exits 0 on SIGINT or SIGTERM once its clients are closed, 1 when it
// cannot listen or reach the broker, 2 for bad flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
