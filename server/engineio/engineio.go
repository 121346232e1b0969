// Package engineio is an Engine.IO v4 server: HTTP long-polling and
// WebSocket transports, the polling-to-WebSocket upgrade, heartbeats,
// maxPayload, CORS and the error responses the official engine.io-protocol
// test suite expects. Package server builds Socket.IO on top of it.
package engineio

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/internal/netpoll"
	"github.com/siobridge/siobridge/internal/ws"
)

// Options configure a Server. Zero values take the defaults of the
// reference engine.io server.
type Options struct {
	PingInterval time.Duration // default 25s
	PingTimeout  time.Duration // default 20s
	MaxPayload   int           // bytes; default 1_000_000
	// Transports allowed; default polling and websocket.
	Transports []string
	// DisableUpgrades keeps polling sessions on polling.
	DisableUpgrades bool
	// CORS, when set, answers cross-origin requests from its origins, and
	// only from them: requests whose Origin is not listed are refused (400
	// "Not an accepted origin."); "*" accepts every origin. Without CORS
	// and CheckOrigin, only same-origin requests (and requests without an
	// Origin header) are accepted, as python-engineio does.
	CORS *CORS
	// CheckOrigin, when set, decides which Origin headers are accepted
	// (instead of CORS.Origins or the same-origin default); requests
	// without an Origin header do not reach it. Accepted origins get the
	// CORS answer headers.
	CheckOrigin func(origin string, r *http.Request) bool
	// Cookie, when set, is sent with the handshake (io=<sid>).
	Cookie *Cookie
	// SendQueueSize bounds the packets waiting for one client (default
	// 1024); a client that falls further behind is disconnected with
	// reason "send queue full", so it never delays the others.
	SendQueueSize int
	// SendQueueBytes bounds the bytes waiting for one client, on either
	// transport, the Engine.IO control packets (pongs to the client's
	// pings) included; each queued packet also counts
	// QueueEntryOverhead bytes for its bookkeeping. A packet that would
	// take the queue over the bound disconnects the client with reason
	// "send queue full" (logged), unless the queue is empty: one packet
	// larger than the bound still goes out. Default: 4 MiB, or twice
	// MaxPayload when that is larger, so that a client's MaxPayload-sized
	// ping can always be answered, and a client is dropped once it is
	// about one maximum Linux socket send buffer (tcp_wmem, 4 MiB) behind
	// in user space too.
	SendQueueBytes int
	// PerMessageDeflate enables WebSocket compression (default off). A
	// compressed message is inflated up to MaxPayload, but deflate lets
	// about 1 KB expand to 1 MB, so a client may make the server inflate
	// and hold ~1,000 times what it sent: enable it for trusted clients or
	// with a small MaxPayload.
	PerMessageDeflate bool
	// CompressionThreshold: polling responses larger than this are gzip
	// compressed for clients that accept it (default 1024 bytes; -1
	// disables HTTP compression).
	CompressionThreshold int
	// AllowRequest can refuse a handshake (403, code 4 "Forbidden").
	AllowRequest func(r *http.Request) error
	Logger       *slog.Logger
}

// DefaultSendQueueBytes is the least default of Options.SendQueueBytes.
const DefaultSendQueueBytes = 4 << 20

// QueueEntryOverhead is what one queued packet counts against
// Options.SendQueueBytes besides its bytes: the slice headers and
// bookkeeping it costs, so that many tiny packets (pongs) are bounded too.
const QueueEntryOverhead = 64

// CORS configures cross-origin answers.
type CORS struct {
	Origins     []string // "*" allows every origin
	Credentials bool
}

// Cookie configures the session cookie (python-engineio's cookie option).
// Its zero value is the safe cookie: HttpOnly and SameSite=Lax, as
// python-engineio's defaults.
type Cookie struct {
	Name   string // default "io"
	Path   string // default "/"
	Domain string // default: none (the request's host only)
	MaxAge int    // seconds; 0: a session cookie, < 0: delete it
	Secure bool   // sent over HTTPS only
	// ScriptAccess drops HttpOnly, letting the page's scripts read the
	// cookie (default false: HttpOnly).
	ScriptAccess bool
	// SameSite defaults to http.SameSiteLaxMode.
	SameSite http.SameSite
}

// httpCookie is the cookie carrying sid, with the defaults filled in.
func (ck Cookie) httpCookie(sid string) *http.Cookie {
	if ck.Name == "" {
		ck.Name = "io"
	}
	if ck.Path == "" {
		ck.Path = "/"
	}
	if ck.SameSite == 0 {
		ck.SameSite = http.SameSiteLaxMode
	}
	return &http.Cookie{Name: ck.Name, Value: sid, Path: ck.Path, Domain: ck.Domain, MaxAge: ck.MaxAge,
		Secure: ck.Secure, HttpOnly: !ck.ScriptAccess, SameSite: ck.SameSite}
}

// Message is one Engine.IO message.
type Message struct {
	Data   []byte
	Binary bool
	// control marks an Engine.IO control packet (ping, noop, close) in the
	// WebSocket queue; Data then holds the whole packet.
	control bool
	// frame is the WebSocket frame, prepared once for a broadcast.
	frame []byte
}

// Error codes of Engine.IO handshake failures.
const (
	codeTransportUnknown = 0
	codeSessionUnknown   = 1
	codeBadHandshake     = 2
	codeBadRequest       = 3
	codeForbidden        = 4
	codeBadVersion       = 5
)

var codeMessages = map[int]string{
	codeTransportUnknown: "Transport unknown",
	codeSessionUnknown:   "Session ID unknown",
	codeBadHandshake:     "Bad handshake method",
	codeBadRequest:       "Bad request",
	codeForbidden:        "Forbidden",
	codeBadVersion:       "Unsupported protocol version",
}

// Server is an Engine.IO server; it is an http.Handler.
type Server struct {
	o      Options
	log    *slog.Logger
	onConn func(*Conn)

	mu       sync.Mutex
	sessions map[string]*Conn
	closing  bool
	wg       sync.WaitGroup

	// WebSocket machinery, started with the first WebSocket (websocket.go)
	pollOnce  sync.Once
	stopOnce  sync.Once // stopPoller
	poll      *netpoll.Poller
	pollErr   error
	flushq    *flushList
	flushStop chan struct{}
	flushWG   sync.WaitGroup
	wsLive    sync.WaitGroup // WebSocket connections not yet closed
}

// NewServer returns a server with options o.
func NewServer(o Options) *Server {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1_000_000
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{"polling", "websocket"}
	}
	if o.SendQueueSize <= 0 {
		o.SendQueueSize = 1024
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = max(DefaultSendQueueBytes, 2*min(o.MaxPayload, math.MaxInt/2))
	}
	if o.CompressionThreshold == 0 {
		o.CompressionThreshold = 1024
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{o: o, log: log, sessions: map[string]*Conn{}}
}

// OnConnection sets the function called for every new session, before any
// of its messages is delivered. Set it before serving.
func (s *Server) OnConnection(fn func(c *Conn)) { s.onConn = fn }

// Count returns the number of open sessions.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown closes every session ("server shutting down") and waits for
// their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*Conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith("server shutting down", true)
	}
	done := make(chan struct{})
	go func() {
		s.wsLive.Wait() // close frames written, or their linger over
		s.wg.Wait()     // blocking writers, added while their connection was live
		s.stopPoller()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) fail(w http.ResponseWriter, code int) {
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	s.debug("engineio: request refused", "status", status, "code", code, "message", codeMessages[code])
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": codeMessages[code]})
}

// debug logs an engine-level event (handshake, upgrade, close, refused
// request) at debug level, as python-engineio's engineio_logger; nothing
// is built when the level is off.
func (s *Server) debug(msg string, args ...any) {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug(msg, args...)
	}
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	c := s.o.CORS
	if c == nil {
		if s.o.CheckOrigin == nil {
			return
		}
		c = &CORS{} // headers for the origins CheckOrigin accepts
	}
	origin := r.Header.Get("Origin")
	allowed := ""
	if s.o.CheckOrigin != nil && origin != "" {
		allowed = origin // accepted by originAllowed
	}
	for _, o := range c.Origins {
		if o == "*" {
			allowed = "*"
			if c.Credentials && origin != "" {
				allowed = origin
			}
			break
		}
		if o == origin {
			allowed = origin
			break
		}
	}
	if allowed == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", allowed)
	if allowed != "*" {
		h.Add("Vary", "Origin")
	}
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		}
	}
}

// ServeHTTP serves the Engine.IO endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		s.refuseOrigin(w, r)
		return
	}
	s.cors(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.Query()
	transport := q.Get("transport")
	if !slices.Contains(s.o.Transports, transport) {
		s.fail(w, codeTransportUnknown)
		return
	}
	if q.Get("EIO") != "4" {
		s.fail(w, codeBadVersion)
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if r.Method != http.MethodGet {
			s.fail(w, codeBadHandshake)
			return
		}
		if s.o.AllowRequest != nil {
			if err := s.o.AllowRequest(r); err != nil {
				s.fail(w, codeForbidden)
				return
			}
		}
		s.handshake(w, r, transport)
		return
	}
	s.mu.Lock()
	c := s.sessions[sid]
	s.mu.Unlock()
	if c == nil {
		s.fail(w, codeSessionUnknown)
		return
	}
	if time.Now().UnixNano() > c.expires.Load() {
		c.closeWith("ping timeout", false)
		s.fail(w, codeSessionUnknown)
		return
	}
	if transport == "websocket" {
		c.upgrade(w, r)
		return
	}
	if probe := c.upgradeInProgress(); probe != nil {
		// A polling request during an upgrade: the client may have sent
		// "5" on the WebSocket before this request, so first read what the
		// WebSocket holds, as a single-threaded server would have.
		probe.pump()
	}
	if c.transportName() != "polling" {
		s.fail(w, codeBadRequest)
		return
	}
	switch r.Method {
	case http.MethodGet:
		c.pollGet(w, r)
	case http.MethodPost:
		c.pollPost(w, r)
	default:
		s.fail(w, codeBadRequest)
	}
}

// NewID returns a 20-character session id (URL-safe base64 of 15 random
// bytes, like Node's base64id).
func NewID() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) handshake(w http.ResponseWriter, r *http.Request, transport string) {
	c := newConn(s, r, transport)
	upgrades := []string{}
	if transport == "polling" && !s.o.DisableUpgrades && slices.Contains(s.o.Transports, "websocket") {
		upgrades = append(upgrades, "websocket")
	}
	open := openJSON(c.id, upgrades, s.o.PingInterval.Milliseconds(), s.o.PingTimeout.Milliseconds(), s.o.MaxPayload)
	if s.o.Cookie != nil {
		http.SetCookie(w, s.o.Cookie.httpCookie(c.id))
	}
	if s.isClosing() {
		s.fail(w, codeBadRequest)
		return
	}

	// The session is registered (where Shutdown finds it) only once
	// OnConnection has set its callbacks: nothing else can reach it before,
	// as its id is not out yet.
	if transport == "websocket" {
		u, resp, err := ws.Upgrade(w, r, s.o.PerMessageDeflate)
		if err != nil {
			return
		}
		wc := s.attach(u, c.onWSMessage)
		wc.setOnEnd(c.wsEnded)
		// the open packet goes out with the 101 response, in one write
		resp = append(resp, wc.frame(Message{Data: append([]byte{'0'}, open...), control: true})...)
		if _, err := u.Conn.Write(resp); err != nil {
			u.Conn.Close()
			wc.finish()
			return
		}
		c.mu.Lock()
		c.ws = wc
		c.wsActive = true
		c.mu.Unlock()
		if s.onConn != nil {
			s.onConn(c)
		}
		if s.register(c) {
			s.debug("engineio: session opened", "sid", c.id, "transport", transport, "remote", r.RemoteAddr)
			c.startHeartbeat()
		} else {
			c.closeWith("server shutting down", true)
		}
		wc.start(u.Conn) // writes what is queued, the close packet included
		return
	}
	if s.onConn != nil {
		s.onConn(c)
	}
	if !s.register(c) {
		c.closeWith("server shutting down", false)
		s.fail(w, codeBadRequest)
		return
	}
	s.debug("engineio: session opened", "sid", c.id, "transport", transport, "remote", r.RemoteAddr)
	c.startHeartbeat()
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Write(append([]byte{'0'}, open...))
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// register adds c to the sessions; false once Shutdown has begun.
func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[c.id] = c
	return true
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.sessions, c.id)
	s.mu.Unlock()
}

// ---------------------------------------------------------------- session

// Conn is one Engine.IO session.
type Conn struct {
	s   *Server
	id  string
	req *http.Request

	onMessage func(data []byte, binary bool)
	onClose   func(reason string)
	// dmu serializes the handling of incoming packets: a polling POST that
	// began before an upgrade may still be delivering when the WebSocket's
	// first messages arrive.
	dmu sync.Mutex

	mu           sync.Mutex
	transport    string
	queue        []Message     // polling: packets waiting for a GET
	queueBytes   int           // polling: their cost against SendQueueBytes
	notify       chan struct{} // polling: wakes the waiting GET
	getActive    bool
	postBusy     bool
	ws           *wsConn
	wsActive     bool // the WebSocket carries the session (after handshake or upgrade)
	upgrading    bool
	probe        *wsConn // the WebSocket of the upgrade in progress
	probed       bool    // its probe was answered
	closed       bool
	closeOnce    sync.Once
	done         chan struct{}
	pingTimer    *time.Timer // sends the next ping
	deadTimer    *time.Timer // fires when the pong is late
	awaitingPong bool        // a ping is out and deadTimer armed
	// expires is when the session times out without a pong (unix ns):
	// requests arriving later are refused even if the timer has not fired yet.
	expires atomic.Int64
}

func newConn(s *Server, r *http.Request, transport string) *Conn {
	c := &Conn{s: s, id: NewID(), req: sessionRequest(r), transport: transport, done: make(chan struct{})}
	if transport == "polling" {
		c.notify = make(chan struct{}, 1) // only a polling GET waits on it
	}
	return c
}

// ID returns the session id.
func (c *Conn) ID() string { return c.id }

// Request returns the handshake request, trimmed to what a session keeps
// (its headers up to 16 KB; no body, no context): see sessionRequest.
func (c *Conn) Request() *http.Request { return c.req }

// Transport returns "polling" or "websocket".
func (c *Conn) Transport() string { return c.transportName() }

func (c *Conn) transportName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

// OnMessage sets the message callback; call it from OnConnection.
// Messages of one session are delivered one at a time.
func (c *Conn) OnMessage(fn func(data []byte, binary bool)) { c.onMessage = fn }

// OnClose sets the close callback; call it from OnConnection.
func (c *Conn) OnClose(fn func(reason string)) { c.onClose = fn }

// Done is closed when the session ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// ErrClosed is returned by Send on a closed session.
var ErrClosed = errors.New("engineio: session closed")

// Send queues one message without blocking. data may be shared between
// sessions and must not be modified afterwards.
func (c *Conn) Send(data []byte, binary bool) error {
	return c.SendBatch([]Message{{Data: data, Binary: binary}})
}

// SendBatch queues several messages together, in order.
func (c *Conn) SendBatch(msgs []Message) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.wsActive && !c.upgrading {
		w := c.ws
		c.mu.Unlock()
		return c.sendWS(w, msgs)
	}
	add := 0
	for _, m := range msgs {
		add += queueCost(1 + len(m.Data))
	}
	if c.overLocked(len(msgs), add) {
		c.mu.Unlock()
		c.closeWith("send queue full", false)
		return ErrClosed
	}
	for _, m := range msgs {
		c.pushLocked(Message{Data: append([]byte{'4'}, m.Data...), Binary: m.Binary})
	}
	c.mu.Unlock()
	c.wake()
	return nil
}

// sendPacket queues a control packet (ping, noop, close...).
func (c *Conn) sendPacket(p string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.wsActive && !c.upgrading {
		w := c.ws
		c.mu.Unlock()
		c.sendWS(w, []Message{{Data: []byte(p), control: true}})
		return
	}
	if c.overLocked(1, queueCost(len(p))) {
		c.mu.Unlock()
		c.closeWith("send queue full", false)
		return
	}
	c.pushLocked(Message{Data: []byte(p)})
	c.mu.Unlock()
	c.wake()
}

// queueCost is what a queued packet of n bytes counts against
// SendQueueBytes.
func queueCost(n int) int { return n + QueueEntryOverhead }

// overLocked reports whether n more packets costing add bytes would take
// the polling queue over its bounds (an empty queue takes any one batch
// that fits SendQueueSize).
func (c *Conn) overLocked(n, add int) bool {
	if len(c.queue)+n > c.s.o.SendQueueSize {
		return true
	}
	return len(c.queue) > 0 && c.queueBytes+add > c.s.o.SendQueueBytes
}

// pushLocked appends m to the polling queue.
func (c *Conn) pushLocked(m Message) {
	c.queue = append(c.queue, m)
	c.queueBytes += queueCost(len(m.Data))
}

// takeQueueLocked empties the polling queue and returns what it held.
func (c *Conn) takeQueueLocked() []Message {
	q := c.queue
	c.queue, c.queueBytes = nil, 0
	return q
}

func (c *Conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Writable reports whether a message sent now would go out right away:
// the WebSocket queue is empty, or a polling GET is waiting. Volatile
// messages are dropped for sessions that are not writable.
func (c *Conn) Writable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if c.wsActive && !c.upgrading {
		return c.ws.queued() == 0
	}
	return c.getActive && len(c.queue) == 0
}

// Close closes the session ("forced close").
func (c *Conn) Close() error {
	c.closeWith("forced close", true)
	return nil
}

// closeWith ends the session once: sendClose queues a close packet first.
func (c *Conn) closeWith(reason string, sendClose bool) {
	c.closeOnce.Do(func() {
		c.s.debug("engineio: session closed", "sid", c.id, "reason", reason)
		if reason == "send queue full" {
			c.s.log.Warn("engineio: disconnecting a client that does not keep up", "sid", c.id, "reason", reason,
				"send_queue_size", c.s.o.SendQueueSize, "send_queue_bytes", c.s.o.SendQueueBytes)
		}
		c.mu.Lock()
		w := c.ws
		wsTransport := c.wsActive && !c.upgrading
		c.stopTimersLocked()
		c.closed = true
		if !sendClose && reason != "transport close" {
			c.takeQueueLocked() // nothing more for a client that timed out or misbehaved
		}
		if sendClose && !wsTransport {
			c.pushLocked(Message{Data: []byte{'1'}})
		}
		polling := c.transport == "polling"
		c.mu.Unlock()
		c.wake()
		if polling {
			// a closed polling session stays findable for a moment so that
			// a GET racing with the close gets its last packets (then 400)
			time.AfterFunc(c.s.o.PingTimeout, func() { c.s.remove(c) })
		} else {
			c.s.remove(c)
		}
		close(c.done)
		if w != nil {
			switch {
			case reason == "send queue full":
				w.abort() // a stalled client gets nothing more
			case sendClose && wsTransport:
				w.closeWith(ws.AppendClose(nil, ws.StatusNormal), w.frame(Message{Data: []byte{'1'}, control: true}))
			default:
				w.closeWith(ws.AppendClose(nil, ws.StatusNormal), nil)
			}
		}
		if c.onClose != nil {
			c.onClose(reason)
		}
	})
}

// ---------------------------------------------------------------- heartbeat

func (c *Conn) extend() {
	c.expires.Store(time.Now().Add(c.s.o.PingInterval + c.s.o.PingTimeout).UnixNano())
}

// startHeartbeat arms the ping timer. The heartbeat holds timers, not a
// goroutine: an idle session costs no goroutine of its own.
func (c *Conn) startHeartbeat() {
	c.extend()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pingTimer = time.AfterFunc(c.s.o.PingInterval, c.ping)
}

// ping sends a ping and arms the pong deadline. Both timers are made once
// per session and re-armed, so a heartbeat allocates nothing.
func (c *Conn) ping() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.awaitingPong = true
	if c.deadTimer == nil {
		c.deadTimer = time.AfterFunc(c.s.o.PingTimeout, func() { c.closeWith("ping timeout", false) })
	} else {
		c.deadTimer.Reset(c.s.o.PingTimeout)
	}
	c.mu.Unlock()
	c.sendPacket("2")
}

// pong cancels the pong deadline and schedules the next ping.
func (c *Conn) pong() {
	c.extend()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.awaitingPong {
		return
	}
	if !c.deadTimer.Stop() {
		return // the timeout already fired
	}
	c.awaitingPong = false
	c.pingTimer.Reset(c.s.o.PingInterval)
}

func (c *Conn) stopTimersLocked() {
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.deadTimer != nil {
		c.deadTimer.Stop()
	}
}

// ---------------------------------------------------------------- packets

// handlePacket handles one incoming Engine.IO packet; false means the
// packet was invalid and the session must close.
func (c *Conn) handlePacket(p []byte, binary bool) bool {
	if binary {
		c.deliver(p, true)
		return true
	}
	if len(p) == 0 {
		return false
	}
	switch p[0] {
	case '1':
		// the waiting (or next) GET ends with a noop
		c.mu.Lock()
		c.pushLocked(Message{Data: []byte{'6'}})
		c.mu.Unlock()
		c.closeWith("transport close", false)
	case '2': // a client ping (probe is handled by the upgrade)
		c.sendPacket("3" + string(p[1:]))
	case '3':
		c.pong()
	case '4':
		c.deliver(p[1:], false)
	case '6':
	default:
		return false
	}
	return true
}

func (c *Conn) deliver(data []byte, binary bool) {
	if c.onMessage != nil {
		c.onMessage(data, binary)
	}
}

// ---------------------------------------------------------------- polling

func (c *Conn) pollGet(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.getActive {
		c.mu.Unlock()
		c.s.fail(w, codeBadRequest)
		c.closeWith("transport error", true)
		return
	}
	c.getActive = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.getActive = false
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			q := c.takeQueueLocked()
			c.mu.Unlock()
			c.s.writePayload(w, r, q)
			return
		}
		closed := c.closed
		upgraded := c.transport != "polling"
		probed := c.upgrading && c.probed
		c.mu.Unlock()
		if closed {
			c.s.fail(w, codeSessionUnknown)
			return
		}
		if upgraded || probed { // an upgrade is under way or done: end this GET cleanly
			c.s.writePayload(w, r, []Message{{Data: []byte{'6'}}})
			return
		}
		select {
		case <-c.notify:
		case <-r.Context().Done():
			return
		}
	}
}

// writePayload writes packets joined by the record separator; binary
// packets as "b" + base64; gzip-compressed above the threshold for clients
// that accept it.
func (s *Server) writePayload(w http.ResponseWriter, r *http.Request, q []Message) {
	n := 0
	for _, m := range q {
		n += len(m.Data)*4/3 + 4
	}
	buf := make([]byte, 0, n)
	for i, m := range q {
		if i > 0 {
			buf = append(buf, 0x1e)
		}
		if m.Binary {
			buf = append(buf, 'b')
			buf = base64.StdEncoding.AppendEncode(buf, m.Data[1:]) // drop the '4' type byte
		} else {
			buf = append(buf, m.Data...)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	if t := s.o.CompressionThreshold; t >= 0 && len(buf) > t && acceptsGzip(r) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(buf)
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		buf = z.Bytes()
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)))
	w.Write(buf)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Conn) pollPost(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.s.fail(w, codeSessionUnknown)
		return
	}
	if c.postBusy {
		c.mu.Unlock()
		c.s.fail(w, codeBadRequest)
		c.closeWith("transport error", true)
		return
	}
	c.postBusy = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.postBusy = false
		c.mu.Unlock()
	}()
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(c.s.o.MaxPayload)+1))
	if err != nil {
		c.s.fail(w, codeBadRequest)
		c.closeWith("transport error", false)
		return
	}
	if len(body) > c.s.o.MaxPayload {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		c.closeWith("transport error", false)
		return
	}
	if err := checkPayload(body); err != nil {
		c.s.fail(w, codeBadRequest)
		c.closeWith("parse error", false)
		return
	}
	c.dmu.Lock()
	ok := true
	eachPacket(body, func(data []byte, binary bool) bool {
		if c.isClosed() {
			return false // closed by a packet before (or its consequences): the rest is moot
		}
		ok = c.handlePacket(data, binary)
		return ok
	})
	c.dmu.Unlock()
	if !ok {
		c.s.fail(w, codeBadRequest)
		c.closeWith("parse error", false)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte("ok"))
}

// decodePayload splits a polling payload: packets separated by 0x1e,
// binary ones as "b" + base64.
func decodePayload(body []byte) ([]Message, error) {
	if err := checkPayload(body); err != nil {
		return nil, err
	}
	out := make([]Message, 0, bytes.Count(body, []byte{0x1e})+1)
	eachPacket(body, func(data []byte, binary bool) bool {
		out = append(out, Message{Data: bytes.Clone(data), Binary: binary})
		return true
	})
	return out, nil
}

// A polling payload is read in two passes that allocate no more than the
// payload's size whatever its packet count: checkPayload validates every
// packet (nothing is handled from an invalid payload), eachPacket then
// hands them over one at a time.

// eachRecord calls fn for every 0x1e-separated record of body, until fn
// returns false.
func eachRecord(body []byte, fn func(rec []byte) bool) {
	for {
		i := bytes.IndexByte(body, 0x1e)
		if i < 0 {
			fn(body)
			return
		}
		if !fn(body[:i]) {
			return
		}
		body = body[i+1:]
	}
}

// checkPayload reports the first invalid packet of a polling payload.
func checkPayload(body []byte) error {
	var (
		scratch []byte // decoded binary packets, reused
		err     error
	)
	eachRecord(body, func(rec []byte) bool {
		switch {
		case len(rec) == 0:
			err = errors.New("engineio: empty packet in payload")
		case rec[0] == 'b':
			if n := base64.StdEncoding.DecodedLen(len(rec) - 1); cap(scratch) < n {
				scratch = make([]byte, n)
			}
			if _, derr := base64.StdEncoding.Decode(scratch[:cap(scratch)], rec[1:]); derr != nil {
				err = fmt.Errorf("engineio: invalid base64 packet: %w", derr)
			}
		case rec[0] < '0' || rec[0] > '6':
			err = fmt.Errorf("engineio: unknown packet type %q", rec[0])
		}
		return err == nil
	})
	return err
}

// eachPacket calls fn with every packet of a payload that checkPayload
// accepted, until fn returns false. A binary packet's data is decoded
// into its own slice, a message's ("4...") is a copy the callee may
// keep; other packets alias body.
func eachPacket(body []byte, fn func(data []byte, binary bool) bool) {
	eachRecord(body, func(rec []byte) bool {
		switch rec[0] {
		case 'b':
			data := make([]byte, base64.StdEncoding.DecodedLen(len(rec)-1))
			n, _ := base64.StdEncoding.Decode(data, rec[1:])
			return fn(data[:n], true)
		case '4':
			return fn(bytes.Clone(rec), false)
		}
		return fn(rec, false)
	})
}

// ---------------------------------------------------------------- websocket

// sendWS queues msgs on the session's WebSocket, all or none.
func (c *Conn) sendWS(w *wsConn, msgs []Message) error {
	var arr [4][]byte
	frames := arr[:0]
	for _, m := range msgs {
		frames = append(frames, w.frame(m))
	}
	err := w.enqueue(frames...)
	if errors.Is(err, errQueueFull) {
		c.closeWith("send queue full", false)
		return ErrClosed
	}
	return err
}

// onWSMessage handles a message of the session's WebSocket.
func (c *Conn) onWSMessage(op byte, p []byte) bool {
	c.dmu.Lock()
	ok := c.handlePacket(p, op == ws.OpBinary)
	c.dmu.Unlock()
	if !ok {
		c.closeWith("parse error", false)
		return false
	}
	return true
}

// wsEnded is told when the session's WebSocket ends.
func (c *Conn) wsEnded(reason string) { c.closeWith(reason, false) }

// upgrade handles a WebSocket request for a polling session: the probe
// (2probe -> 3probe, the pending GET gets a noop), then "5" moves the
// session to the WebSocket.
func (c *Conn) upgrade(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != "polling" || c.upgrading || c.closed || c.s.o.DisableUpgrades {
		c.mu.Unlock()
		// a second WebSocket for the same session: accept and close it
		if u, err := ws.Accept(w, r, false); err == nil {
			u.Conn.Write(ws.AppendClose(nil, ws.StatusPolicyViolation))
			u.Conn.Close()
		}
		return
	}
	c.upgrading = true
	c.mu.Unlock()
	// The 101 goes out only once the probe is registered (below): a polling
	// request the client sends after its first WebSocket frames must find
	// it, to read those frames first.
	u, resp, err := ws.Upgrade(w, r, c.s.o.PerMessageDeflate)
	if err != nil {
		c.mu.Lock()
		c.endUpgradeLocked()
		c.mu.Unlock()
		return
	}
	wc := c.s.attach(u, nil)
	timer := time.AfterFunc(upgradeTimeout, func() { c.abortUpgrade(wc) })
	wc.onMsg = func(op byte, p []byte) bool {
		if op != ws.OpText {
			c.abortUpgrade(wc)
			return false
		}
		switch string(p) {
		case "2probe":
			// answered at once, before anything else of this session is
			// handled (a racing GET must not overtake it)
			wc.writeNow(wc.frame(Message{Data: []byte("3probe"), control: true}))
			c.mu.Lock()
			c.probed = true // polling GETs are now answered with a noop
			c.mu.Unlock()
			c.wake()
			return true
		case "5":
			timer.Stop()
			if !c.completeUpgrade(wc) {
				wc.closeWith(ws.AppendClose(nil, ws.StatusNormal), nil)
				return false
			}
			wc.onMsg = c.onWSMessage
			wc.setOnEnd(c.wsEnded)
			return true
		}
		c.abortUpgrade(wc)
		return false
	}
	wc.started = make(chan struct{})
	c.mu.Lock()
	c.probe = wc
	c.mu.Unlock()
	wc.setOnEnd(func(string) {
		if !c.abortUpgrade(wc) {
			c.closeWith("transport close", false) // it had become the session's transport
		}
	})
	if _, err := u.Conn.Write(resp); err != nil {
		timer.Stop()
		close(wc.started) // start, which would close it, does not run
		u.Conn.Close()
		wc.finish()
		c.abortUpgrade(wc)
		return
	}
	wc.start(u.Conn)
}

// completeUpgrade makes wc the session's transport, moving the packets
// that waited for a polling GET onto it.
func (c *Conn) completeUpgrade(wc *wsConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	pending := c.takeQueueLocked()
	var frames [][]byte
	for _, m := range pending {
		switch {
		case m.Binary:
			frames = append(frames, wc.frame(Message{Data: m.Data[1:], Binary: true}))
		case len(m.Data) > 0 && m.Data[0] == '4':
			frames = append(frames, wc.frame(Message{Data: m.Data[1:]}))
		case len(m.Data) == 1 && m.Data[0] == '6':
			// a noop only ends a polling request
		default:
			frames = append(frames, wc.frame(Message{Data: m.Data, control: true}))
		}
	}
	if len(frames) > 0 {
		wc.add(false, frames...) // already within the session's bounds
	}
	c.ws = wc
	c.transport = "websocket"
	c.wsActive = true
	c.endUpgradeLocked()
	c.s.debug("engineio: session upgraded", "sid", c.id, "transport", "websocket")
	c.wake() // a GET still waiting is released with a noop
	return true
}

// endUpgradeLocked marks the upgrade in progress as over.
func (c *Conn) endUpgradeLocked() {
	c.upgrading = false
	c.probed = false
	c.probe = nil
}

// upgradeInProgress returns the probing WebSocket, or nil.
func (c *Conn) upgradeInProgress() *wsConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.upgrading {
		return nil
	}
	return c.probe
}

// abortUpgrade closes a probing WebSocket that did not complete the
// upgrade; false if wc already carries the session.
func (c *Conn) abortUpgrade(wc *wsConn) bool {
	c.mu.Lock()
	if c.ws == wc {
		c.mu.Unlock()
		return false
	}
	c.endUpgradeLocked()
	c.mu.Unlock()
	wc.closeWith(ws.AppendClose(nil, ws.StatusProtocolError), nil)
	return true
}

// String describes the session for logs.
func (c *Conn) String() string {
	return fmt.Sprintf("engineio session %s (%s)", c.id, c.transportName())
}
