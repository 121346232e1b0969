// Package servertest is the Go counterpart of Flask-SocketIO's
// test_client: a Socket.IO client that connects to a server.Server running
// in the same process (through a loopback httptest server and the real
// WebSocket transport), emits with or without acks, and records what it
// receives per namespace.
package servertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/parser"
)

// Options configure a client.
type Options struct {
	Query  url.Values  // extra query parameters of the handshake
	Header http.Header // extra handshake headers (cookies, auth tokens)
}

// Received is one event the client received.
type Received struct {
	Namespace string
	Event     string
	Args      []any // plain JSON values; binary attachments as []byte
}

// Client is a test client. Close it when done.
type Client struct {
	hs   *httptest.Server
	ws   *websocket.Conn
	dec  parser.Decoder
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}

	mu        sync.Mutex
	received  []Received
	connected map[string]string // namespace -> sid
	connects  map[string]int    // CONNECT acks received per namespace
	errors    map[string]json.RawMessage
	acks      map[uint64]chan []any
	ackSeq    uint64
	changed   chan struct{}
}

// New starts srv on a loopback test server and connects a client to it.
// The client is connected to no namespace yet: call Connect.
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
// ("http://127.0.0.1:5000"; the path /socket.io/ is added), over the
// WebSocket transport. The client is connected to no namespace yet: call
// Connect.
func Dial(baseURL string, o Options) (*Client, error) { return dial(baseURL, o) }

func dial(baseURL string, o Options) (*Client, error) {
	q := url.Values{}
	for k, v := range o.Query {
		q[k] = v
	}
	q.Set("EIO", "4")
	q.Set("transport", "websocket")
	u := "ws" + strings.TrimPrefix(strings.TrimSuffix(baseURL, "/"), "http") + "/socket.io/?" + q.Encode()
	ctx, stop := context.WithCancel(context.Background())
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: o.Header})
	if err != nil {
		stop()
		return nil, fmt.Errorf("servertest: connect: %w", err)
	}
	ws.SetReadLimit(-1)
	c := &Client{ws: ws, ctx: ctx, stop: stop, done: make(chan struct{}),
		connected: map[string]string{}, connects: map[string]int{}, errors: map[string]json.RawMessage{}, acks: map[uint64]chan []any{}, changed: make(chan struct{})}
	if _, _, err := ws.Read(dctx); err != nil { // Engine.IO open packet
		ws.Close(websocket.StatusNormalClosure, "")
		stop()
		return nil, fmt.Errorf("servertest: handshake: %w", err)
	}
	go c.read()
	return c, nil
}

func (c *Client) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Client) read() {
	defer close(c.done)
	for {
		typ, p, err := c.ws.Read(c.ctx)
		if err != nil {
			c.mu.Lock()
			c.connected = map[string]string{}
			c.notify()
			c.mu.Unlock()
			return
		}
		binary := typ == websocket.MessageBinary
		if !binary {
			if len(p) == 0 {
				continue
			}
			switch p[0] {
			case '2': // ping
				c.ws.Write(c.ctx, websocket.MessageText, []byte("3"))
				continue
			case '4':
				p = p[1:]
			default:
				continue
			}
		}
		pkt, err := c.dec.Add(p, binary)
		if err != nil || pkt == nil {
			continue
		}
		c.handle(pkt)
	}
}

func (c *Client) handle(p *parser.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.notify()
	switch p.Type {
	case parser.Connect:
		var v struct{ Sid string }
		json.Unmarshal(p.Data, &v)
		c.connected[p.Namespace] = v.Sid
		c.connects[p.Namespace]++
	case parser.ConnectError:
		c.errors[p.Namespace] = p.Data
	case parser.Disconnect:
		delete(c.connected, p.Namespace)
	case parser.Event, parser.BinaryEvent:
		args, err := decode(p)
		if err != nil || len(args) == 0 {
			return
		}
		ev, _ := args[0].(string)
		c.received = append(c.received, Received{Namespace: p.Namespace, Event: ev, Args: args[1:]})
		if p.HasID { // acknowledge with nothing
			c.writeLocked(&parser.Packet{Type: parser.Ack, Namespace: p.Namespace, ID: p.ID, HasID: true, Data: json.RawMessage("[]")})
		}
	case parser.Ack, parser.BinaryAck:
		args, err := decode(p)
		if err != nil {
			return
		}
		if ch := c.acks[p.ID]; ch != nil {
			ch <- args
			delete(c.acks, p.ID)
		}
	}
}

func decode(p *parser.Packet) ([]any, error) {
	var v any
	if err := json.Unmarshal(p.Data, &v); err != nil {
		return nil, err
	}
	v, err := parser.Reconstruct(v, p.Attachments)
	if err != nil {
		return nil, err
	}
	l, _ := v.([]any)
	return l, nil
}

func (c *Client) writeLocked(p *parser.Packet) error {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, append([]byte{'4'}, parser.Encode(p)...)); err != nil {
		return err
	}
	for _, a := range p.Attachments {
		if err := c.ws.Write(ctx, websocket.MessageBinary, a); err != nil {
			return err
		}
	}
	return nil
}

// wait waits until cond holds (checked under the lock) or the timeout.
func (c *Client) wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
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
		case <-deadline:
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
			return err
		}
		data = b
	}
	c.mu.Lock()
	delete(c.errors, ns)
	before := c.connects[ns]
	err := c.writeLocked(&parser.Packet{Type: parser.Connect, Namespace: ns, Data: data})
	c.mu.Unlock()
	if err != nil {
		return err
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
		return errors.New("servertest: no answer to CONNECT")
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

// Emit sends event with args to namespace ns.
func (c *Client) Emit(ns, event string, args ...any) error {
	data, atts, err := parser.EncodeData(append([]any{event}, args...))
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(&parser.Packet{Type: parser.Event, Namespace: ns, Data: data, Attachments: atts})
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
	err = c.writeLocked(&parser.Packet{Type: parser.Event, Namespace: ns, ID: id, HasID: true, Data: data, Attachments: atts})
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-time.After(timeout):
		return nil, errors.New("servertest: acknowledgement timeout")
	}
}

// Received returns (and forgets) the events received in namespace ns.
func (c *Client) Received(ns string) []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out, rest []Received
	for _, r := range c.received {
		if r.Namespace == ns {
			out = append(out, r)
		} else {
			rest = append(rest, r)
		}
	}
	c.received = rest
	return out
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
		return c.Received(ns), fmt.Errorf("servertest: no %q in %s within %s", event, ns, timeout)
	}
	return c.Received(ns), nil
}

// Disconnect leaves namespace ns.
func (c *Client) Disconnect(ns string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.connected, ns)
	return c.writeLocked(&parser.Packet{Type: parser.Disconnect, Namespace: ns})
}

// WaitDisconnected waits until the server disconnected ns.
func (c *Client) WaitDisconnected(ns string, timeout time.Duration) bool {
	return c.wait(timeout, func() bool { _, ok := c.connected[ns]; return !ok })
}

// Close closes the connection and the test server (New).
func (c *Client) Close() {
	c.ws.Close(websocket.StatusNormalClosure, "")
	c.stop()
	<-c.done
	if c.hs != nil {
		c.hs.CloseClientConnections()
		c.hs.Close()
	}
}
