package jetstream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/adapter/nats/jetstream"
	"github.com/siobridge/siobridge/internal/testenv"
)

// waitUntil polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJetStreamUnavailable: the NATS server comes back without JetStream
// (a store that cannot be read, a JetStream cluster without a leader):
// the node says it cannot follow the stream and keeps trying, its emits
// fail, and once JetStream is back (same store directory) it follows the
// stream again by itself; its Shutdown returns meanwhile.
func TestJetStreamUnavailable(t *testing.T) {
	dir := t.TempDir()
	p := testenv.StartNATS(t, "-js", "-sd", dir)
	a := newNode(t, "nats://"+p.Addr, fmt.Sprintf("jsdown-%d", time.Now().UnixNano()), jetstream.Options{})
	c, _ := a.client(t, nil)
	p.Stop()
	waitUntil(t, "the bus disconnected", func() bool { return !a.bus.Connected() })
	p.StartNATSWith() // no JetStream
	waitUntil(t, "the bus reconnected", a.bus.Connected)
	waitUntil(t, "a warning that the stream cannot be followed", func() bool {
		return strings.Contains(a.logs.String(), "following the packet log")
	})
	if err := a.srv.Of("/").To("r").Emit("ev", "lost"); err == nil {
		t.Fatal("an emit without JetStream returned no error")
	}

	p.Stop()
	p.StartNATSWith("-js", "-sd", dir)
	waitUntil(t, "an emit accepted again", func() bool { return a.srv.Of("/").To("r").Emit("ev", "back") == nil })
	a.srv.Of("/").To("r").Emit("end")
	if got, _ := values(t, c); len(got) != 1 || got[0] != "back" {
		t.Fatalf("after JetStream came back: %v", got)
	}

	// Without JetStream again, Shutdown does not wait for it.
	warned := strings.Count(a.logs.String(), "following the packet log")
	p.Stop()
	p.StartNATSWith()
	waitUntil(t, "the warning again", func() bool {
		return strings.Count(a.logs.String(), "following the packet log") > warned
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
