package compat_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
)

// TestSocketIOClientRecovery: a socket.io-client 4.8.1 cut off (its
// Engine.IO transport closed) while 1,000 events go to its room comes
// back to a Go server with connection state recovery: socket.recovered is
// true, its id is the same, and it gets all 1,000 events, in order, none
// twice.
func TestSocketIOClientRecovery(t *testing.T) {
	needNode(t)
	srv := server.New(server.WithConnectionStateRecovery(time.Minute, true))
	gone := make(chan string, 4)
	srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error {
		if !s.Recovered() {
			s.Join("r")
		}
		return nil
	})
	srv.OnDisconnect("/", func(s *server.Socket, reason string) { gone <- reason })
	ln := listen(t, "127.0.0.1:0")
	serve(t, srv, ln)
	c := startPeerWith(t, "recovery client", true, "node", "node/recovery-client.js", "http://"+ln.Addr().String())
	first := c.waitFor("connect", 10*time.Second, isType("connect"))
	if first["recovered"] != false {
		t.Fatalf("first connect %v", first)
	}
	const before, missed = 10, 1000
	r := srv.Of("/").To("r")
	for i := range before {
		r.Emit("ev", i)
	}
	c.waitFor("the events before the cut", 10*time.Second, isEventWith("ev", float64(before-1)))
	c.send(map[string]any{"cut": true})
	select {
	case reason := <-gone:
		if reason != "transport close" {
			t.Fatalf("disconnect reason %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see the client go")
	}
	for i := range missed { // while the client is away (it comes back after 1 s)
		r.Emit("ev", before+i)
	}
	back := c.waitFor("the reconnection", 20*time.Second, func(l map[string]any) bool {
		return l["type"] == "connect" && l["recovered"] == true
	})
	if back["sid"] != first["sid"] {
		t.Fatalf("recovered as %v, was %v", back["sid"], first["sid"])
	}
	r.Emit("end")
	end := checkRecovered(t, c, first, 0, before+missed)
	t.Logf("%d missed events replayed; \"end\" arrived %v ms after the recovered connect", missed, fmt.Sprint(end["ms"]))
}

// checkRecovered waits for "end" on the recovery client c, whose first
// connection was first, and checks its "ev" events from the from-th on:
// 0, 1, ... n-1, in order, each once, with an offset; and that it never
// connected with another id. It returns the "end" line.
func checkRecovered(t *testing.T, c *peer, first map[string]any, from, n int) map[string]any {
	t.Helper()
	end := c.waitFor("end", 20*time.Second, isEvent("end"))
	evs := c.events("ev")[from:]
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	for i, e := range evs {
		if args := e["args"].([]any); len(args) != 1 || args[0] != float64(i) {
			t.Fatalf("event %d: %v", i, e)
		}
		if o, _ := e["offset"].(string); o == "" {
			t.Fatalf("event %d without an offset: %v", i, e)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if l["type"] == "connect" && l["sid"] != first["sid"] {
			t.Fatalf("a fresh connection: %v", l)
		}
	}
	return end
}
