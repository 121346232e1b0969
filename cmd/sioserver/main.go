// Command sioserver is a ready Socket.IO push gateway. It serves
// Socket.IO at /socket.io/, a page at / that joins rooms and lists the
// events it receives, the socket.io browser client at
// /socket.io/socket.io.min.js, and GET /healthz.
//
// Without --url it starts an embedded NATS server on 127.0.0.1:4222 (or
// uses the NATS server already answering there) as its broker, so that a
// worker or sioemit reaches its clients:
//
//	sioserver &
//	sioemit --url nats://127.0.0.1:4222 --to news headline '"hello"'
//
// With --url it joins a cluster of Socket.IO servers on that broker:
// other sioserver processes, Go programs using server.WithAdapter,
// Flask-SocketIO / python-socketio servers (python, python-pickle
// dialects) or Node socket.io servers with @socket.io/redis-adapter (node,
// node-sharded dialects) or @socket.io/redis-streams-adapter (node-streams
// dialect). --no-broker runs it alone.
//
//	sioserver [--addr HOST:PORT] [--url URL | --embedded-nats HOST:PORT | --no-broker]
//	          [--dialect NAME [--sharded-mode MODE]] [--channel NAME] [--namespace NS]... [--cors ORIGIN]...
//	          [--static DIR] [--allow-client-rooms] [--allow-client-publish]
//	          [--shutdown-timeout DUR] [--log-level LEVEL] [--recovery DUR] [--version]
//	          [--auth-secret SECRET | --auth-jwks FILE [--auth-jwks-interval DUR]]
//	          [--auth-disconnect-expired=false] [--auth-expiry-warning DUR]
//
// Every flag is also read from SIOSERVER_<NAME>. Run sioserver -h for the
// flags. It logs with log/slog on stderr, prints the page URL and a
// sioemit command to try on stdout, and exits 0 on SIGINT or SIGTERM once
// its clients are closed (within --shutdown-timeout), 1 when it cannot
// listen or reach the broker, 2 for bad flags or an embedded address held
// by a program that is not a NATS server. With --auth-jwks, SIGHUP
// reloads the JWKS file.
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
