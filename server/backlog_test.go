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

// A client whose events pile up behind a slow handler is disconnected once
// its backlog is over the bound, by count or by bytes. It used to grow
// without limit (200,000 events: +150 MB).
func TestEventBacklogBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     server.Option
		payload string
	}{
		{"events", server.WithEventBacklog(10, 0), "x"},
		{"bytes", server.WithEventBacklog(0, 10_000), strings.Repeat("x", 3000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			srv := newServer(t, tc.opt, server.WithLogger(logs.logger()))
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
			if n := runs.Load(); n != 1 {
				t.Errorf("%d handlers started, want 1", n)
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
	srv := server.New() // shut down by the test itself
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
	if n := runs.Load(); n != 1 {
		t.Errorf("%d handlers ran, want 1 (the one running when the socket left)", n)
	}
}
