package redis

import (
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	"github.com/siobridge/siobridge/internal/liblog"
)

// clientLog receives go-redis's own log lines (its connection pool prints
// every failed dial): they repeat failures that the bus returns as errors.
var clientLog = liblog.New("go-redis")

func init() { goredis.SetLogger(clientLog) }

// SetClientLogger sends the log lines of the go-redis client library to l
// at debug level. Importing this package already sends them to
// slog.Default() at debug level instead of go-redis's default stderr
// logger, so that one failure reaches the program once, as the error the
// bus returns. go-redis has one logger per process: this setting applies
// to every Bus, and to other go-redis clients of the program; nil restores
// slog.Default().
func SetClientLogger(l *slog.Logger) { clientLog.Set(l) }
