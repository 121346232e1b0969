// Package brokerflags is what the commands (sioemit, sioserver) share
// about the broker flags --url and --dialect: the buses every URL form can
// name (the dialect names map to dialects in package dialectname).
package brokerflags

import (
	"context"

	_ "github.com/siobridge/siobridge/adapter/amqp"  // amqp://, amqps://
	_ "github.com/siobridge/siobridge/adapter/nats"  // nats://, tls://
	_ "github.com/siobridge/siobridge/adapter/redis" // redis://, rediss://, redis+sentinel://, unix://
	"github.com/siobridge/siobridge/queue"
)

// DialectNames lists the values of --dialect, for help texts.
const DialectNames = "python | python-pickle | node | node-sharded | node-streams"

// Open connects to the broker that url names, with every bus of the
// project registered (queue.Open).
func Open(ctx context.Context, url string) (queue.Bus, error) {
	return queue.Open(ctx, url)
}
