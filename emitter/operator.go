package emitter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/bufpool"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// Operator selects a namespace and sockets, and carries emit flags. Every
// method returns a new Operator; an Operator is never modified, so it can be
// kept and shared between goroutines.
type Operator struct {
	e        *Emitter
	ns       string
	rooms    []string
	except   []string
	volatile bool
	compress *bool
	timeout  time.Duration
}

func (o *Operator) clone() *Operator {
	c := *o
	c.rooms = append([]string(nil), o.rooms...)
	c.except = append([]string(nil), o.except...)
	return &c
}

// Of returns an operator for namespace ns, keeping the other settings.
func (o *Operator) Of(ns string) *Operator {
	c := o.clone()
	c.ns = op.NamespaceOrRoot(ns)
	return c
}

// To adds rooms (room names or socket ids) to the selection: the sockets in
// any of them are targeted.
func (o *Operator) To(rooms ...string) *Operator {
	c := o.clone()
	c.rooms = appendUnique(c.rooms, rooms)
	return c
}

// In is the same as To.
func (o *Operator) In(rooms ...string) *Operator { return o.To(rooms...) }

// Except excludes the sockets in rooms (room names or socket ids; python
// peers only exclude socket ids).
func (o *Operator) Except(rooms ...string) *Operator {
	c := o.clone()
	c.except = appendUnique(c.except, rooms)
	return c
}

// Volatile marks emits as droppable for clients that cannot take them now
// (node peers).
func (o *Operator) Volatile() *Operator {
	c := o.clone()
	c.volatile = true
	return c
}

// Compress sets the per-message compression flag (node peers).
func (o *Operator) Compress(on bool) *Operator {
	c := o.clone()
	c.compress = &on
	return c
}

// Timeout sets how long EmitWithAck waits for replies (DefaultAckTimeout
// when unset). The context's deadline also bounds the wait.
func (o *Operator) Timeout(d time.Duration) *Operator {
	c := o.clone()
	c.timeout = d
	return c
}

func appendUnique(dst, add []string) []string {
	for _, a := range add {
		dup := false
		for _, d := range dst {
			if d == a {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, a)
		}
	}
	return dst
}

func (o *Operator) target() op.Target {
	return op.Target{Namespace: o.ns, Rooms: o.rooms, Except: o.except}
}

func (o *Operator) emitOp(event string, args []any) (*op.Emit, error) {
	m := &op.Emit{}
	if err := o.fillEmit(m, event, args); err != nil {
		return nil, err
	}
	return m, nil
}

// fillEmit sets m to an emit of event with args to o's selection.
func (o *Operator) fillEmit(m *op.Emit, event string, args []any) error {
	if err := op.ValidateEvent(event); err != nil {
		return err
	}
	norm, err := op.NormalizeArgs(args)
	if err != nil {
		return err
	}
	return o.fillEmitAsIs(m, event, norm)
}

// fillEmitAsIs is fillEmit without normalizing args.
func (o *Operator) fillEmitAsIs(m *op.Emit, event string, norm []any) error {
	if err := op.ValidateEvent(event); err != nil {
		return err
	}
	*m = op.Emit{
		Target:   o.target(),
		Event:    event,
		Args:     norm,
		Volatile: o.volatile,
		Compress: o.compress,
	}
	return nil
}

func (o *Operator) describe() string {
	s := "namespace " + o.ns
	if len(o.rooms) > 0 {
		s += fmt.Sprintf(" rooms %q", o.rooms)
	}
	if len(o.except) > 0 {
		s += fmt.Sprintf(" except %q", o.except)
	}
	return s
}

// Emit sends event with args to the selected sockets. Arguments may be any
// value op.Normalize accepts; []byte values arrive as binary.
func (o *Operator) Emit(ctx context.Context, event string, args ...any) error {
	err := o.emitAsIs(ctx, event, args)
	if errors.Is(err, dialect.ErrNoFastPath) {
		var m *op.Emit
		if m, err = o.emitOp(event, args); err == nil {
			err = o.e.publish(ctx, m)
		}
	}
	if err != nil {
		return fmt.Errorf("emitter: emit %q to %s: %w", event, o.describe(), err)
	}
	return nil
}

// emitAsIs publishes an emit of args as they are, on a dialect that writes
// plain data (and plain structs) straight into its encoding
// (dialect.EmitAppender) without normalizing them first; it returns
// dialect.ErrNoFastPath, having published nothing, when the dialect
// cannot, or has no such path.
func (o *Operator) emitAsIs(ctx context.Context, event string, args []any) error {
	app, ok := o.e.d.(dialect.EmitAppender)
	if !ok {
		return dialect.ErrNoFastPath
	}
	var e op.Emit
	if err := o.fillEmitAsIs(&e, event, args); err != nil {
		return err
	}
	msgs := make([]queue.Message, 1)
	buf, err := app.AppendEmit(bufpool.Get(64+len(event)+16*len(args)), &msgs[0], &e, nil)
	if err != nil {
		bufpool.Put(buf)
		return err
	}
	msgs[0].Data = buf
	return o.e.send(ctx, msgs)
}

// Send emits msg as an unnamed message (event "message"), like
// Flask-SocketIO's send().
func (o *Operator) Send(ctx context.Context, msg any) error {
	return o.Emit(ctx, "message", msg)
}

// EmitWithAck emits event and waits for the clients' acknowledgements,
// routed back through the queue. It returns when every expected reply
// arrived (python: the single target socket's; node: every client of every
// server, as counted by the servers), or when the timeout or ctx ends: then
// the replies that did arrive are returned with an error wrapping
// ErrAckTimeout (or ctx's error).
func (o *Operator) EmitWithAck(ctx context.Context, event string, args ...any) ([]Reply, error) {
	replies, err := o.emitWithAck(ctx, event, args)
	if err != nil {
		return replies, fmt.Errorf("emitter: emit %q with ack to %s: %w", event, o.describe(), err)
	}
	return replies, nil
}

func (o *Operator) emitWithAck(ctx context.Context, event string, args []any) ([]Reply, error) {
	e := o.e
	m, err := o.emitOp(event, args)
	if err != nil {
		return nil, err
	}
	timeout := o.timeout
	if timeout <= 0 {
		timeout = DefaultAckTimeout
	}
	m.Ack = &op.AckRequest{ID: e.d.NewAckID(), Timeout: timeout}
	// Refuse what the dialect cannot encode before subscribing to anything.
	msgs, err := e.d.Encode(m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := e.subscribeReplies(ctx, o.ns); err != nil {
		return nil, err
	}
	w := &ackWait{servers: -1, done: make(chan struct{})}
	if ch, count := e.serverCount(o.ns); ch != "" {
		w.servers = 0 // unknown: wait for the timeout
		if count != nil {
			n, err := count(ctx, ch)
			if err != nil {
				return nil, fmt.Errorf("count servers: %w", err)
			}
			if n == 0 {
				return nil, fmt.Errorf("no server is listening on %s: %w", ch, ErrAckTimeout)
			}
			w.servers = n
		}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.pending[m.Ack.ID] = w
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.pending, m.Ack.ID)
		e.mu.Unlock()
	}()
	if err := e.send(ctx, msgs); err != nil {
		return nil, err
	}
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	replies, complete := w.result()
	if complete {
		return replies, nil
	}
	e.ackTimeouts.Add(1)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return replies, fmt.Errorf("%d replies after %s: %w", len(replies), timeout, ErrAckTimeout)
	}
	if ctx.Err() != nil {
		return replies, ctx.Err()
	}
	return replies, ErrClosed
}

// SocketsJoin makes the selected sockets join rooms.
func (o *Operator) SocketsJoin(ctx context.Context, rooms ...string) error {
	if err := o.e.publish(ctx, &op.Join{Target: o.target(), Rooms: rooms}); err != nil {
		return fmt.Errorf("emitter: join %s to %q: %w", o.describe(), rooms, err)
	}
	return nil
}

// SocketsLeave makes the selected sockets leave rooms.
func (o *Operator) SocketsLeave(ctx context.Context, rooms ...string) error {
	if err := o.e.publish(ctx, &op.Leave{Target: o.target(), Rooms: rooms}); err != nil {
		return fmt.Errorf("emitter: leave %s from %q: %w", o.describe(), rooms, err)
	}
	return nil
}

// DisconnectSockets disconnects the selected sockets from the namespace;
// with close the underlying connections are closed too (node peers).
func (o *Operator) DisconnectSockets(ctx context.Context, close bool) error {
	if err := o.e.publish(ctx, &op.Disconnect{Target: o.target(), Close: close}); err != nil {
		return fmt.Errorf("emitter: disconnect %s: %w", o.describe(), err)
	}
	return nil
}

// CloseRoom removes every socket of the operator's namespace from room.
func (o *Operator) CloseRoom(ctx context.Context, room string) error {
	if err := o.e.publish(ctx, &op.CloseRoom{Namespace: o.ns, Room: room}); err != nil {
		return fmt.Errorf("emitter: close room %q in namespace %s: %w", room, o.ns, err)
	}
	return nil
}

// ServerSideEmit sends event to the servers themselves (node peers:
// io.on(event) handlers on every server).
func (o *Operator) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	norm, err := op.NormalizeArgs(args)
	if err == nil {
		err = o.e.publish(ctx, &op.ServerSideEmit{Namespace: o.ns, Event: event, Args: norm})
	}
	if err != nil {
		return fmt.Errorf("emitter: server-side emit %q in namespace %s: %w", event, o.ns, err)
	}
	return nil
}
