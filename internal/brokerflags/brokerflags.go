// Package brokerflags is what the commands (sioemit, sioserver) share
// about the broker flags --url and --dialect: the buses every URL form can
// name (the dialect names map to dialects in package dialectname).
package brokerflags

import (
	"context"
	"log/slog"
	"net/url"
	"strings"

	amqpbus "github.com/siobridge/siobridge/adapter/amqp"   // amqp://, amqps://
	natsbus "github.com/siobridge/siobridge/adapter/nats"   // nats://, tls://
	redisbus "github.com/siobridge/siobridge/adapter/redis" // redis://, rediss://, redis+sentinel://, redis+cluster://, unix://
	"github.com/siobridge/siobridge/queue"
)

// DialectNames lists the values of --dialect, for help texts.
const DialectNames = "python | python-pickle | node | node-sharded | node-streams"

// Open connects to the broker that url names, with every bus of the
// project registered (queue.Open).
func Open(ctx context.Context, url string) (queue.Bus, error) {
	return queue.Open(ctx, url)
}

// OpenLogged is Open with the bus's own events sent to log: a lost and
// regained broker, and a Redis failover followed (subscriptions moved to
// a new master).
func OpenLogged(ctx context.Context, rawURL string, log *slog.Logger) (queue.Bus, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return queue.Open(ctx, rawURL) // its error
	}
	// the URL as the registry hands it to the adapters
	switch s := u.String(); strings.ToLower(u.Scheme) {
	case "redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "rediss+cluster":
		return bus(redisbus.Open(ctx, s, redisbus.WithLogger(log)))
	case "amqp", "amqps":
		return bus(amqpbus.Open(ctx, s, amqpbus.WithLogger(log)))
	case "nats", "tls":
		return bus(natsbus.Open(ctx, s, natsbus.WithLogger(log)))
	}
	return queue.Open(ctx, rawURL)
}

// bus returns b as a queue.Bus, nil (not a typed nil) on error.
func bus[B queue.Bus](b B, err error) (queue.Bus, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}
