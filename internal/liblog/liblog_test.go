package liblog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestForwarder(t *testing.T) {
	f := New("somelib")
	var buf bytes.Buffer
	f.Set(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	f.Printf(context.Background(), "failed to dial %s\n", "x:1")
	got := buf.String()
	if !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, `msg="failed to dial x:1"`) || !strings.Contains(got, "lib=somelib") {
		t.Fatalf("record %q", got)
	}
	buf.Reset()
	f.Set(slog.New(slog.NewTextHandler(&buf, nil))) // info and above
	f.Printf(context.Background(), "dropped")
	if buf.Len() != 0 {
		t.Fatalf("debug line logged by an info logger: %q", buf.String())
	}
}
