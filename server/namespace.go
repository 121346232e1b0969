package server

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

// Namespace is a Socket.IO namespace: its handlers, sockets and rooms.
type Namespace struct {
	s    *Server
	name string

	mu           sync.RWMutex
	handlers     map[string]*handler
	onAny        func(s *Socket, event string, args []any)
	onConnect    func(s *Socket, auth json.RawMessage) error
	onDisconnect func(s *Socket, reason string)
	onDiscing    func(s *Socket, reason string) // OnDisconnecting
	onError      errorHandler
	mws          []func(s *Socket, auth json.RawMessage) error
	sockets      map[string]*Socket
	rooms        map[string]map[*Socket]struct{}
	dynamic      bool // made by a dynamic namespace pattern: removed when empty
	removed      bool // removed from the server (guarded by mu)

	plog *packetLog // WithConnectionStateRecovery; nil when off
}

func newNamespace(s *Server, name string) *Namespace {
	return &Namespace{s: s, name: name, handlers: map[string]*handler{}, sockets: map[string]*Socket{}, rooms: map[string]map[*Socket]struct{}{}, plog: s.recovery.newLog()}
}

// Name returns the namespace's name.
func (n *Namespace) Name() string { return n.name }

// On registers the handler of event. fn is a function whose first
// parameter is *Socket; the following parameters receive the event's
// arguments, decoded from JSON into their types ([]byte parameters receive
// binary attachments, any parameters receive plain data with []byte for
// binary; a final ...any parameter receives the remaining arguments). Its
// results, except a final error, are sent as the acknowledgement when the
// client asked for one. A non-nil error goes to the error handler.
//
// It panics when fn has another shape: a programming error.
func (n *Namespace) On(event string, fn any) {
	h, err := newHandler(fn)
	if err != nil {
		panic(fmt.Sprintf("socket.io: On(%q, %q): %v", n.name, event, err))
	}
	n.mu.Lock()
	n.handlers[event] = h
	n.mu.Unlock()
}

// TriggerEvent runs the handler of event for socket s with args, as if the
// client had sent it (Flask-SocketIO's Namespace.trigger_event), and
// returns the handler's results.
func (n *Namespace) TriggerEvent(s *Socket, event string, args ...any) ([]any, error) {
	n.mu.RLock()
	h := n.handlers[event]
	n.mu.RUnlock()
	if h == nil {
		return nil, fmt.Errorf("socket.io: no handler for %q in namespace %s", event, n.name)
	}
	raw := make([]json.RawMessage, len(args))
	var atts [][]byte
	for i, a := range args {
		b, err := json.Marshal(parser.Deconstruct(a, &atts))
		if err != nil {
			return nil, fmt.Errorf("socket.io: argument %d: %w", i+1, err)
		}
		raw[i] = b
	}
	return h.call(s, raw, atts)
}

// OnAny registers a catch-all handler (Flask-SocketIO's on('*')) for
// events without a handler of their own.
func (n *Namespace) OnAny(fn func(s *Socket, event string, args []any)) {
	n.mu.Lock()
	n.onAny = fn
	n.mu.Unlock()
}

// OnConnect sets the connect handler. It runs before the client is told
// it is connected; returning an error refuses the connection (the client
// gets CONNECT_ERROR with the error's message, and ConnectError's data).
// Emits made inside it reach the client right after the connection.
func (n *Namespace) OnConnect(fn func(s *Socket, auth json.RawMessage) error) {
	n.mu.Lock()
	n.onConnect = fn
	n.mu.Unlock()
}

// OnDisconnect sets the disconnect handler. As in python-socketio, the
// socket is still in its rooms while it runs (s.Rooms() lists them); they
// are left when it returns. The reasons are socket.io's (Node's); see
// docs/api-parity.md for python-socketio's names of each.
func (n *Namespace) OnDisconnect(fn func(s *Socket, reason string)) {
	n.mu.Lock()
	n.onDisconnect = fn
	n.mu.Unlock()
}

// OnDisconnecting sets the handler of Node's "disconnecting" event: it
// runs before the disconnect handler, with the same reason, while the
// socket is still in its rooms.
func (n *Namespace) OnDisconnecting(fn func(s *Socket, reason string)) {
	n.mu.Lock()
	n.onDiscing = fn
	n.mu.Unlock()
}

// OnError sets the error handler: it receives the errors returned by event
// handlers, and the panics they raise, with the event's name.
// Errors of namespaces without their own handler go to the server's
// default handler (Server.OnErrorDefault), else to the log. When the
// client asked for an acknowledgement, an error handler answers it (with
// no arguments; OnErrorAck chooses them); errors that only reach the log
// leave it unanswered.
func (n *Namespace) OnError(fn func(s *Socket, event string, err error)) {
	n.OnErrorAck(ackless(fn))
}

// OnErrorAck sets an error handler whose result is the acknowledgement
// of the failed event, as Flask-SocketIO's on_error: its value is the
// ack's argument (Args spreads several, nil sends none). It replaces the
// handler set by OnError.
func (n *Namespace) OnErrorAck(fn func(s *Socket, event string, err error) any) {
	n.mu.Lock()
	n.onError = fn
	n.mu.Unlock()
}

// errorHandler is an error handler: its result answers the failed event.
type errorHandler = func(s *Socket, event string, err error) any

// ackless makes an error handler without a result one whose
// acknowledgement has no arguments.
func ackless(fn func(s *Socket, event string, err error)) errorHandler {
	if fn == nil {
		return nil
	}
	return func(s *Socket, event string, err error) any {
		fn(s, event, err)
		return nil
	}
}

// ackArgs is the acknowledgement of an error handler's result v.
func ackArgs(v any) []any {
	switch v := v.(type) {
	case nil:
		return []any{}
	case Args:
		return []any(v)
	default:
		return []any{v}
	}
}

// Use adds a middleware that runs before the connect handler, for
// authentication; an error refuses the connection.
func (n *Namespace) Use(mw func(s *Socket, auth json.RawMessage) error) {
	n.mu.Lock()
	n.mws = append(n.mws, mw)
	n.mu.Unlock()
}

func (n *Namespace) middlewares() []func(*Socket, json.RawMessage) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mws
}

func (n *Namespace) connectHandler() func(*Socket, json.RawMessage) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.onConnect
}

// RegisterHandlers registers the methods of v as the namespace's handlers,
// the way Flask-SocketIO's class-based namespaces do: OnConnect(s, auth)
// error, OnDisconnect(s, reason), OnDisconnecting(s, reason), and On<Event> methods for the events
// (OnMyEvent handles "my_event"; a method named after the exact event,
// e.g. "OnmyEvent", is not needed: the snake_case name and the name with
// its first letter lowered are both registered).
func (n *Namespace) RegisterHandlers(v any) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := 0; i < rt.NumMethod(); i++ {
		m := rt.Method(i)
		fn := rv.Method(i).Interface()
		switch m.Name {
		case "OnConnect":
			if f, ok := fn.(func(*Socket, json.RawMessage) error); ok {
				n.OnConnect(f)
			}
			continue
		case "OnDisconnect":
			if f, ok := fn.(func(*Socket, string)); ok {
				n.OnDisconnect(f)
			}
			continue
		case "OnDisconnecting":
			if f, ok := fn.(func(*Socket, string)); ok {
				n.OnDisconnecting(f)
			}
			continue
		}
		if len(m.Name) > 2 && m.Name[:2] == "On" {
			ev := m.Name[2:]
			n.On(snake(ev), fn)
			n.On(lowerFirst(ev), fn)
		}
	}
}

func snake(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b = append(b, '_')
			}
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// add adds s; false when n was removed from the server (dropIfEmpty).
func (n *Namespace) add(s *Socket) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removed {
		return false
	}
	n.sockets[s.id] = s
	n.joinLocked(s, s.id)
	return true
}

func (n *Namespace) removeSocket(s *Socket) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.sockets, s.id)
	held := s.rooms
	for r := range s.rooms {
		n.s.hooks.leaving(s, r)
		if m := n.rooms[r]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(n.rooms, r)
			}
		}
	}
	s.rooms = map[string]struct{}{}
	if n.s.member != nil {
		for r := range held {
			if !n.heldLocked(r) {
				n.s.member.roomDeleted(n.name, r, r == s.id || n.sockets[r] != nil)
			}
		}
	}
}

// joinLocked adds s to room. A socket's own room (its id) is not stored:
// forEachMember finds the socket by id instead, which saves a set per
// connection.
func (n *Namespace) joinLocked(s *Socket, room string) {
	n.s.hooks.joining(s, room)
	if _, in := s.rooms[room]; in {
		return
	}
	created := n.s.member != nil && !n.heldLocked(room)
	s.rooms[room] = struct{}{}
	if room != s.id {
		m := n.rooms[room]
		if m == nil {
			m = map[*Socket]struct{}{}
			n.rooms[room] = m
		}
		m[s] = struct{}{}
	}
	if created {
		n.s.member.roomCreated(n.name, room, n.sockets[room] != nil)
	}
}

// heldLocked reports whether a socket of this server is in room (the
// adapter's create-room / delete-room: the cluster member subscribes to
// the rooms held). Callers hold n.mu.
func (n *Namespace) heldLocked(room string) bool {
	if len(n.rooms[room]) > 0 {
		return true
	}
	if o := n.sockets[room]; o != nil {
		_, in := o.rooms[room]
		return in
	}
	return false
}

// forEachMember calls fn for every socket in room: those that joined it,
// and the socket whose id it is. Callers hold n.mu.
func (n *Namespace) forEachMember(room string, fn func(*Socket)) {
	for s := range n.rooms[room] {
		fn(s)
	}
	if s := n.sockets[room]; s != nil {
		if _, in := s.rooms[room]; in {
			fn(s)
		}
	}
}

func (n *Namespace) leaveLocked(s *Socket, room string) {
	n.s.hooks.leaving(s, room)
	_, was := s.rooms[room]
	if m := n.rooms[room]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(n.rooms, room)
		}
	}
	delete(s.rooms, room)
	if was && n.s.member != nil && !n.heldLocked(room) {
		n.s.member.roomDeleted(n.name, room, n.sockets[room] != nil)
	}
}

// Sockets returns the ids of the namespace's sockets.
func (n *Namespace) Sockets() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]string, 0, len(n.sockets))
	for id := range n.sockets {
		out = append(out, id)
	}
	return out
}

// Socket returns the socket with id sid, or nil.
func (n *Namespace) Socket(sid string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[sid]
}

// To selects the sockets in rooms for a broadcast.
func (n *Namespace) To(rooms ...string) *Broadcast { return (&Broadcast{n: n}).To(rooms...) }

// In is the same as To.
func (n *Namespace) In(rooms ...string) *Broadcast { return n.To(rooms...) }

// Local selects every socket of the namespace connected to this server
// (see Broadcast.Local).
func (n *Namespace) Local() *Broadcast { return (&Broadcast{n: n}).Local() }

// Except excludes the sockets in rooms from a broadcast.
func (n *Namespace) Except(rooms ...string) *Broadcast { return (&Broadcast{n: n}).Except(rooms...) }

// Volatile selects every socket for a volatile broadcast.
func (n *Namespace) Volatile() *Broadcast { return (&Broadcast{n: n}).Volatile() }

// Emit sends event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error {
	return (&Broadcast{n: n}).Emit(event, args...)
}

// CloseRoom removes every socket from room (on every node of the cluster,
// with WithAdapter).
func (n *Namespace) CloseRoom(room string) error {
	if m := n.s.member; m != nil {
		return m.closeRoom(n, room)
	}
	n.closeRoomLocal(room)
	return nil
}

func (n *Namespace) closeRoomLocal(room string) { n.In(room).socketsLeaveLocal([]string{room}) }

// ------------------------------------------------------------ broadcasts

// Broadcast selects sockets of a namespace. It is immutable.
type Broadcast struct {
	n        *Namespace
	self     string // the sending socket's id (Socket.Broadcast, Socket.To), or ""
	rooms    []string
	except   []string
	volatile bool
	local    bool // Local: this server's sockets only, nothing published
	private  bool // Socket.Emit with recovery: the socket's own id, Local but logged as Node logs it

	fromQueue bool      // performs a queue message (Stats)
	received  time.Time // when that message arrived, when sampled (Stats)
}

func (b *Broadcast) clone() *Broadcast {
	c := *b
	c.rooms = append([]string(nil), b.rooms...)
	c.except = append([]string(nil), b.except...)
	return &c
}

// To adds rooms (or socket ids) to the selection.
func (b *Broadcast) To(rooms ...string) *Broadcast {
	c := b.clone()
	c.rooms = append(c.rooms, rooms...)
	return c
}

// In is the same as To.
func (b *Broadcast) In(rooms ...string) *Broadcast { return b.To(rooms...) }

// Except excludes the sockets in rooms (or with these ids).
func (b *Broadcast) Except(rooms ...string) *Broadcast {
	c := b.clone()
	c.except = append(c.except, rooms...)
	return c
}

// IncludeSelf says whether a broadcast made from a socket (Socket.Broadcast,
// Socket.To) reaches that socket too, as Flask-SocketIO's include_self:
// IncludeSelf(false) excludes the sender, IncludeSelf(true) undoes that.
// On a namespace's broadcast (no sender) it changes nothing.
func (b *Broadcast) IncludeSelf(include bool) *Broadcast {
	if b.self == "" {
		return b
	}
	c := b.clone()
	if !include {
		c.except = append(c.except, b.self)
		return c
	}
	c.except = c.except[:0]
	for _, r := range b.except {
		if r != b.self {
			c.except = append(c.except, r)
		}
	}
	return c
}

// Local restricts the broadcast to the sockets connected to this server:
// with a cluster adapter, nothing is published on the bus, so the other
// nodes' sockets are left out (Flask-SocketIO's ignore_queue=True,
// socket.io's io.local). It applies to Emit, EmitWithAck, SocketsJoin,
// SocketsLeave, DisconnectSockets and FetchSockets; without an adapter it
// changes nothing.
func (b *Broadcast) Local() *Broadcast {
	c := b.clone()
	c.local = true
	return c
}

// Volatile drops the event for clients whose send queue is not empty.
func (b *Broadcast) Volatile() *Broadcast {
	c := b.clone()
	c.volatile = true
	return c
}

// targets returns the selected sockets.
func (b *Broadcast) targets() []*Socket {
	n := b.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	if len(b.rooms) == 1 && len(b.except) == 0 { // the common case: no sets to build
		out := make([]*Socket, 0, len(n.rooms[b.rooms[0]])+1)
		n.forEachMember(b.rooms[0], func(s *Socket) { out = append(out, s) })
		return out
	}
	excluded := map[*Socket]struct{}{}
	for _, r := range b.except {
		n.forEachMember(r, func(s *Socket) { excluded[s] = struct{}{} })
	}
	var out []*Socket
	if len(b.rooms) == 0 {
		out = make([]*Socket, 0, len(n.sockets))
		for _, s := range n.sockets {
			if _, ex := excluded[s]; !ex {
				out = append(out, s)
			}
		}
		return out
	}
	seen := map[*Socket]struct{}{}
	for _, r := range b.rooms {
		n.forEachMember(r, func(s *Socket) {
			if _, ex := excluded[s]; ex {
				return
			}
			if _, dup := seen[s]; dup {
				return
			}
			seen[s] = struct{}{}
			out = append(out, s)
		})
	}
	return out
}

// Emit sends event with args to the selected sockets (on every node of
// the cluster, with WithAdapter). The packet is encoded once for all of
// them.
func (b *Broadcast) Emit(event string, args ...any) error {
	if shared, err := b.emitShared(event, args); shared { // WithRecoveryStore with a RecoveryLog
		return err
	}
	if m := b.n.s.member; m != nil {
		return m.emit(b, event, args)
	}
	return b.emitLocal(event, args)
}

// emitLocal delivers to the selected sockets of this server.
func (b *Broadcast) emitLocal(event string, args []any) error {
	start := b.n.s.stats.startBroadcast(b.fromQueue, b.received)
	rec := b.record() // with recovery: an offset, the log, the order
	defer rec.done()
	data, atts, err := parser.EncodeData(rec.args(event, args))
	if err != nil {
		return err
	}
	msgs, err := b.n.s.encode(&parser.Packet{Type: parser.Event, Namespace: b.n.name, Data: data, Attachments: atts})
	if err != nil { // encoded once, shared by every recipient
		return err
	}
	engineio.PrepareBroadcast(msgs) // and framed once
	rec.keep(msgs)
	delivered := 0
	for _, s := range b.targets() {
		if b.volatile && !s.c.conn.Writable() {
			continue
		}
		b.n.s.hooks.eventSent(s, event, data, atts)
		rec.send(s, msgs)
		delivered++
	}
	b.n.s.stats.broadcast(delivered, start, b.fromQueue)
	return nil
}

// EmitWithAck sends event to every selected socket and collects their
// acknowledgements (socket.io's io.timeout(t).emitWithAck): one entry per
// client that answered, each holding that client's ack arguments. When ctx
// ends first, the answers so far are returned with an error wrapping
// ErrAckTimeout. With WithAdapter, the clients of every node are asked;
// see WithAdapter for what each dialect allows.
func (b *Broadcast) EmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	if m := b.n.s.member; m != nil {
		return m.emitWithAck(ctx, b, event, args)
	}
	targets := b.targets()
	type answer struct {
		args []any
		err  error
	}
	ch := make(chan answer, len(targets))
	for _, s := range targets {
		go func(s *Socket) {
			r, err := s.EmitWithAck(ctx, event, args...)
			ch <- answer{r, err}
		}(s)
	}
	var out [][]any
	var firstErr error
	for range targets {
		a := <-ch
		if a.err != nil {
			if firstErr == nil {
				firstErr = a.err
			}
			continue
		}
		out = append(out, a.args)
	}
	if firstErr != nil {
		return out, fmt.Errorf("socket.io: %d of %d clients answered: %w", len(out), len(targets), firstErr)
	}
	return out, nil
}

// SocketsJoin makes the selected sockets join rooms (on every node of the
// cluster, with WithAdapter; the error tells when the cluster's dialect
// cannot express the selection, and nothing was done).
func (b *Broadcast) SocketsJoin(rooms ...string) error {
	if m := b.n.s.member; m != nil {
		return m.join(b, rooms, true)
	}
	b.socketsJoinLocal(rooms)
	return nil
}

func (b *Broadcast) socketsJoinLocal(rooms []string) {
	for _, s := range b.targets() {
		s.Join(rooms...)
	}
}

// SocketsLeave makes the selected sockets leave rooms (on every node of
// the cluster, with WithAdapter; errors as for SocketsJoin).
func (b *Broadcast) SocketsLeave(rooms ...string) error {
	if m := b.n.s.member; m != nil {
		return m.join(b, rooms, false)
	}
	b.socketsLeaveLocal(rooms)
	return nil
}

func (b *Broadcast) socketsLeaveLocal(rooms []string) {
	for _, s := range b.targets() {
		s.Leave(rooms...)
	}
}

// DisconnectSockets disconnects the selected sockets; with close their
// connections are closed too (on every node of the cluster, with
// WithAdapter; errors as for SocketsJoin).
func (b *Broadcast) DisconnectSockets(close bool) error {
	if m := b.n.s.member; m != nil {
		return m.disconnect(b, close)
	}
	b.disconnectLocal(close)
	return nil
}

func (b *Broadcast) disconnectLocal(close bool) {
	for _, s := range b.targets() {
		if close {
			s.c.conn.Close()
		} else {
			s.Disconnect()
		}
	}
}
