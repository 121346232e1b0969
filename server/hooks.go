package server

import (
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

// Hooks observe what happens on a server: connections, sockets, rooms and
// events. Each field may be nil. They serve monitoring (package
// server/admin, the Socket.IO Admin UI, is built on them), metrics and
// tests.
//
// Hooks run synchronously on the server's goroutines, some of them (Joined,
// Left) while the server holds the lock of the socket's namespace, and
// EventSent once per recipient of a broadcast. So a hook must be quick and
// must not block: no I/O, no waiting; hand the observation to a goroutine
// of your own through a bounded queue if it needs more. From a hook, only
// read the arguments it is given (Socket.ID, Namespace, ClientID,
// Transport, Request, Auth): calling other methods of the Server, its
// Namespaces or Sockets from a hook may deadlock. The data of an EventData
// is shared and must not be modified; it may be kept.
//
// With no hooks registered, each place that reports costs one atomic
// load and a nil check (plus a function call for the event and packet
// reports, too large to be inlined).
type Hooks struct {
	// ClientOpened reports a new Engine.IO connection (a client, which
	// may then connect to several namespaces).
	ClientOpened func(c *engineio.Conn)
	// ClientClosed reports the end of an Engine.IO connection, with
	// socket.io's reason ("transport close", "ping timeout", ...).
	ClientClosed func(c *engineio.Conn, reason string)
	// Connected reports a socket accepted in its namespace (after its
	// connect handler accepted it). It is in its own room (its id) from
	// then on; Joined is reported for that room just before.
	Connected func(s *Socket)
	// Disconnected reports a socket leaving its namespace, with the
	// reason its disconnect handler receives, after that handler ran;
	// Left follows for each room it was in.
	Disconnected func(s *Socket, reason string)
	// Joined reports a socket entering a room it was not in.
	Joined func(s *Socket, room string)
	// Left reports a socket leaving a room it was in.
	Left func(s *Socket, room string)
	// EventReceived reports an event from a socket's client, as its
	// handler is about to run (or would run, for events without a
	// handler).
	EventReceived func(s *Socket, e EventData)
	// EventSent reports an event queued for a socket's client: by
	// Socket.Emit and EmitWithAck, and once per recipient by broadcasts.
	EventSent func(s *Socket, e EventData)
	// PacketIn reports a Socket.IO packet (or binary attachment) received
	// from a client, by its size in bytes.
	PacketIn func(bytes int)
	// PacketOut reports a Socket.IO packet (with its attachments) queued
	// for a client, by its size in bytes.
	PacketOut func(bytes int)
}

// EventData is an event as it travels: its name, and the packet's JSON
// array [name, arg...] in which binary arguments are placeholders
// ({"_placeholder":true,"num":N}) for Attachments. Data and Attachments
// are shared with the server: read them, do not modify them.
type EventData struct {
	Name        string
	Data        json.RawMessage
	Attachments [][]byte
}

// Args returns the event's arguments (after its name) as plain values:
// float64, string, bool, nil, []any, map[string]any, and []byte for
// binary attachments.
func (e EventData) Args() ([]any, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(e.Data, &raw); err != nil {
		return nil, errorf("event %q: %w", e.Name, err)
	}
	if len(raw) == 0 {
		return []any{}, nil
	}
	return plainArgs(raw[1:], e.Attachments)
}

// Size is the event's size in bytes: its JSON and its attachments.
func (e EventData) Size() int {
	n := len(e.Data)
	for _, a := range e.Attachments {
		n += len(a)
	}
	return n
}

// WithHooks registers h when the server is made (see Server.AddHooks).
func WithHooks(h Hooks) Option {
	return func(c *config) { c.hooks = append(c.hooks, &h) }
}

// AddHooks registers h, at any time (also while the server serves), in
// addition to the hooks already registered; they run in the order they
// were added. The returned function removes them.
func (s *Server) AddHooks(h Hooks) (remove func()) {
	p := &h
	s.hooks.update(func(l []*Hooks) []*Hooks { return append(l, p) })
	var once sync.Once
	return func() {
		once.Do(func() {
			s.hooks.update(func(l []*Hooks) []*Hooks {
				out := make([]*Hooks, 0, len(l))
				for _, x := range l {
					if x != p {
						out = append(out, x)
					}
				}
				return out
			})
		})
	}
}

// Namespaces returns the server's namespaces, sorted by name (dynamic
// namespaces while they have sockets).
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	out := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		out = append(out, n)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// SocketCount returns the number of sockets connected to the namespace
// on this server.
func (n *Namespace) SocketCount() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

// HasAdapter reports whether the server is a member of a cluster
// (WithAdapter): its broadcasts then reach the other servers' clients too.
func (s *Server) HasAdapter() bool { return s.member != nil }

// ClientID returns the id of the socket's Engine.IO connection, shared by
// the client's sockets in other namespaces.
func (s *Socket) ClientID() string { return s.c.conn.ID() }

// hookSet is the registered hooks: an immutable list swapped atomically,
// so that reporting takes no lock.
type hookSet struct {
	mu   sync.Mutex // serialises updates
	list atomic.Pointer[[]*Hooks]
}

func (hs *hookSet) update(f func([]*Hooks) []*Hooks) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var cur []*Hooks
	if p := hs.list.Load(); p != nil {
		cur = *p
	}
	next := f(append([]*Hooks(nil), cur...))
	if len(next) == 0 {
		hs.list.Store(nil)
		return
	}
	hs.list.Store(&next)
}

func (hs *hookSet) get() []*Hooks {
	if p := hs.list.Load(); p != nil {
		return *p
	}
	return nil
}

// Each report below checks for registered hooks (one atomic load and a
// nil check; most are inlined at their call site) and calls the function
// doing the work only when there are some.

func (hs *hookSet) clientOpened(c *engineio.Conn) {
	if hs.list.Load() != nil {
		reportClientOpened(hs, c)
	}
}

func reportClientOpened(hs *hookSet, c *engineio.Conn) {
	l := hs.get()
	for _, h := range l {
		if h.ClientOpened != nil {
			h.ClientOpened(c)
		}
	}
}

func (hs *hookSet) clientClosed(c *engineio.Conn, reason string) {
	if hs.list.Load() != nil {
		reportClientClosed(hs, c, reason)
	}
}

func reportClientClosed(hs *hookSet, c *engineio.Conn, reason string) {
	l := hs.get()
	for _, h := range l {
		if h.ClientClosed != nil {
			h.ClientClosed(c, reason)
		}
	}
}

func (hs *hookSet) connected(s *Socket) {
	if hs.list.Load() != nil {
		reportConnected(hs, s)
	}
}

func reportConnected(hs *hookSet, s *Socket) {
	l := hs.get()
	for _, h := range l {
		if h.Connected != nil {
			h.Connected(s)
		}
	}
}

func (hs *hookSet) disconnected(s *Socket, reason string) {
	if hs.list.Load() != nil {
		reportDisconnected(hs, s, reason)
	}
}

func reportDisconnected(hs *hookSet, s *Socket, reason string) {
	l := hs.get()
	for _, h := range l {
		if h.Disconnected != nil {
			h.Disconnected(s, reason)
		}
	}
}

// joining reports that s is about to join room, unless it is in it
// already. The caller holds s.n.mu.
func (hs *hookSet) joining(s *Socket, room string) {
	if hs.list.Load() != nil {
		reportRoom(hs, s, room, true)
	}
}

// leaving reports that s is about to leave room, if it is in it. The
// caller holds s.n.mu.
func (hs *hookSet) leaving(s *Socket, room string) {
	if hs.list.Load() != nil {
		reportRoom(hs, s, room, false)
	}
}

func reportRoom(hs *hookSet, s *Socket, room string, join bool) {
	l := hs.get()
	if _, in := s.rooms[room]; in == join {
		return // no change
	}
	for _, h := range l {
		switch {
		case join && h.Joined != nil:
			h.Joined(s, room)
		case !join && h.Left != nil:
			h.Left(s, room)
		}
	}
}

func (hs *hookSet) eventReceived(s *Socket, event string, p *parser.Packet) {
	if hs.list.Load() != nil {
		reportEvent(hs, s, EventData{Name: event, Data: p.Data, Attachments: p.Attachments}, false)
	}
}

// eventSent reports the event packet data (the JSON array [event,
// args...]) with attachments atts, queued for s.
func (hs *hookSet) eventSent(s *Socket, event string, data json.RawMessage, atts [][]byte) {
	if hs.list.Load() != nil {
		reportEvent(hs, s, EventData{Name: event, Data: data, Attachments: atts}, true)
	}
}

// packetSent reports a packet of type t made of args (an event's name
// first), encoded as data and atts, when it is an event.
func (hs *hookSet) packetSent(s *Socket, t parser.Type, args []any, data json.RawMessage, atts [][]byte) {
	if hs.list.Load() != nil && t == parser.Event {
		reportSent(hs, s, args, data, atts)
	}
}

func reportSent(hs *hookSet, s *Socket, args []any, data json.RawMessage, atts [][]byte) {
	name, _ := args[0].(string)
	reportEvent(hs, s, EventData{Name: name, Data: data, Attachments: atts}, true)
}

func reportEvent(hs *hookSet, s *Socket, e EventData, sent bool) {
	l := hs.get()
	for _, h := range l {
		switch {
		case sent && h.EventSent != nil:
			h.EventSent(s, e)
		case !sent && h.EventReceived != nil:
			h.EventReceived(s, e)
		}
	}
}

func (hs *hookSet) packetIn(n int) {
	if hs.list.Load() != nil {
		reportBytes(hs, n, false)
	}
}

// packetOut reports msgs, one packet and its attachments.
func (hs *hookSet) packetOut(msgs []engineio.Message) {
	if hs.list.Load() != nil {
		reportMessages(hs, msgs)
	}
}

func reportMessages(hs *hookSet, msgs []engineio.Message) {
	n := 0
	for _, m := range msgs {
		n += len(m.Data)
	}
	reportBytes(hs, n, true)
}

func reportBytes(hs *hookSet, n int, out bool) {
	l := hs.get()
	for _, h := range l {
		switch {
		case out && h.PacketOut != nil:
			h.PacketOut(n)
		case !out && h.PacketIn != nil:
			h.PacketIn(n)
		}
	}
}
