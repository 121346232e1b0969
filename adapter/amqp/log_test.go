package amqp

import (
	"log/slog"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/siobridge/siobridge/internal/testenv"
)

// TestClientLogRouted: amqp091-go's own log lines go to the logger of
// SetClientLogger, at debug level.
func TestClientLogRouted(t *testing.T) {
	var buf testenv.LogBuffer
	SetClientLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer SetClientLogger(nil)
	amqp.Logger.Printf("Channel %d closed unexpectedly: %v", 3, "boom")
	got := buf.String()
	if !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "Channel 3 closed unexpectedly: boom") || !strings.Contains(got, "lib=amqp091-go") {
		t.Fatalf("client log: %q", got)
	}
}
