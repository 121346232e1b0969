package servertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Transport selects the Engine.IO transport a client uses.
type Transport int

const (
	// WebSocket opens a WebSocket from the handshake on
	// (transport=websocket), as python-socketio's client with
	// transports=['websocket']. It is the default.
	WebSocket Transport = iota
	// Polling uses HTTP long-polling only and never upgrades: a GET
	// waits for the server's packets, each write is one POST.
	Polling
)

// String returns the transport's name in the Engine.IO query.
func (t Transport) String() string {
	if t == Polling {
		return "polling"
	}
	return "websocket"
}

// frame is one Engine.IO packet: a text packet with its type byte
// ("4hello", "2"), or the payload of a binary message packet.
type frame struct {
	data   []byte
	binary bool
}

// wireConn is an Engine.IO connection on one transport. next is called by
// the client's reading goroutine only; send and goodbye by writers
// serialised by the client; abort may be called at any time.
type wireConn interface {
	// next returns the next packets the server sent.
	next(ctx context.Context) ([]frame, error)
	// send writes packets, in order.
	send(ctx context.Context, fs []frame) error
	// goodbye tells the server the client leaves (a close frame, a close
	// packet); the reading goroutine then sees the end of the connection.
	goodbye(ctx context.Context)
	// abort ends the connection at once: a blocked next returns.
	abort()
}

// endpoint returns the handshake URL of the server at baseURL.
func endpoint(baseURL string, o Options) string {
	q := url.Values{}
	for k, v := range o.Query {
		q[k] = v
	}
	q.Set("EIO", "4")
	q.Set("transport", o.Transport.String())
	return strings.TrimSuffix(baseURL, "/") + "/socket.io/?" + q.Encode()
}

// ------------------------------------------------------------- WebSocket

type wsConn struct{ c *websocket.Conn }

// dialWebSocket opens the WebSocket and returns it with the packets
// received so far (the open packet first).
func dialWebSocket(ctx context.Context, u string, o Options, limit int) (wireConn, []frame, error) {
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: handshakeTimeout}
	c, resp, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(u, "http"), o.Header)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return nil, nil, fmt.Errorf("servertest: websocket handshake: %w (HTTP %d %q)", err, resp.StatusCode, b)
		}
		return nil, nil, fmt.Errorf("servertest: websocket handshake: %w", err)
	}
	c.SetReadLimit(int64(limit))
	w := &wsConn{c}
	open, err := w.next(ctx)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("servertest: open packet: %w", err)
	}
	return w, open, nil
}

func (w *wsConn) next(ctx context.Context) ([]frame, error) {
	d, _ := ctx.Deadline() // none: the zero time, no deadline
	w.c.SetReadDeadline(d)
	typ, p, err := w.c.ReadMessage()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			err = fmt.Errorf("%w: %w", ErrOverflow, err)
		}
		return nil, err
	}
	return []frame{{data: p, binary: typ == websocket.BinaryMessage}}, nil
}

func (w *wsConn) send(ctx context.Context, fs []frame) error {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(writeTimeout)
	}
	w.c.SetWriteDeadline(d)
	for _, f := range fs {
		typ := websocket.TextMessage
		if f.binary {
			typ = websocket.BinaryMessage
		}
		if err := w.c.WriteMessage(typ, f.data); err != nil {
			return fmt.Errorf("servertest: websocket write: %w", err)
		}
	}
	return nil
}

func (w *wsConn) goodbye(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(writeTimeout)
	}
	w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), d)
}

func (w *wsConn) abort() { w.c.Close() }

// --------------------------------------------------------------- polling

type pollConn struct {
	url    string // with the sid
	header http.Header
	tr     *http.Transport
	hc     *http.Client
	limit  int

	mu     sync.Mutex
	cancel context.CancelFunc // of the GET under way
	done   bool
}

// dialPolling makes the polling handshake and returns the session with
// the packets of the handshake's answer (the open packet first).
func dialPolling(ctx context.Context, u string, o Options, limit int) (wireConn, []frame, error) {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 2}
	p := &pollConn{url: u, header: o.Header, tr: tr, hc: &http.Client{Transport: tr}, limit: limit}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	fs, err := p.get(hctx)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, nil, fmt.Errorf("servertest: polling handshake: %w", err)
	}
	sid, err := openSid(fs)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, nil, err
	}
	p.url += "&sid=" + url.QueryEscape(sid)
	return p, fs, nil
}

// openSid reads the session id from the open packet, the first of fs.
func openSid(fs []frame) (string, error) {
	if len(fs) == 0 || fs[0].binary || len(fs[0].data) == 0 || fs[0].data[0] != '0' {
		return "", errors.New("servertest: the handshake's answer is not an open packet")
	}
	var open struct{ Sid string }
	if err := json.Unmarshal(fs[0].data[1:], &open); err != nil || open.Sid == "" {
		return "", fmt.Errorf("servertest: open packet %q: no sid", fs[0].data)
	}
	return open.Sid, nil
}

func (p *pollConn) request(ctx context.Context, method string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url, r)
	if err != nil {
		return nil, err
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: HTTP %d %q", method, resp.StatusCode, b)
	}
	return resp, nil
}

// get makes one long-polling GET and splits its payload.
func (p *pollConn) get(ctx context.Context) ([]frame, error) {
	resp, err := p.request(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(p.limit)+1))
	if err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	if len(body) > p.limit {
		return nil, fmt.Errorf("%w: a polling payload over %d bytes", ErrOverflow, p.limit)
	}
	return splitPayload(body)
}

// splitPayload splits a polling payload: packets separated by 0x1e,
// binary ones as "b" + base64.
func splitPayload(body []byte) ([]frame, error) {
	var fs []frame
	for _, rec := range bytes.Split(body, []byte{0x1e}) {
		if len(rec) > 0 && rec[0] == 'b' {
			d, err := base64.StdEncoding.AppendDecode(nil, rec[1:])
			if err != nil {
				return nil, fmt.Errorf("servertest: binary packet: %w", err)
			}
			fs = append(fs, frame{data: d, binary: true})
			continue
		}
		fs = append(fs, frame{data: rec})
	}
	return fs, nil
}

func (p *pollConn) next(ctx context.Context) ([]frame, error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return nil, errors.New("servertest: connection closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	p.mu.Unlock()
	defer cancel()
	return p.get(ctx)
}

func (p *pollConn) send(ctx context.Context, fs []frame) error {
	var body []byte
	for i, f := range fs {
		if i > 0 {
			body = append(body, 0x1e)
		}
		if f.binary {
			body = append(body, 'b')
			body = base64.StdEncoding.AppendEncode(body, f.data)
		} else {
			body = append(body, f.data...)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	resp, err := p.request(ctx, http.MethodPost, body)
	if err != nil {
		return fmt.Errorf("servertest: polling write: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return nil
}

func (p *pollConn) goodbye(ctx context.Context) { p.send(ctx, []frame{{data: []byte{'1'}}}) }

func (p *pollConn) abort() {
	p.mu.Lock()
	p.done = true
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	p.tr.CloseIdleConnections()
}
