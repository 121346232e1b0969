package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// logBuffer is a logger's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// blockHandlers gives srv a "slow" event whose handler waits until the
// test ends or release is called; runs counts the handlers started.
func blockHandlers(t *testing.T, srv *server.Server) (runs *atomic.Int32, release func()) {
	ch := make(chan struct{})
	release = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release) // before newServer's Shutdown, registered earlier
	runs = new(atomic.Int32)
	srv.On("/", "slow", func(s *server.Socket, payload string) {
		runs.Add(1)
		<-ch
	})
	return runs, release
}

// A client whose events pile up behind slow handlers is disconnected once
// its backlog is over the bound, by count or by bytes. It used to grow
// without limit (200,000 events: +150 MB). With async handlers (the
// default) at most WithMaxConcurrentHandlers of them run at once, the
// others wait in the backlog; without, one.
func TestEventBacklogBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     server.Option
		payload string
		async   bool
		running int32
	}{
		{"events", server.WithEventBacklog(10, 0), "x", false, 1},
		{"bytes", server.WithEventBacklog(0, 10_000), strings.Repeat("x", 3000), false, 1},
		{"events async", server.WithEventBacklog(10, 0), "x", true, server.DefaultMaxConcurrentHandlers},
		{"bytes async", server.WithEventBacklog(0, 10_000), strings.Repeat("x", 3000), true, server.DefaultMaxConcurrentHandlers},
		{"events async limit", server.WithMaxConcurrentHandlers(3), "x", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			// every case bounds the backlog to 10 events; the bytes cases reach 10,000 bytes first
			srv := newServer(t, server.WithEventBacklog(10, 0), tc.opt, server.WithLogger(logs.logger()),
				server.WithAsyncHandlers(tc.async))
			runs, _ := blockHandlers(t, srv)
			c := client(t, srv, "/", servertest.Options{})
			for range 50 {
				if err := c.Emit("/", "slow", tc.payload); err != nil {
					break // closed by the server
				}
			}
			if !c.WaitDisconnected("/", 10*time.Second) {
				t.Fatal("the client was not disconnected")
			}
			for i := 0; runs.Load() < tc.running && i < 1000; i++ { // the started goroutines get to run
				time.Sleep(5 * time.Millisecond)
			}
			if n := runs.Load(); n != tc.running {
				t.Errorf("%d handlers started, want %d", n, tc.running)
			}
			if !strings.Contains(logs.String(), "event backlog is over its bound") {
				t.Errorf("no log line: %s", logs.String())
			}
		})
	}
}

// The events waiting when a socket disconnects are dropped: their handlers
// do not run for the gone socket (they all used to run, after it left).
func TestEventBacklogDroppedOnDisconnect(t *testing.T) {
	t.Run("async", func(t *testing.T) { testBacklogDropped(t, true, server.DefaultMaxConcurrentHandlers) })
	t.Run("sync", func(t *testing.T) { testBacklogDropped(t, false, 1) })
}

func testBacklogDropped(t *testing.T, async bool, running int32) {
	srv := server.New(server.WithAsyncHandlers(async)) // shut down by the test itself
	runs, release := blockHandlers(t, srv)
	gone := make(chan struct{})
	srv.OnDisconnect("/", func(*server.Socket, string) { close(gone) })
	c := client(t, srv, "/", servertest.Options{})
	for range 50 {
		if err := c.Emit("/", "slow", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Disconnect("/"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("no disconnect")
	}
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil { // waits for every handler goroutine
		t.Fatal(err)
	}
	if n := runs.Load(); n != running {
		t.Errorf("%d handlers ran, want %d (those running when the socket left)", n, running)
	}
}
