package redis_test

import (
	"log/slog"
	"os"

	"github.com/siobridge/siobridge/adapter/redis"
)

// A program that wants go-redis's own log lines (every failed dial of its
// connection pool) sees them at debug level on its logger; by default they
// go to slog.Default() at debug level, which drops them.
func ExampleSetClientLogger() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	redis.SetClientLogger(log)
	defer redis.SetClientLogger(nil) // back to slog.Default()
	// Output:
}
