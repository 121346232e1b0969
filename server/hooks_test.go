package server_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/servertest"
)

// hookLog records what hooks report, one line per report.
type hookLog struct {
	mu    sync.Mutex
	lines []string
	in    atomic.Int64 // PacketIn bytes
	out   atomic.Int64 // PacketOut bytes
}

func (l *hookLog) add(format string, a ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, a...))
	l.mu.Unlock()
}

func (l *hookLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// hooks reports into l; sid names socket ids "me" when they are *sid.
func (l *hookLog) hooks(name func(string) string) server.Hooks {
	args := func(e server.EventData) string {
		a, err := e.Args()
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(a)
	}
	return server.Hooks{
		ClientOpened:  func(c *engineio.Conn) { l.add("opened") },
		ClientClosed:  func(c *engineio.Conn, reason string) { l.add("closed %s", reason) },
		Connected:     func(s *server.Socket) { l.add("connected %s %s", s.Namespace(), name(s.ID())) },
		Disconnected:  func(s *server.Socket, reason string) { l.add("disconnected %s %s", name(s.ID()), reason) },
		Joined:        func(s *server.Socket, room string) { l.add("joined %s %s", name(s.ID()), name(room)) },
		Left:          func(s *server.Socket, room string) { l.add("left %s %s", name(s.ID()), name(room)) },
		EventReceived: func(s *server.Socket, e server.EventData) { l.add("received %s %s %s", name(s.ID()), e.Name, args(e)) },
		EventSent:     func(s *server.Socket, e server.EventData) { l.add("sent %s %s %s", name(s.ID()), e.Name, args(e)) },
		PacketIn:      func(n int) { l.in.Add(int64(n)) },
		PacketOut:     func(n int) { l.out.Add(int64(n)) },
	}
}

// waitLines waits until the log has a line equal to last.
func (l *hookLog) waitLines(t *testing.T, last string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := l.get()
		if slices.Contains(lines, last) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q reported; got:\n%s", last, strings.Join(lines, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The hooks report a socket's life in order: the client's connection,
// its own room, the connection to the namespace, events received and
// sent (with their arguments, binary ones included), rooms joined and
// left (only when membership changes), the disconnection with its reason
// followed by the rooms it was in, and the end of the connection.
func TestHooksReportSocketLife(t *testing.T) {
	var log hookLog
	var sid atomic.Value
	sid.Store("")
	name := func(id string) string {
		if id != "" && id == sid.Load().(string) {
			return "me"
		}
		return id
	}
	srv := newServer(t, server.WithHooks(log.hooks(name)), server.WithAsyncHandlers(false))
	srv.Of("/").Use(func(s *server.Socket, _ json.RawMessage) error { sid.Store(s.ID()); return nil })
	srv.On("/", "enter", func(s *server.Socket, room string) {
		s.Join(room)
		s.Join(room) // already in: not reported again
	})
	srv.On("/", "exit", func(s *server.Socket, room string) {
		s.Leave(room)
		s.Leave("never-joined") // not in it: not reported
	})
	srv.On("/", "echo", func(s *server.Socket, v any, b []byte) {
		s.Emit("echoed", v, b)
	})
	srv.On("/", "shout", func(s *server.Socket, v string) { s.Broadcast().Emit("shouted", v) })

	c := client(t, srv, "/", servertest.Options{})
	for _, step := range [][]any{{"enter", "lobby"}, {"echo", map[string]any{"k": 1}, []byte{1, 2}}, {"shout", "hi"}, {"exit", "lobby"}} {
		if err := c.Emit("/", step[0].(string), step[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	log.waitLines(t, "left me lobby")
	if err := c.Disconnect("/"); err != nil {
		t.Fatal(err)
	}
	log.waitLines(t, "left me me")
	c.Close()
	got := log.waitLines(t, "closed transport close")
	want := []string{
		"opened",
		"joined me me",
		"connected / me",
		"received me enter [lobby]",
		"joined me lobby",
		"received me echo [map[k:1] [1 2]]",
		"sent me echoed [map[k:1] [1 2]]",
		"received me shout [hi]",
		"sent me shouted [hi]",
		"received me exit [lobby]",
		"left me lobby",
		"disconnected me client namespace disconnect",
		"left me me",
		"closed transport close",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if log.in.Load() == 0 || log.out.Load() == 0 {
		t.Errorf("packet bytes in %d, out %d: want both > 0", log.in.Load(), log.out.Load())
	}
}

// A broadcast reports EventSent once per recipient, and only for them.
func TestHooksEventSentPerRecipient(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]int{}
	srv := newServer(t, server.WithHooks(server.Hooks{EventSent: func(s *server.Socket, e server.EventData) {
		mu.Lock()
		sent[s.ID()+" "+e.Name]++
		mu.Unlock()
	}}))
	srv.On("/", "join", func(s *server.Socket, room string) string { s.Join(room); return "ok" })
	var ids []string
	for i := range 3 {
		c := client(t, srv, "/", servertest.Options{})
		if i < 2 {
			if _, err := c.EmitWithAck("/", 5*time.Second, "join", "room"); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, c.SID("/"))
	}
	if err := srv.Of("/").To("room").Emit("news", 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{ids[0] + " news": 1, ids[1] + " news": 1}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("EventSent reports %v, want %v", sent, want)
	}
}

// Hooks added after the server was made report from then on, alongside
// WithHooks's; removing them stops their reports only.
func TestAddHooksAndRemove(t *testing.T) {
	var first, added atomic.Int32
	srv := newServer(t, server.WithHooks(server.Hooks{Connected: func(*server.Socket) { first.Add(1) }}))
	srv.Of("/a")
	srv.Of("/b")
	c := client(t, srv, "/", servertest.Options{})
	// the hooks run once the client has its CONNECT answer: wait for them
	reported := func(f, a int32) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); first.Load() != f || added.Load() != a; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("Connected reported %d times by WithHooks (want %d) and %d by AddHooks (want %d)", first.Load(), f, added.Load(), a)
			}
		}
	}
	// the "/" connection's hooks, before AddHooks: run after it, they
	// would count for the added hook too (a flake under load)
	reported(1, 0)
	remove := srv.AddHooks(server.Hooks{Connected: func(*server.Socket) { added.Add(1) }})
	if err := c.Connect("/a", nil); err != nil {
		t.Fatal(err)
	}
	reported(2, 1)
	remove()
	remove() // twice is harmless
	if err := c.Connect("/b", nil); err != nil {
		t.Fatal(err)
	}
	reported(3, 1) // both hooks run in the same call: the removed one would have by now
}

// Namespaces lists the server's namespaces in order; SocketCount counts
// their sockets; ClientID is shared by a client's sockets.
func TestNamespacesAndClientID(t *testing.T) {
	srv := newServer(t)
	srv.Of("/b")
	srv.Of("/a")
	var names []string
	for _, n := range srv.Namespaces() {
		names = append(names, n.Name())
	}
	if want := []string{"/", "/a", "/b"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Namespaces: %v, want %v", names, want)
	}
	c := client(t, srv, "/", servertest.Options{})
	if err := c.Connect("/a", nil); err != nil {
		t.Fatal(err)
	}
	if n, m := srv.Of("/").SocketCount(), srv.Of("/b").SocketCount(); n != 1 || m != 0 {
		t.Errorf("SocketCount: %d in /, %d in /b; want 1 and 0", n, m)
	}
	root, a := srv.Of("/").Socket(c.SID("/")), srv.Of("/a").Socket(c.SID("/a"))
	if root == nil || a == nil {
		t.Fatal("sockets not found")
	}
	if root.ClientID() == "" || root.ClientID() != a.ClientID() || root.ClientID() == root.ID() {
		t.Errorf("ClientID %q and %q (socket ids %q, %q): want one Engine.IO id for both", root.ClientID(), a.ClientID(), root.ID(), a.ID())
	}
}
