package engineio

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// A second Shutdown returns instead of panicking (it closed the flush
// workers' channel again: "close of closed channel").
func TestShutdownTwice(t *testing.T) {
	base, s := serverWith(t, Options{PingInterval: time.Minute}, func(c *Conn) {})
	dialRaw(t, base, "EIO=4&transport=websocket") // starts the poller and flush workers
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Shutdown %d: %v", i+1, err)
		}
	}
}

// A session whose handshake is under way when Shutdown begins is closed
// too, and its close callback, set by OnConnection, is told. Shutdown used
// to find the session before OnConnection had set its callbacks: it read
// them while they were written (a data race) and the session ended
// without telling its owner.
func TestShutdownDuringHandshake(t *testing.T) {
	for _, transport := range []string{"polling", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			entered, proceed := make(chan struct{}), make(chan struct{})
			closed := make(chan string, 1)
			base, s := serverWith(t, Options{PingInterval: time.Minute}, func(c *Conn) {
				close(entered)
				<-proceed
				c.OnMessage(func([]byte, bool) {})
				c.OnClose(func(reason string) { closed <- reason })
			})
			go func() {
				if transport == "websocket" {
					dialRaw(t, base, "EIO=4&transport=websocket")
					return
				}
				resp, err := http.Get(base + "?EIO=4&transport=polling")
				if err == nil {
					resp.Body.Close()
				}
			}()
			<-entered
			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				shut <- s.Shutdown(ctx)
			}()
			waitFor(t, "Shutdown to begin", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.closing })
			close(proceed)
			select {
			case reason := <-closed:
				if reason != "server shutting down" {
					t.Errorf("closed with %q", reason)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the session's close callback was never told")
			}
			if err := <-shut; err != nil {
				t.Fatal(err)
			}
		})
	}
}
