package outage

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

// One outage is logged once however often it is reported, its end once
// with how long the bus was away, and counted once; a return without an
// outage is nothing.
func TestOneOutageOneReconnect(t *testing.T) {
	var logs testenv.LogBuffer
	var ctr queue.Counters
	tr := Tracker{Log: logs.Logger(), Bus: "test", URL: "test://host", Counters: &ctr}
	tr.Back()
	if tr.Down() || ctr.Reconnects.Load() != 0 || logs.String() != "" {
		t.Fatalf("a return without an outage: down %v, reconnects %d, logs %q", tr.Down(), ctr.Reconnects.Load(), logs.String())
	}
	if !tr.Lost(errors.New("EOF")) || tr.Lost(errors.New("refused")) || !tr.Down() {
		t.Fatal("the first Lost of an outage must start it, and only the first")
	}
	time.Sleep(20 * time.Millisecond)
	if d := ctr.Snapshot().Disconnected; d < 20*time.Millisecond {
		t.Fatalf("Disconnected %v during a 20 ms outage", d)
	}
	tr.Back()
	tr.Back()
	if d := ctr.Snapshot().Disconnected; d < 20*time.Millisecond || ctr.DownSince.Load() != 0 {
		t.Fatalf("Disconnected %v after a 20 ms outage (DownSince %d)", d, ctr.DownSince.Load())
	}
	out := logs.String()
	if tr.Down() || ctr.Reconnects.Load() != 1 || strings.Count(out, "test: lost the broker") != 1 ||
		strings.Count(out, "test: broker connection back") != 1 || !strings.Contains(out, "away=") || strings.Contains(out, "refused") {
		t.Fatalf("down %v, reconnects %d, logs:\n%s", tr.Down(), ctr.Reconnects.Load(), out)
	}
}
