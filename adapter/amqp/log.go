package amqp

import (
	"context"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/siobridge/siobridge/internal/liblog"
)

// clientLog receives amqp091-go's own log lines (channel recovery and
// protocol errors).
var clientLog = liblog.New("amqp091-go")

type amqpLogger struct{}

func (amqpLogger) Printf(format string, v ...any) {
	clientLog.Printf(context.Background(), format, v...)
}

// amqp.SetLogger is not safe to call concurrently with the library's
// use of its logger: it is set once, here, and SetClientLogger changes
// where the forwarder writes.
func init() { amqp.SetLogger(amqpLogger{}) }

// SetClientLogger sends the log lines of the amqp091-go client library to
// l at debug level. Importing this package already sends them to
// slog.Default() at debug level. amqp091-go has one logger per process:
// this setting applies to every Bus; nil restores slog.Default().
func SetClientLogger(l *slog.Logger) { clientLog.Set(l) }
