// Package brokerflags is what the commands (sioemit, sioserver) share
// about the broker flags --url, --dialect and --channel: the buses every
// URL form can name, and the mapping of a dialect name and channel to a
// dialect.
package brokerflags

import (
	"context"
	"fmt"

	_ "github.com/siobridge/siobridge/adapter/amqp"  // amqp://, amqps://
	_ "github.com/siobridge/siobridge/adapter/nats"  // nats://, tls://
	_ "github.com/siobridge/siobridge/adapter/redis" // redis://, rediss://, redis+sentinel://, unix://
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/queue"
)

// DialectNames lists the values of --dialect, for help texts.
const DialectNames = "python | python-pickle | node"

// Dialect maps --dialect and --channel to a dialect. An empty channel
// keeps the dialect's default (flask-socketio for the python dialects,
// socket.io for node).
func Dialect(name, channel string) (dialect.Dialect, error) {
	switch name {
	case "python":
		return python.New(python.Options{Channel: channel}), nil
	case "python-pickle":
		return python.NewPickle(python.Options{Channel: channel}), nil
	case "node":
		return node.New(node.Options{Key: channel}), nil
	}
	return nil, fmt.Errorf("unknown dialect %q (want python, python-pickle or node)", name)
}

// Open connects to the broker that url names, with every bus of the
// project registered (queue.Open).
func Open(ctx context.Context, url string) (queue.Bus, error) {
	return queue.Open(ctx, url)
}
