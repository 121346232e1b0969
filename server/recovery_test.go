package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/servertest"
)

// recoveryServer is a server with recovery on whose connect handler puts
// fresh sockets in room "r" and sets their Data; disconnects are
// reported on the returned channel, connects' Recovered in recovered.
type recoveryServer struct {
	srv       *server.Server
	gone      chan string
	recovered chan bool
	mw        atomic.Int32 // middleware runs
}

func newRecoveryServer(t *testing.T, opts ...server.Option) *recoveryServer {
	t.Helper()
	rs := &recoveryServer{gone: make(chan string, 64), recovered: make(chan bool, 64)}
	rs.srv = server.New(append([]server.Option{server.WithConnectionStateRecovery(time.Minute, true)}, opts...)...)
	shutdownAtEnd(t, rs.srv)
	n := rs.srv.Of("/")
	n.Use(func(s *server.Socket, auth json.RawMessage) error { rs.mw.Add(1); return nil })
	n.OnConnect(func(s *server.Socket, auth json.RawMessage) error {
		if !s.Recovered() {
			s.Join("r")
			s.SetData("data of " + s.ID())
		}
		rs.recovered <- s.Recovered()
		return nil
	})
	n.OnDisconnect(func(s *server.Socket, reason string) { rs.gone <- reason })
	n.On("data", func(s *server.Socket) any { return s.Data() })
	n.On("rooms", func(s *server.Socket) int { return len(s.Rooms()) })
	return rs
}

func (rs *recoveryServer) connect(t *testing.T, c *servertest.Client, auth any) bool {
	t.Helper()
	if err := c.Connect("/", auth); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-rs.recovered:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no connect handler")
	}
	return false
}

func (rs *recoveryServer) waitGone(t *testing.T) string {
	t.Helper()
	select {
	case r := <-rs.gone:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the client leave")
	}
	return ""
}

// shutdownAtEnd shuts srv down when the test ends, after its clients.
func shutdownAtEnd(t *testing.T, srv *server.Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
}

func newClient(t *testing.T, srv *server.Server) *servertest.Client {
	t.Helper()
	c, err := servertest.New(srv, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func redial(t *testing.T, c *servertest.Client) *servertest.Client {
	t.Helper()
	c2, err := c.Redial(servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close) // before c's Close, which stops the test server
	return c2
}

// received takes the events up to "end" and returns the first argument
// of the others, with the offset each carried (last argument).
func received(t *testing.T, c *servertest.Client) (vals []string, evs []servertest.Received) {
	t.Helper()
	evs, err := c.WaitFor("/", "end", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Event != "end" {
			vals = append(vals, fmt.Sprint(e.Args[0]))
		}
	}
	return vals, evs
}

func TestRecoveryRestoresSessionAndMissedPackets(t *testing.T) {
	rs := newRecoveryServer(t)
	c := newClient(t, rs.srv)
	if rs.connect(t, c, nil) {
		t.Fatal("a first connection is not recovered")
	}
	sid, pid := c.SID("/"), c.PID("/")
	if pid == "" || pid == sid {
		t.Fatalf("CONNECT reply %s: no pid", c.ConnectReply("/"))
	}
	n := rs.srv.Of("/")
	n.To("r").Emit("ev", "before")
	n.To("r").Emit("end")
	_, evs := received(t, c)
	offset := servertest.LastOffset(evs)
	if len(evs[0].Args) != 2 || evs[0].Args[1] == "" || offset == "" {
		t.Fatalf("broadcast without an offset: %+v", evs)
	}
	c.Drop()
	if r := rs.waitGone(t); r != "transport close" {
		t.Fatalf("reason %q", r)
	}

	var want []string
	for i := range 50 {
		n.To("r").Emit("ev", fmt.Sprint("r", i))
		want = append(want, fmt.Sprint("r", i))
		n.To("other").Emit("ev", fmt.Sprint("other", i))  // not its room
		n.Except("r").Emit("ev", fmt.Sprint("except", i)) // excludes it
		if i%10 == 0 {
			n.Emit("ev", fmt.Sprint("all", i)) // to every socket
			want = append(want, fmt.Sprint("all", i))
			n.To(sid).Emit("ev", fmt.Sprint("private", i)) // to its id
			want = append(want, fmt.Sprint("private", i))
		}
		n.Volatile().Emit("ev", "volatile") // never logged
	}
	mwBefore := rs.mw.Load()
	c2 := redial(t, c)
	if !rs.connect(t, c2, map[string]any{"pid": pid, "offset": offset}) {
		t.Fatal("not recovered")
	}
	if c2.SID("/") != sid || c2.PID("/") != pid {
		t.Fatalf("recovered as %s/%s, was %s/%s", c2.SID("/"), c2.PID("/"), sid, pid)
	}
	if rs.mw.Load() != mwBefore {
		t.Fatal("middleware ran for a recovered socket with skipMiddlewares")
	}
	n.To("r").Emit("ev", "live")
	n.To("r").Emit("end")
	got, _ := received(t, c2)
	want = append(want, "live")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("replay:\n got %v\nwant %v", got, want)
	}
	if d := ack(t, c2, "/", "data"); d != "data of "+sid {
		t.Fatalf("data %v", d)
	}
	if r := ack(t, c2, "/", "rooms"); r != 2.0 { // its id and r
		t.Fatalf("rooms %v", r)
	}
	if st := rs.srv.Stats().Recovery; st != (server.RecoveryStats{Saved: 1, Restored: 1}) {
		t.Fatalf("Stats.Recovery %+v", st)
	}
}

// TestRecoveryConcurrentBroadcasts drops a client in the middle of a
// stream of broadcasts: across both connections it gets every event once,
// in order.
func TestRecoveryConcurrentBroadcasts(t *testing.T) {
	// a queue for the whole replay (the default, 1024 packets, drops a
	// client replayed more at once)
	rs := newRecoveryServer(t, server.WithEngineOptions(engineio.Options{SendQueueSize: 8192}))
	c := newClient(t, rs.srv)
	rs.connect(t, c, nil)
	pid := c.PID("/")
	n := rs.srv.Of("/")
	const total = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			n.To("r").Emit("ev", i)
		}
	}()
	first, err := c.WaitFor("/", "ev", 10*time.Second) // dropped in the middle of the stream
	if err != nil {
		t.Fatal(err)
	}
	c.Drop()
	rs.waitGone(t)
	first = append(first, c.Received("/")...)
	c2 := redial(t, c)
	if !rs.connect(t, c2, map[string]any{"pid": pid, "offset": servertest.LastOffset(first)}) {
		t.Fatal("not recovered")
	}
	wg.Wait()
	n.To("r").Emit("end")
	second, _ := received(t, c2)
	var got []string
	for _, e := range first {
		got = append(got, fmt.Sprint(e.Args[0]))
	}
	got = append(got, second...)
	if len(got) != total {
		t.Fatalf("got %d events (%d before the drop), want %d", len(got), len(first), total)
	}
	for i, v := range got {
		if v != fmt.Sprint(i) {
			t.Fatalf("event %d is %s (%d before the drop)", i, v, len(first))
		}
	}
}

func TestRecoveryFreshSession(t *testing.T) {
	cases := []struct {
		name string
		auth func(pid, offset string) any
	}{
		{"no offset", func(pid, _ string) any { return map[string]any{"pid": pid} }},
		{"unknown pid", func(_, offset string) any { return map[string]any{"pid": "AAAAAAAAAAAAAAAAAAAA", "offset": offset} }},
		{"pid of wrong type", func(_, offset string) any { return map[string]any{"pid": 12, "offset": offset} }},
		{"offset of wrong type", func(pid, _ string) any { return map[string]any{"pid": pid, "offset": []int{1}} }},
		{"forged offset", func(pid, offset string) any { return map[string]any{"pid": pid, "offset": offset[:8] + "zzzzzzzzzz"} }},
		{"huge offset", func(pid, _ string) any { return map[string]any{"pid": pid, "offset": strings.Repeat("x", 200<<10)} }},
		{"null pid", func(_, offset string) any { return map[string]any{"pid": nil, "offset": offset} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRecoveryServer(t)
			back := comeBack(t, rs, func(string) { rs.srv.Of("/").To("r").Emit("ev", "missed") }, tc.auth)
			if back.recovered {
				t.Fatal("recovered")
			}
			if back.sid == back.oldSID || back.pid == back.oldPID || back.pid == "" {
				t.Fatalf("fresh session %s/%s, was %s/%s", back.sid, back.pid, back.oldSID, back.oldPID)
			}
			if len(back.replayed) != 0 {
				t.Fatalf("a fresh session got %v", back.replayed)
			}
		})
	}
}

// comeback is what comeBack saw.
type comeback struct {
	recovered      bool
	oldSID, oldPID string
	sid, pid       string
	replayed       []string
}

// comeBack connects a client, drops it, runs between, and connects again
// with the auth that auth makes of its pid and last offset (nil: both as
// they are).
func comeBack(t *testing.T, rs *recoveryServer, between func(sid string), auth func(pid, offset string) any) comeback {
	t.Helper()
	c := newClient(t, rs.srv)
	rs.connect(t, c, nil)
	var back comeback
	back.oldSID, back.oldPID = c.SID("/"), c.PID("/")
	rs.srv.Of("/").To("r").Emit("end")
	_, evs := received(t, c)
	c.Drop()
	rs.waitGone(t)
	between(back.oldSID)
	c2 := redial(t, c)
	if auth == nil {
		auth = func(pid, offset string) any { return map[string]any{"pid": pid, "offset": offset} }
	}
	back.recovered = rs.connect(t, c2, auth(back.oldPID, servertest.LastOffset(evs)))
	back.sid, back.pid = c2.SID("/"), c2.PID("/")
	rs.srv.Of("/").To(back.sid).Emit("end")
	back.replayed, _ = received(t, c2)
	return back
}

// recoverAfter is comeBack with the pid and offset as they are: whether
// the client recovers, and the events replayed.
func recoverAfter(t *testing.T, rs *recoveryServer, between func(sid string)) (bool, []string) {
	t.Helper()
	back := comeBack(t, rs, between, nil)
	return back.recovered, back.replayed
}

func TestRecoveryOffsetPrunedBySize(t *testing.T) {
	rs := newRecoveryServer(t, server.WithRecoveryLimits(4<<10, 0))
	ok, got := recoverAfter(t, rs, func(string) {
		for i := range 100 { // about 100 bytes each: more than the 4 KiB log
			rs.srv.Of("/").To("r").Emit("ev", fmt.Sprint(i, strings.Repeat(".", 40)))
		}
	})
	if ok || len(got) != 0 {
		t.Fatalf("recovered %v with %d events replayed, after its offset left the log", ok, len(got))
	}
	// within the bound, the same recovers
	rs = newRecoveryServer(t, server.WithRecoveryLimits(64<<10, 0))
	ok, got = recoverAfter(t, rs, func(string) {
		for i := range 100 {
			rs.srv.Of("/").To("r").Emit("ev", fmt.Sprint(i, strings.Repeat(".", 40)))
		}
	})
	if !ok || len(got) != 100 {
		t.Fatalf("recovered %v with %d events, want 100", ok, len(got))
	}
}

func TestRecoveryExpiry(t *testing.T) {
	rs := newRecoveryServer(t)
	var mu sync.Mutex
	now := time.Now()
	server.SetRecoveryClock(rs.srv, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ok, _ := recoverAfter(t, rs, func(string) {
		mu.Lock()
		now = now.Add(time.Minute + time.Second) // past maxDisconnection
		mu.Unlock()
	})
	if ok {
		t.Fatal("recovered an expired session")
	}
	ok, _ = recoverAfter(t, rs, func(string) {
		mu.Lock()
		now = now.Add(time.Minute - time.Second)
		mu.Unlock()
	})
	if !ok {
		t.Fatal("a session within maxDisconnection was not recovered")
	}
}

func TestRecoverySessionsBounded(t *testing.T) {
	// each session costs a few hundred bytes: 1 KiB keeps two or three
	rs := newRecoveryServer(t, server.WithRecoveryLimits(0, 1<<10))
	type dropped struct{ pid, offset string }
	var ds []dropped
	for range 10 {
		c := newClient(t, rs.srv)
		rs.connect(t, c, nil)
		rs.srv.Of("/").To(c.SID("/")).Emit("end")
		_, evs := received(t, c)
		ds = append(ds, dropped{c.PID("/"), servertest.LastOffset(evs)})
		c.Drop()
		rs.waitGone(t)
	}
	last := ds[len(ds)-1]
	c := newClient(t, rs.srv)
	if rs.connect(t, c, map[string]any{"pid": ds[0].pid, "offset": ds[0].offset}) {
		t.Fatal("the oldest session outlived the bound")
	}
	c2 := newClient(t, rs.srv)
	if !rs.connect(t, c2, map[string]any{"pid": last.pid, "offset": last.offset}) {
		t.Fatal("the newest session is gone")
	}
}

func TestRecoveryOnlyForRecoverableReasons(t *testing.T) {
	rs := newRecoveryServer(t)
	ok, _ := recoverAfter(t, rs, func(string) {})
	if !ok {
		t.Fatal("transport close: not recovered")
	}
	c := newClient(t, rs.srv)
	rs.connect(t, c, nil)
	pid := c.PID("/")
	rs.srv.Of("/").To("r").Emit("end")
	_, evs := received(t, c)
	if err := c.Disconnect("/"); err != nil { // the client's choice: nothing kept
		t.Fatal(err)
	}
	if r := rs.waitGone(t); r != "client namespace disconnect" {
		t.Fatalf("reason %q", r)
	}
	if rs.connect(t, c, map[string]any{"pid": pid, "offset": servertest.LastOffset(evs)}) {
		t.Fatal("recovered after the client left by itself")
	}
}

func TestRecoveryMiddlewaresUnlessSkipped(t *testing.T) {
	rs := newRecoveryServer(t, server.WithConnectionStateRecovery(time.Minute, false))
	ok, _ := recoverAfter(t, rs, func(string) {})
	if !ok {
		t.Fatal("not recovered")
	}
	if got := rs.mw.Load(); got != 2 {
		t.Fatalf("middleware ran %d times, want 2 (connect and recovery)", got)
	}
}

func TestRecoveryOffsets(t *testing.T) {
	rs := newRecoveryServer(t)
	c := newClient(t, rs.srv)
	rs.connect(t, c, nil)
	c.On("/", "ask", func(args []any) []any { return []any{len(args)} })
	n := rs.srv.Of("/")
	s := n.Socket(c.SID("/"))
	volatileArgs := -1
	for try := 0; volatileArgs < 0; try++ { // dropped while the queue is not empty: try until it is
		if try == 100 {
			t.Fatal("no volatile event arrived")
		}
		n.Volatile().Emit("volatile", 1)
		n.Emit("end")
		_, evs := received(t, c)
		for _, e := range evs {
			if e.Event == "volatile" {
				volatileArgs = len(e.Args)
			}
		}
	}
	s.Emit("private", 1)
	if _, err := s.EmitWithAckTimeout(5*time.Second, "ask", 1); err != nil {
		t.Fatal(err)
	}
	n.Emit("end")
	_, evs := received(t, c)
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.Event] = len(e.Args)
	}
	// an offset is appended to private emits and broadcasts, not to
	// volatile ones or those with an ack
	if counts["private"] != 2 || volatileArgs != 1 || counts["ask"] != 1 || counts["end"] != 1 {
		t.Fatalf("arguments per event %v", counts)
	}
	if o := servertest.LastOffset(evs); o == "" {
		t.Fatal("no offset")
	}
}

func TestNoRecoveryByDefault(t *testing.T) {
	srv := server.New()
	shutdownAtEnd(t, srv)
	c := newClient(t, srv)
	if err := c.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	if c.PID("/") != "" {
		t.Fatalf("CONNECT reply %s", c.ConnectReply("/"))
	}
	srv.Emit("end")
	evs, err := c.WaitFor("/", "end", 5*time.Second)
	if err != nil || len(evs[0].Args) != 0 {
		t.Fatalf("%v %v", evs, err)
	}
}
