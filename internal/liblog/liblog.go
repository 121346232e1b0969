// Package liblog routes the log lines of the broker client libraries
// (go-redis, amqp091-go) into log/slog at debug level: those libraries log
// on their own (go-redis prints every failed dial on stderr), while the
// buses already return the same failures as errors, so a program that
// reports its errors would print each failure several times.
package liblog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// Forwarder sends one library's log lines to a slog.Logger at debug level.
// The zero value is not usable; use New. It is safe for concurrent use.
type Forwarder struct {
	lib string
	l   atomic.Pointer[slog.Logger] // nil: slog.Default() at the time of the call
}

// New returns a forwarder for library lib (its name goes in the "lib"
// attribute of every record), logging to slog.Default().
func New(lib string) *Forwarder { return &Forwarder{lib: lib} }

// Set makes f log to l; nil means slog.Default() (read at each call).
func (f *Forwarder) Set(l *slog.Logger) { f.l.Store(l) }

// Printf logs one line of the library at debug level; nothing is formatted
// when the logger does not take debug records.
func (f *Forwarder) Printf(ctx context.Context, format string, v ...any) {
	l := f.l.Load()
	if l == nil {
		l = slog.Default()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "lib", f.lib)
}
