package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// refusingStore is a RecoveryStore that keeps nothing (a full or
// unreachable store).
type refusingStore struct{}

var errRefused = errors.New("store full")

func (refusingStore) Save(context.Context, server.RecoverySession) error { return errRefused }
func (refusingStore) Take(context.Context, string) (server.RecoverySession, bool, error) {
	return server.RecoverySession{}, false, nil
}

// TestRecoverySessionNotSaved: a store that refuses a session neither
// blocks nor fails the disconnect; the session is counted as not saved
// and the client comes back to a fresh one.
func TestRecoverySessionNotSaved(t *testing.T) {
	rs := newRecoveryServer(t, server.WithRecoveryStore(refusingStore{}))
	c := newClient(t, rs.srv)
	rs.connect(t, c, nil)
	rs.srv.Of("/").To("r").Emit("end")
	_, evs := received(t, c)
	pid, offset := c.PID("/"), servertest.LastOffset(evs)
	c.Drop()
	if r := rs.waitGone(t); r != "transport close" {
		t.Fatalf("reason %q", r)
	}
	if st := rs.srv.Stats().Recovery; st != (server.RecoveryStats{NotSaved: 1}) {
		t.Fatalf("Stats.Recovery %+v", st)
	}
	c2 := redial(t, c)
	if rs.connect(t, c2, map[string]any{"pid": pid, "offset": offset}) || c2.PID("/") == pid {
		t.Fatal("recovered a session the store refused")
	}
}

// stuckLog is a RecoveryLog whose Follow ignores its context until
// release is closed.
type stuckLog struct {
	refusingStore
	following chan struct{}
	release   chan struct{}
}

func (l *stuckLog) Append(context.Context, server.LoggedPacket) error { return nil }
func (l *stuckLog) Follow(ctx context.Context, deliver func(server.LoggedPacket)) error {
	close(l.following)
	<-l.release
	return ctx.Err()
}
func (l *stuckLog) Replay(context.Context, string, string, string, func(server.LoggedPacket)) (bool, error) {
	return false, nil
}
func (l *stuckLog) CompareOffsets(a, b string) (int, bool) { return 0, false }

var _ server.RecoveryLog = (*stuckLog)(nil)

// TestShutdownWithStuckRecoveryLog: Shutdown returns when its context
// ends although the log's Follow does not.
func TestShutdownWithStuckRecoveryLog(t *testing.T) {
	l := &stuckLog{following: make(chan struct{}), release: make(chan struct{})}
	defer close(l.release)
	srv := server.New(server.WithConnectionStateRecovery(time.Minute, true), server.WithRecoveryStore(l))
	<-l.following
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
}
