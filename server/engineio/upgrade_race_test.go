package engineio

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestUpgradeDeliversOneMessageAtATime: a polling POST that began before
// the upgrade's "5" is still delivering when the WebSocket's first
// messages arrive. Messages of one session must still reach OnMessage one
// at a time, in order (the race detector reported the Socket.IO decoder
// and client state touched from both transports at once).
func TestUpgradeDeliversOneMessageAtATime(t *testing.T) {
	var (
		inflight, overlap atomic.Int32
		order             []string // unsynchronized on purpose: -race sees concurrent delivery
		slowIn            = make(chan struct{})
		fastIn            = make(chan struct{}, 1)
		done              = make(chan struct{}, 2)
	)
	base, _ := serverWith(t, Options{PingInterval: time.Minute}, func(c *Conn) {
		c.OnMessage(func(d []byte, _ bool) {
			if inflight.Add(1) > 1 {
				overlap.Add(1)
			}
			order = append(order, string(d))
			switch string(d) {
			case "slow":
				close(slowIn)
				// stay in the handler until the WebSocket's message is
				// delivered, or long enough for it to have arrived
				select {
				case <-fastIn:
				case <-time.After(time.Second):
				}
			case "fast":
				fastIn <- struct{}{}
			}
			inflight.Add(-1)
			done <- struct{}{}
		})
	})
	sid := openPolling(t, base)
	c := dialRaw(t, base, "EIO=4&transport=websocket&sid="+sid)
	c.text("2probe")
	if _, p := c.read(); string(p) != "3probe" {
		t.Fatalf("probe answer %q", p)
	}
	posted := make(chan int, 1)
	go func() {
		code, _ := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "4slow")
		posted <- code
	}()
	<-slowIn // the POST is delivering
	c.text("5")
	c.text("4fast")
	for range 2 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a message was not delivered")
		}
	}
	if code := <-posted; code != 200 {
		t.Fatalf("POST: %d", code)
	}
	if n := overlap.Load(); n != 0 {
		t.Fatalf("%d messages delivered while another was being delivered", n)
	}
	if len(order) != 2 || order[0] != "slow" || order[1] != "fast" {
		t.Fatalf("delivery order %q, want [slow fast]", order)
	}
}
