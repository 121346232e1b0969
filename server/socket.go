package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

// Socket is one client connected to one namespace. Its methods are safe
// for concurrent use.
type Socket struct {
	id   string
	n    *Namespace
	c    *client
	auth json.RawMessage

	rooms map[string]struct{} // guarded by n.mu

	mu         sync.Mutex
	connecting bool
	pending    [][]engineio.Message
	acks       map[uint64]chan []any
	ackSeq     uint64
	data       any
	gone       bool
	event      string            // the event whose handler started last
	eventArgs  []json.RawMessage // and its arguments
	eventSeq   uint64            // counts the handlers started
	inbox      []*parser.Packet  // events waiting for their handler
	inboxBytes int               // their backlogCost
	running    int               // goroutines running handlers (drain)
	csr        socketCSR         // WithConnectionStateRecovery
}

// Bounds of a socket's event backlog (WithEventBacklog).
const (
	// DefaultBacklogEvents is the default number of events that may wait
	// for their handler on one socket.
	DefaultBacklogEvents = 4096
	// DefaultBacklogBytes is the default size of the events waiting for
	// their handler on one socket: their payloads and attachments plus
	// backlogEventOverhead each.
	DefaultBacklogBytes = 4 << 20
	// backlogEventOverhead is what a waiting event costs besides its
	// bytes (the packet and its slot), so that empty events count too.
	backlogEventOverhead = 128
)

// backlogCost is the size of p in the backlog.
func backlogCost(p *parser.Packet) int {
	n := backlogEventOverhead + len(p.Data)
	for _, a := range p.Attachments {
		n += len(a)
	}
	return n
}

// enqueue runs the handlers of a socket's events off the connection's
// read loop (so a handler may wait, e.g. for an acknowledgement, without
// blocking the connection): at most srv.handlerLimit at once
// (WithAsyncHandlers, WithMaxConcurrentHandlers; with one, in arrival
// order). Events that arrive while that many handlers run wait in the
// socket's backlog; a client whose backlog grows over its bound
// (WithEventBacklog) is disconnected. An event that can start at once is
// started, whatever its size.
func (s *Socket) enqueue(p *parser.Packet) {
	srv := s.n.s
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	if s.running < srv.handlerLimit && len(s.inbox) == 0 {
		s.running++
		s.mu.Unlock()
		srv.wg.Add(1)
		go s.drain(p)
		return
	}
	cost := backlogCost(p)
	if len(s.inbox) >= srv.backlogEvents || s.inboxBytes+cost > srv.backlogBytes {
		events, size := len(s.inbox), s.inboxBytes
		s.inbox, s.inboxBytes = nil, 0
		s.mu.Unlock()
		srv.log.Warn("socket.io: disconnecting a client whose event backlog is over its bound (its handlers do not keep up with its events)",
			"sid", s.id, "namespace", s.n.name, "events", events, "bytes", size,
			"maxEvents", srv.backlogEvents, "maxBytes", srv.backlogBytes)
		s.c.conn.Close()
		return
	}
	s.inbox = append(s.inbox, p)
	s.inboxBytes += cost
	s.mu.Unlock()
}

// drain runs p's handler, then those of the backlog (shared by the
// socket's drain goroutines), until it is empty or the socket is gone (the
// events left are then dropped, not run).
func (s *Socket) drain(p *parser.Packet) {
	defer s.n.s.wg.Done()
	for {
		s.dispatch(p)
		s.mu.Lock()
		if len(s.inbox) == 0 || s.gone {
			s.running--
			s.inbox, s.inboxBytes = nil, 0
			s.mu.Unlock()
			return
		}
		p = s.inbox[0]
		s.inbox[0] = nil
		s.inbox = s.inbox[1:]
		s.inboxBytes -= backlogCost(p)
		s.mu.Unlock()
	}
}

func newSocket(c *client, n *Namespace, auth json.RawMessage) *Socket {
	// acks are made on first use: most sockets never need them
	return &Socket{id: engineio.NewID(), n: n, c: c, auth: auth, rooms: map[string]struct{}{}, connecting: true}
}

// ID returns the socket id (20 characters, like Node and python-socketio).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace name.
func (s *Socket) Namespace() string { return s.n.name }

// Request returns the handshake request: method, URL and query, Host,
// RemoteAddr, TLS state, headers and cookies. It is a copy that keeps at
// most 16 KB of headers (taken in the order of their names; no body, and
// context.Background as its context), so that a session does not hold a
// large handshake for its life.
func (s *Socket) Request() *http.Request { return s.c.conn.Request() }

// Auth returns the auth payload the client sent when it connected.
func (s *Socket) Auth() json.RawMessage { return s.auth }

// Transport returns the current transport ("polling" or "websocket").
func (s *Socket) Transport() string { return s.c.conn.Transport() }

func (s *Socket) sendEncoded(text []byte, atts [][]byte) {
	s.sendMessages(engineMessages(text, atts))
}

// engineMessages is a packet's text and attachments as Engine.IO messages.
func engineMessages(text []byte, atts [][]byte) []engineio.Message {
	msgs := make([]engineio.Message, 0, 1+len(atts))
	msgs = append(msgs, engineio.Message{Data: text})
	for _, a := range atts {
		msgs = append(msgs, engineio.Message{Data: a, Binary: true})
	}
	return msgs
}

// sendMessages queues msgs (which may be shared with other sockets: they
// are only read).
func (s *Socket) sendMessages(msgs []engineio.Message) {
	s.n.s.hooks.packetOut(msgs)
	if s.n.s.recovery != nil {
		s.sendOrdered(msgs)
		return
	}
	s.mu.Lock()
	if s.connecting {
		s.pending = append(s.pending, msgs)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.c.conn.SendBatch(msgs)
}

func (s *Socket) flushPending() {
	if s.n.s.recovery != nil {
		s.startOrdered()
		return
	}
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	s.connecting = false
	s.mu.Unlock()
	for _, msgs := range p {
		s.c.conn.SendBatch(msgs)
	}
}

func (s *Socket) dropPending() {
	s.mu.Lock()
	s.pending, s.csr.out = nil, nil
	s.gone = true
	s.mu.Unlock()
}

func (s *Socket) packet(t parser.Type, id uint64, hasID bool, args []any) error {
	data, atts, err := parser.EncodeData(args)
	if err != nil {
		return err
	}
	msgs, err := s.n.s.encode(&parser.Packet{Type: t, Namespace: s.n.name, ID: id, HasID: hasID, Data: data, Attachments: atts})
	if err != nil {
		return err
	}
	s.n.s.hooks.packetSent(s, t, args, data, atts)
	s.n.s.stats.sent(t)
	s.sendMessages(msgs)
	return nil
}

// Emit sends event with args to this client. []byte arguments (also inside
// []any and map[string]any) travel as binary attachments.
func (s *Socket) Emit(event string, args ...any) error {
	if s.n.s.recovery != nil { // through the broadcast path, for an offset (as Node)
		b := s.n.To(s.id).Local()
		b.private = true
		return b.Emit(event, args...)
	}
	return s.packet(parser.Event, 0, false, append([]any{event}, args...))
}

// Send sends an unnamed message (event "message"), like Flask-SocketIO's
// send().
func (s *Socket) Send(msg any) error { return s.Emit("message", msg) }

// SendJSON sends a JSON message (event "json"), like Flask-SocketIO's
// send(data, json=True).
func (s *Socket) SendJSON(v any) error { return s.Emit("json", v) }

// Event returns the name of the event whose handler is running for this
// socket (Flask-SocketIO's request.event["message"]), or "" outside
// handlers; error handlers see the event that failed. With async handlers
// (WithAsyncHandlers, the default) several may run at once, and it may
// then be another running handler's event (or ""): read it first thing in
// a handler, or use WithAsyncHandlers(false) where it matters.
func (s *Socket) Event() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.event
}

// EventArgs returns the raw JSON arguments of that event
// (request.event["args"]; binary arguments appear as placeholders).
func (s *Socket) EventArgs() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventArgs
}

// ErrAckTimeout is returned by EmitWithAck when the client did not answer
// before the context ended.
var ErrAckTimeout = errors.New("socket.io: acknowledgement timeout")

// EmitWithAck sends event and waits for the client's acknowledgement; its
// arguments come back as plain values (float64, string, bool, nil, []any,
// map[string]any, and []byte for binary).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	ch := make(chan []any, 1)
	id := s.newAck(ch)
	defer func() {
		s.mu.Lock()
		delete(s.acks, id)
		s.mu.Unlock()
	}()
	if err := s.packet(parser.Event, id, true, append([]any{event}, args...)); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrAckTimeout, ctx.Err())
	case <-s.c.conn.Done():
		return nil, errors.New("socket.io: client disconnected")
	}
}

// EmitWithAckTimeout is EmitWithAck with a timeout instead of a context.
func (s *Socket) EmitWithAckTimeout(d time.Duration, event string, args ...any) ([]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.EmitWithAck(ctx, event, args...)
}

func (s *Socket) onAck(p *parser.Packet) {
	raw, err := decodeArgs(p)
	if err != nil {
		return
	}
	args, err := plainArgs(raw, p.Attachments)
	if err != nil {
		return
	}
	s.mu.Lock()
	ch := s.acks[p.ID]
	delete(s.acks, p.ID) // an id is answered once
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- args:
		default:
		}
	}
}

// Join adds the socket to rooms.
func (s *Socket) Join(rooms ...string) {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	if _, ok := s.n.sockets[s.id]; !ok {
		return
	}
	for _, r := range rooms {
		s.n.joinLocked(s, r)
	}
}

// Leave removes the socket from rooms.
func (s *Socket) Leave(rooms ...string) {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	for _, r := range rooms {
		s.n.leaveLocked(s, r)
	}
}

// Rooms returns the rooms of the socket (its own id included).
func (s *Socket) Rooms() []string {
	s.n.mu.RLock()
	defer s.n.mu.RUnlock()
	out := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		out = append(out, r)
	}
	return out
}

// To selects the sockets in rooms except this one: Node's
// socket.to(room).emit, and Flask-SocketIO's emit(..., to=room,
// include_self=False). Flask-SocketIO's emit(..., to=room) from a handler,
// which includes the sender when it is in the room, is
// s.Broadcast().To(room) (or s.To(room).IncludeSelf(true)).
func (s *Socket) To(rooms ...string) *Broadcast { return s.Broadcast().To(rooms...).IncludeSelf(false) }

// Broadcast selects every socket of the namespace, this one included:
// Flask-SocketIO's emit(..., broadcast=True). Add IncludeSelf(false) for
// include_self=False (Node's socket.broadcast.emit), To(rooms...) for
// emit(..., to=room).
func (s *Socket) Broadcast() *Broadcast { return &Broadcast{n: s.n, self: s.id} }

// Disconnect disconnects the socket from its namespace; the connection
// stays open for the client's other namespaces.
func (s *Socket) Disconnect() {
	s.c.sendPacket(&parser.Packet{Type: parser.Disconnect, Namespace: s.n.name})
	s.remove("server namespace disconnect")
}

// remove calls the disconnecting and disconnect handlers once, while the
// socket is still in its rooms (as python-socketio), then takes it out of
// its namespace.
func (s *Socket) remove(reason string) {
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	s.gone = true
	s.inbox, s.inboxBytes = nil, 0 // events not started are not run for a gone socket
	s.mu.Unlock()
	s.c.mu.Lock()
	s.c.sockets.remove(s) // the client may connect to the namespace again at once
	s.c.mu.Unlock()
	s.n.s.recovery.persist(s, reason) // before the handlers, and their reason's renaming
	s.n.mu.RLock()
	discing, h := s.n.onDiscing, s.n.onDisconnect
	s.n.mu.RUnlock()
	if s.n.s.pyReasons {
		reason = pythonReason(reason)
	}
	if discing != nil {
		discing(s, reason)
	}
	if h != nil {
		h(s, reason)
	}
	s.n.s.hooks.disconnected(s, reason)
	s.n.removeSocket(s)
	s.n.s.dropIfEmpty(s.n)
}

// dispatch runs the handler of one event.
func (s *Socket) dispatch(p *parser.Packet) {
	args, err := decodeArgs(p)
	if err != nil || len(args) == 0 {
		return
	}
	var event string
	if json.Unmarshal(args[0], &event) != nil {
		event = string(args[0]) // numeric event names
	}
	args = args[1:]
	s.n.s.hooks.eventReceived(s, event, p)
	s.mu.Lock()
	s.event, s.eventArgs = event, args
	s.eventSeq++
	seq := s.eventSeq
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.eventSeq == seq { // no handler started since
			s.event, s.eventArgs = "", nil
		}
		s.mu.Unlock()
	}()
	s.n.mu.RLock()
	h := s.n.handlers[event]
	catchAll := s.n.onAny
	onErr := s.n.onError
	s.n.mu.RUnlock()
	if onErr == nil {
		s.n.s.mu.RLock()
		onErr = s.n.s.onErrorDefault
		s.n.s.mu.RUnlock()
	}
	report := func(err error) {
		if onErr == nil {
			s.n.s.log.Warn("socket.io: event handler failed", "namespace", s.n.name, "event", event, "err", err)
			return
		}
		r := onErr(s, event, err)
		if p.HasID { // the error handler's result answers the event (Flask-SocketIO)
			s.packet(parser.Ack, p.ID, true, ackArgs(r))
		}
	}
	defer func() {
		if r := recover(); r != nil {
			report(fmt.Errorf("panic: %v", r))
		}
	}()
	var results []any
	switch {
	case h != nil:
		results, err = h.call(s, args, p.Attachments)
	case catchAll != nil:
		var vals []any
		vals, err = plainArgs(args, p.Attachments)
		if err == nil {
			catchAll(s, event, vals)
		}
	default:
		return
	}
	if err != nil {
		report(err)
		return
	}
	if p.HasID {
		if results == nil {
			results = []any{}
		}
		s.packet(parser.Ack, p.ID, true, results)
	}
}

// decodeArgs splits a packet's JSON array; attachments stay aside.
func decodeArgs(p *parser.Packet) ([]json.RawMessage, error) {
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil {
		return nil, err
	}
	return args, nil // placeholders are resolved per argument by the handler
}

// plainArgs decodes raw arguments into plain values, with []byte for
// binary attachments.
func plainArgs(args []json.RawMessage, atts [][]byte) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		v, err := plainArg(a, atts)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func plainArg(a json.RawMessage, atts [][]byte) (any, error) {
	var v any
	if err := json.Unmarshal(a, &v); err != nil {
		return nil, err
	}
	if len(atts) > 0 {
		return parser.Reconstruct(v, atts)
	}
	return v, nil
}
