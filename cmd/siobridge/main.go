// Command siobridge relays every broadcast and room operation between two
// Socket.IO clusters that speak different dialects or use different
// brokers, e.g. Flask-SocketIO workers publishing pickle on Redis and a
// Node or Go cluster on NATS, so that an application can be migrated node
// by node.
//
//	siobridge --from URL --from-dialect D [--from-channel C] --to URL --to-dialect D [--to-channel C] [--to-sharded-mode M] [flags]
//
// Both directions are relayed at once (--one-way: from -> to only). What
// the bridge publishes on one side is remembered (by digest, bounded) and
// dropped when it comes back, so nothing loops. Malformed messages are
// counted and dropped; operations the target dialect cannot express are
// logged once per kind. Emits, join/leave, disconnect and close-room are
// relayed; acknowledgements only between python dialects. Counters are
// logged every --stats interval and at exit.
//
// Exit status: 0 after SIGINT/SIGTERM, 1 broker error, 2 bad flags.
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
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
