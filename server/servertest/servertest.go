// Package servertest is the Go counterpart of Flask-SocketIO's
// test_client: a Socket.IO client that connects to a server.Server running
// in the same process (through a loopback httptest server) or to one
// listening elsewhere, over the WebSocket transport (the default,
// github.com/gorilla/websocket) or HTTP long-polling (Options.Transport).
// It emits with or without acks, answers the server's acks with what the
// test says (On), and records what it receives per namespace.
//
// It is a helper for tests: it pulls net/http/httptest and
// github.com/gorilla/websocket into the test binaries that import it, not
// into the server package.
package servertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/parser"
)

// DefaultMaxBuffered is the default of Options.MaxBuffered: 64 MiB.
const DefaultMaxBuffered = 64 << 20

const (
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 10 * time.Second
	closeTimeout     = 5 * time.Second
)

// ErrClosed is what Err returns once Close ended the connection.
var ErrClosed = errors.New("servertest: client closed")

// ErrOverflow is wrapped by Err when the server sent more than
// Options.MaxBuffered bytes the test had not taken yet, or one message
// larger than that.
var ErrOverflow = errors.New("servertest: over MaxBuffered")

// Options configure a client.
type Options struct {
	Query  url.Values  // extra query parameters of the handshake
	Header http.Header // extra headers of the handshake (and of every polling request)

	// Transport is WebSocket (the default) or Polling.
	Transport Transport

	// MaxBuffered bounds, in bytes, what the server can make the client
	// hold: one message (one polling response), and the events received
	// and not yet taken by Received or WaitFor. Beyond it the client drops
	// the connection and Err wraps ErrOverflow. 0 means
	// DefaultMaxBuffered.
	MaxBuffered int
}

// Received is one event the client received.
type Received struct {
	Namespace string
	Event     string
	Args      []any // plain JSON values; binary attachments as []byte
}

// record is a Received with what it counts against MaxBuffered.
type record struct {
	Received
	size int
}

type handlerKey struct{ ns, event string }

// Client is a test client. Close it when done.
type Client struct {
	hs      *httptest.Server
	conn    wireConn
	max     int
	ctx     context.Context
	stop    context.CancelFunc
	done    chan struct{} // closed when the reading goroutine ends
	closing atomic.Bool
	once    sync.Once

	dec parser.Decoder // the reading goroutine's

	wmu     sync.Mutex // serialises writes
	wclosed bool       // Close began: no more writes

	mu        sync.Mutex
	err       error // why the connection ended
	received  []record
	buffered  int             // bytes of received
	asked     map[string]bool // namespaces Connect was called for
	connected map[string]string
	connects  map[string]int // CONNECT acks received per namespace
	errors    map[string]json.RawMessage
	acks      map[uint64]chan []any
	ackSeq    uint64
	handlers  map[handlerKey]func(args []any) []any
	changed   chan struct{}
	replies   map[string]json.RawMessage // CONNECT replies (recovery.go)
}

// New starts srv on a loopback test server and connects a client to it;
// Close stops both. The client is connected to no namespace yet: call
// Connect.
func New(srv *server.Server, o Options) (*Client, error) {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	c, err := dial(hs.URL, o)
	if err != nil {
		hs.Close()
		return nil, err
	}
	c.hs = hs
	return c, nil
}

// Dial connects a client to the Socket.IO server listening at baseURL
// ("http://127.0.0.1:5000"; the path /socket.io/ is added). The client is
// connected to no namespace yet: call Connect.
func Dial(baseURL string, o Options) (*Client, error) { return dial(baseURL, o) }

func dial(baseURL string, o Options) (*Client, error) {
	limit := o.MaxBuffered
	if limit <= 0 {
		limit = DefaultMaxBuffered
	}
	u := endpoint(baseURL, o)
	ctx, stop := context.WithCancel(context.Background())
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	var (
		conn wireConn
		open []frame
		err  error
	)
	switch o.Transport {
	case WebSocket:
		conn, open, err = dialWebSocket(hctx, u, o, limit)
	case Polling:
		conn, open, err = dialPolling(hctx, u, o, limit)
	default:
		err = fmt.Errorf("servertest: unknown transport %d", o.Transport)
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("servertest: connect to %s: %w", baseURL, err)
	}
	c := &Client{conn: conn, max: limit, ctx: ctx, stop: stop, done: make(chan struct{}),
		asked: map[string]bool{}, connected: map[string]string{}, connects: map[string]int{},
		errors: map[string]json.RawMessage{}, acks: map[uint64]chan []any{},
		handlers: map[handlerKey]func([]any) []any{}, changed: make(chan struct{})}
	go c.read(open)
	return c, nil
}

func (c *Client) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// read is the reading goroutine: it runs until the connection ends.
func (c *Client) read(fs []frame) {
	defer close(c.done)
	err := c.readLoop(fs)
	if c.closing.Load() {
		err = ErrClosed
	}
	c.mu.Lock()
	c.err = err
	c.connected = map[string]string{}
	c.notify()
	c.mu.Unlock()
	c.conn.abort() // a connection the client gave up on (overflow, invalid packet)
}

func (c *Client) readLoop(fs []frame) error {
	for {
		for _, f := range fs {
			if err := c.frame(f); err != nil {
				return err
			}
		}
		var err error
		if fs, err = c.conn.next(c.ctx); err != nil {
			return fmt.Errorf("servertest: read: %w", err)
		}
	}
}

// frame takes one Engine.IO packet.
func (c *Client) frame(f frame) error {
	data := f.data
	if !f.binary {
		if len(data) == 0 {
			return nil
		}
		switch data[0] {
		case '1':
			return errors.New("servertest: the server closed the connection")
		case '2': // ping
			c.send([]frame{{data: []byte{'3'}}})
			return nil
		case '4':
			data = data[1:]
		default: // open, noop
			return nil
		}
	}
	p, err := c.dec.Add(data, f.binary)
	if err != nil {
		return fmt.Errorf("servertest: the server sent an invalid packet: %w", err)
	}
	if p == nil { // attachments to come
		return nil
	}
	return c.handle(p)
}

func (c *Client) handle(p *parser.Packet) error {
	c.mu.Lock()
	switch p.Type {
	case parser.Connect:
		if c.asked[p.Namespace] {
			var v struct{ Sid string }
			json.Unmarshal(p.Data, &v)
			c.connected[p.Namespace] = v.Sid
			c.connects[p.Namespace]++
			c.keepReply(p)
		}
	case parser.ConnectError:
		if c.asked[p.Namespace] {
			c.errors[p.Namespace] = p.Data
		}
	case parser.Disconnect:
		delete(c.connected, p.Namespace)
	case parser.Event, parser.BinaryEvent:
		return c.event(p) // unlocks
	case parser.Ack, parser.BinaryAck:
		args, err := decode(p)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		if ch := c.acks[p.ID]; ch != nil {
			ch <- args
			delete(c.acks, p.ID)
		}
	}
	c.notify()
	c.mu.Unlock()
	return nil
}

// event records an event, runs its handler and answers its ack. It is
// called with c.mu held and unlocks it.
func (c *Client) event(p *parser.Packet) error {
	args, err := decode(p)
	var ev string
	if err == nil && len(args) > 0 {
		ev, _ = args[0].(string)
	}
	if ev == "" {
		c.mu.Unlock()
		return fmt.Errorf("servertest: the server sent an event without a name: %q (%v)", p.Data, err)
	}
	size := len(p.Data)
	for _, a := range p.Attachments {
		size += len(a)
	}
	if c.buffered+size > c.max {
		c.mu.Unlock()
		return fmt.Errorf("%w: %d bytes of events not taken by the test", ErrOverflow, c.buffered+size)
	}
	c.received = append(c.received, record{Received{Namespace: p.Namespace, Event: ev, Args: args[1:]}, size})
	c.buffered += size
	h := c.handlers[handlerKey{p.Namespace, ev}]
	c.notify()
	c.mu.Unlock()
	var ret []any
	if h != nil {
		ret = h(slices.Clone(args[1:]))
	}
	if !p.HasID {
		return nil
	}
	if ret == nil {
		ret = []any{}
	}
	data, atts, err := parser.EncodeData(ret)
	if err != nil {
		return fmt.Errorf("servertest: the ack of %q: %w", ev, err)
	}
	c.write(&parser.Packet{Type: parser.Ack, Namespace: p.Namespace, ID: p.ID, HasID: true, Data: data, Attachments: atts})
	return nil // a failed write ends the connection: the next read tells
}

func decode(p *parser.Packet) ([]any, error) {
	var v any
	if err := json.Unmarshal(p.Data, &v); err != nil {
		return nil, fmt.Errorf("servertest: packet data: %w", err)
	}
	v, err := parser.Reconstruct(v, p.Attachments)
	if err != nil {
		return nil, err
	}
	l, _ := v.([]any)
	return l, nil
}

// send writes Engine.IO packets, one writer at a time.
func (c *Client) send(fs []frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.conn.send(ctx, fs)
}

// write sends a Socket.IO packet: its text, then its attachments.
func (c *Client) write(p *parser.Packet) error {
	fs := make([]frame, 0, 1+len(p.Attachments))
	fs = append(fs, frame{data: append([]byte{'4'}, parser.Encode(p)...)})
	for _, a := range p.Attachments {
		fs = append(fs, frame{data: a, binary: true})
	}
	return c.send(fs)
}

// wait waits until cond holds (checked under the lock) or the timeout.
func (c *Client) wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		case <-c.done:
			c.mu.Lock()
			ok := cond()
			c.mu.Unlock()
			return ok
		}
	}
}

// Connect joins namespace ns with an auth payload (nil for none) and
// waits for the answer: a nil error means connected, a *ConnectError the
// server's refusal.
func (c *Client) Connect(ns string, auth any) error {
	var data json.RawMessage
	if auth != nil {
		b, err := json.Marshal(auth)
		if err != nil {
			return fmt.Errorf("servertest: auth: %w", err)
		}
		data = b
	}
	c.mu.Lock()
	c.asked[ns] = true
	delete(c.errors, ns)
	before := c.connects[ns]
	c.mu.Unlock()
	if err := c.write(&parser.Packet{Type: parser.Connect, Namespace: ns, Data: data}); err != nil {
		return fmt.Errorf("servertest: connect to %s: %w", ns, err)
	}
	var refusal json.RawMessage
	ok := c.wait(10*time.Second, func() bool {
		refusal = c.errors[ns]
		return c.connects[ns] > before || refusal != nil
	})
	switch {
	case refusal != nil:
		ce := &ConnectError{}
		json.Unmarshal(refusal, ce)
		return ce
	case !ok:
		return fmt.Errorf("servertest: no answer to CONNECT %s (%v)", ns, c.Err())
	}
	return nil
}

// ConnectError is a server's refusal of a connection.
type ConnectError struct {
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *ConnectError) Error() string { return "connection refused: " + e.Message }

// SID returns the socket id in namespace ns ("" when not connected).
func (c *Client) SID(ns string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected[ns]
}

// IsConnected reports whether the client is connected to ns.
func (c *Client) IsConnected(ns string) bool { return c.SID(ns) != "" }

// Err tells why the connection ended: nil while it is open, ErrClosed
// after Close, otherwise what ended it (the server closed it, an invalid
// packet, more than MaxBuffered bytes: ErrOverflow).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// On sets what the client does when the server emits event in namespace
// ns: h is called with the event's arguments, and when the server asked
// for an acknowledgement (Socket.EmitWithAck), h's return value is the
// ack's arguments (nil: an ack with none). A nil h removes the handler.
// Events without a handler are acknowledged with no arguments. Every event
// is also recorded for Received and WaitFor, handled or not.
//
// h runs on the goroutine that reads the connection, one event at a time
// in the order they arrive: it may call Emit, but must not wait for the
// server (EmitWithAck, WaitFor), whose answers that goroutine reads.
func (c *Client) On(ns, event string, h func(args []any) []any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.handlers, handlerKey{ns, event})
		return
	}
	c.handlers[handlerKey{ns, event}] = h
}

// Emit sends event with args to namespace ns.
func (c *Client) Emit(ns, event string, args ...any) error {
	data, atts, err := parser.EncodeData(append([]any{event}, args...))
	if err != nil {
		return err
	}
	return c.write(&parser.Packet{Type: parser.Event, Namespace: ns, Data: data, Attachments: atts})
}

// EmitWithAck sends event and waits for the server's acknowledgement.
func (c *Client) EmitWithAck(ns string, timeout time.Duration, event string, args ...any) ([]any, error) {
	data, atts, err := parser.EncodeData(append([]any{event}, args...))
	if err != nil {
		return nil, err
	}
	ch := make(chan []any, 1)
	c.mu.Lock()
	c.ackSeq++
	id := c.ackSeq
	c.acks[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.acks, id)
		c.mu.Unlock()
	}
	if err := c.write(&parser.Packet{Type: parser.Event, Namespace: ns, ID: id, HasID: true, Data: data, Attachments: atts}); err != nil {
		forget()
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-t.C:
		forget()
		return nil, fmt.Errorf("servertest: no acknowledgement of %q within %s", event, timeout)
	case <-c.done:
		forget()
		select {
		case r := <-ch: // the ack came with the end of the connection
			return r, nil
		default:
		}
		return nil, fmt.Errorf("servertest: no acknowledgement of %q: %w", event, c.Err())
	}
}

// takeLocked removes and returns the events received in ns.
func (c *Client) takeLocked(ns string) []Received {
	var out []Received
	rest := c.received[:0]
	for _, r := range c.received {
		if r.Namespace == ns {
			out = append(out, r.Received)
			c.buffered -= r.size
		} else {
			rest = append(rest, r)
		}
	}
	clear(c.received[len(rest):])
	c.received = rest
	return out
}

// Received returns (and forgets) the events received in namespace ns.
func (c *Client) Received(ns string) []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeLocked(ns)
}

// WaitFor waits until an event named event arrived in ns, and returns the
// events received there so far (forgetting them).
func (c *Client) WaitFor(ns, event string, timeout time.Duration) ([]Received, error) {
	ok := c.wait(timeout, func() bool {
		for _, r := range c.received {
			if r.Namespace == ns && r.Event == event {
				return true
			}
		}
		return false
	})
	if !ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		why := ""
		if c.err != nil {
			why = " (" + c.err.Error() + ")"
		}
		return c.takeLocked(ns), fmt.Errorf("servertest: no %q in %s within %s%s", event, ns, timeout, why)
	}
	return c.Received(ns), nil
}

// Disconnect leaves namespace ns.
func (c *Client) Disconnect(ns string) error {
	c.mu.Lock()
	delete(c.connected, ns)
	c.mu.Unlock()
	return c.write(&parser.Packet{Type: parser.Disconnect, Namespace: ns})
}

// WaitDisconnected waits until the server disconnected ns.
func (c *Client) WaitDisconnected(ns string, timeout time.Duration) bool {
	return c.wait(timeout, func() bool { _, ok := c.connected[ns]; return !ok })
}

// Close closes the connection (a close frame, or a close packet over
// polling, then waits a little for the server to end it) and the test
// server New started. It can be called more than once.
func (c *Client) Close() {
	c.once.Do(func() {
		c.closing.Store(true)
		c.wmu.Lock()
		c.wclosed = true
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		c.conn.goodbye(ctx)
		cancel()
		c.wmu.Unlock()
		t := time.NewTimer(closeTimeout)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.stop()
		c.conn.abort()
		<-c.done
		c.conn.abort() // after the last read: frees the idle connections
		if c.hs != nil {
			c.hs.CloseClientConnections()
			c.hs.Close()
		}
	})
}
