package redis

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
)

// TestClientLogRouted: go-redis's own "failed to dial" lines go to the
// logger of SetClientLogger, at debug level.
func TestClientLogRouted(t *testing.T) {
	var buf testenv.LogBuffer
	SetClientLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer SetClientLogger(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	port := testenv.FreePort(t)
	if b, err := Open(ctx, "redis://127.0.0.1:"+strconv.Itoa(port)+"/0"); err == nil {
		b.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	got := buf.String()
	if !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "failed to dial") || !strings.Contains(got, "lib=go-redis") {
		t.Fatalf("client log: %q", got)
	}
}
