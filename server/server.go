// Package server is a Socket.IO v5 server (on Engine.IO v4, package
// engineio) with the Flask-SocketIO feature set: namespaces, event handlers
// with typed arguments whose return values become the acknowledgement,
// connect handlers that can refuse a client, rooms, broadcasting with
// include-self / skip-sid, acknowledgements in both directions, and
// emitting from any goroutine.
//
//	srv := server.New()
//	srv.On("/", "chat", func(s *server.Socket, msg string) string {
//		s.To("lobby").Emit("chat", msg)
//		return "delivered"
//	})
//	http.Handle("/socket.io/", srv)
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"sync"
	"time"

	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	eio            engineio.Options
	connectTimeout time.Duration
	log            *slog.Logger
	sessions       SessionStore
	sessionID      func(*http.Request) string
	sharedSession  bool // WithManageSession(false)
	alwaysConnect  bool
	backlogEvents  int
	backlogBytes   int
	syncHandlers   bool // WithAsyncHandlers(false)
	pyReasons      bool // WithPythonDisconnectReasons
	maxHandlers    int  // WithMaxConcurrentHandlers
	maxNamespaces  int
	adapter        *adapterConfig // WithAdapter
	hooks          []*Hooks       // WithHooks
	parser         parser.Parser  // WithParser

	recovery *recoveryConfig // WithConnectionStateRecovery
}

// WithPing sets the heartbeat (defaults 25 s interval, 20 s timeout).
func WithPing(interval, timeout time.Duration) Option {
	return func(c *config) { c.eio.PingInterval, c.eio.PingTimeout = interval, timeout }
}

// WithMaxPayload bounds one HTTP body or WebSocket frame (default 1 MB).
func WithMaxPayload(n int) Option { return func(c *config) { c.eio.MaxPayload = n } }

// WithCORS accepts cross-origin requests from origins ("*" for any) and
// answers them with the CORS headers; requests from other origins are
// refused on both transports (400 "Not an accepted origin.", as
// python-engineio's cors_allowed_origins). Without WithCORS or
// WithOriginCheck only same-origin requests, and requests without an Origin
// header (non-browser clients), are accepted. A list replaces the default:
// list the server's own origin too when its pages connect. With no origins,
// the default stays.
func WithCORS(credentials bool, origins ...string) Option {
	return func(c *config) { c.eio.CORS = &engineio.CORS{Origins: origins, Credentials: credentials} }
}

// WithOriginCheck makes fn decide which Origin headers are accepted (a
// request without one does not reach it); accepted origins get the CORS
// headers. It takes precedence over WithCORS's list.
func WithOriginCheck(fn func(origin string, r *http.Request) bool) Option {
	return func(c *config) { c.eio.CheckOrigin = fn }
}

// WithTransports restricts the transports ("polling", "websocket").
func WithTransports(t ...string) Option { return func(c *config) { c.eio.Transports = t } }

// WithConnectTimeout closes connections that join no namespace in time
// (default 45 s).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithCookie sends the Engine.IO session cookie.
func WithCookie(ck engineio.Cookie) Option { return func(c *config) { c.eio.Cookie = &ck } }

// WithEngineOptions sets the Engine.IO options that are not zero in o,
// over those set by the options before it: options compose, the last one
// to set a field wins, and a zero field (0, false, nil, "") keeps what was
// set before (WithPing(3*time.Second, 2*time.Second) followed by
// WithEngineOptions(engineio.Options{PerMessageDeflate: true}) keeps the
// 3 s ping interval).
func WithEngineOptions(o engineio.Options) Option {
	return func(c *config) {
		dst, src := reflect.ValueOf(&c.eio).Elem(), reflect.ValueOf(o)
		for i := range src.NumField() {
			if f := src.Field(i); !f.IsZero() && dst.Type().Field(i).IsExported() {
				dst.Field(i).Set(f)
			}
		}
	}
}

// WithAllowRequest makes fn decide whether a handshake is accepted: an
// error refuses it (403, Engine.IO code 4 "Forbidden"), as python-engineio's
// and Node's allowRequest.
func WithAllowRequest(fn func(r *http.Request) error) Option {
	return func(c *config) { c.eio.AllowRequest = fn }
}

// WithAlwaysConnect accepts connections before the connect handler runs;
// when the handler then returns an error, the socket is disconnected
// (Flask-SocketIO's always_connect=True). By default a connection is only
// accepted once the handler returned nil.
func WithAlwaysConnect() Option { return func(c *config) { c.alwaysConnect = true } }

// WithPythonDisconnectReasons gives the disconnect handlers
// python-socketio's reasons ("client disconnect", "server disconnect",
// "transport close", "ping timeout", "transport error") instead of
// socket.io's (Node's, the default); docs/api-parity.md lists the
// mapping.
func WithPythonDisconnectReasons() Option { return func(c *config) { c.pyReasons = true } }

// pythonReason is python-socketio's name of a socket.io disconnect reason.
// An Engine.IO close packet from the client is "transport close" here
// (python-socketio says "client disconnect").
func pythonReason(reason string) string {
	switch reason {
	case "client namespace disconnect":
		return "client disconnect"
	case "transport close", "ping timeout", "transport error":
		return reason
	case "parse error":
		return "transport error"
	default: // server namespace disconnect, forced close, server shutting down, send queue full
		return "server disconnect"
	}
}

// DefaultMaxConcurrentHandlers is the default number of handlers of one
// socket that may run at once with async handlers (WithAsyncHandlers).
const DefaultMaxConcurrentHandlers = 16

// WithAsyncHandlers chooses how the handlers of one socket's events run,
// as Flask-SocketIO's async_handlers. With true (the default, as
// Flask-SocketIO and python-socketio), each event's handler starts at
// once in its own goroutine, so a slow handler does not delay the next
// events; at most WithMaxConcurrentHandlers of them (default 16) run at
// once per socket, the next events wait in the socket's backlog
// (WithEventBacklog). Their order is then not guaranteed. With false, a
// socket's handlers run one after the other, in arrival order (as Node
// runs a socket's listeners). Either way the handlers run off the
// connection's read loop and different sockets' handlers run in parallel.
func WithAsyncHandlers(async bool) Option { return func(c *config) { c.syncHandlers = !async } }

// WithMaxConcurrentHandlers bounds the handlers of one socket that run at
// once with async handlers (zero keeps DefaultMaxConcurrentHandlers).
// Each costs a goroutine (a few KB) plus what the handler holds.
func WithMaxConcurrentHandlers(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxHandlers = n
		}
	}
}

// WithEventBacklog bounds the events of one socket that wait for their
// handler while the socket's handlers run: at most events
// events and bytes bytes (payloads and attachments, plus 128 bytes per
// event); zero keeps a default (DefaultBacklogEvents,
// DefaultBacklogBytes). A client whose events arrive faster than its
// handlers finish, past the bound, is disconnected (reason "forced close")
// with a warning in the log: its events are never dropped silently, and
// neither its memory nor its handlers outlive it. When a socket
// disconnects, the events still waiting are dropped; the handler running
// finishes. (python-socketio and Node have no such backlog: Node runs
// handlers without waiting for the previous one, python-socketio starts a
// task per event without a bound.)
func WithEventBacklog(events, bytes int) Option {
	return func(c *config) {
		if events > 0 {
			c.backlogEvents = events
		}
		if bytes > 0 {
			c.backlogBytes = bytes
		}
	}
}

// DefaultMaxNamespaces is the default number of namespaces one client
// may join at once (WithMaxNamespaces).
const DefaultMaxNamespaces = 64

// WithMaxNamespaces bounds the namespaces one client may join at once
// (default DefaultMaxNamespaces): a CONNECT past it is refused with
// CONNECT_ERROR "Too many namespaces". A client's sockets cost memory for
// a few bytes sent, and are looked up by a scan, so their number is kept
// small. Zero keeps the default.
func WithMaxNamespaces(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxNamespaces = n
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Server is a Socket.IO server and an http.Handler.
type Server struct {
	eio            *engineio.Server
	connectTimeout time.Duration
	log            *slog.Logger
	sessions       SessionStore
	sessionID      func(*http.Request) string
	sharedSession  bool // Get and Set read and write sessions (WithManageSession(false))
	alwaysConnect  bool
	backlogEvents  int // bounds of a socket's event backlog
	backlogBytes   int
	handlerLimit   int           // handlers of one socket running at once
	pyReasons      bool          // disconnect reasons in python-socketio's words
	maxNamespaces  int           // per client
	queue          queueCounters // ConsumeQueue and WithAdapter
	member         *member       // WithAdapter; nil for a single process
	serverEvents   sync.Map      // namespace + "\x00" + event -> OnServerSideEmit handler
	hooks          hookSet       // WithHooks, AddHooks
	parser         parser.Parser // WithParser
	recovery       *recovery     // WithConnectionStateRecovery; nil when off

	stats serverCounters // Stats

	mu             sync.RWMutex
	onErrorDefault errorHandler
	nsps           map[string]*Namespace
	dynamic        []dynamicNamespace
	wg             sync.WaitGroup
	run            runState // the HTTP servers of Run and Serve
}

type dynamicNamespace struct {
	match func(string) bool
	setup func(*Namespace)
}

// New returns a server; namespace "/" always exists.
func New(opts ...Option) *Server {
	c := config{connectTimeout: 45 * time.Second, backlogEvents: DefaultBacklogEvents, backlogBytes: DefaultBacklogBytes,
		maxNamespaces: DefaultMaxNamespaces, maxHandlers: DefaultMaxConcurrentHandlers, parser: parser.JSON}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = c.eio.Logger // set by WithEngineOptions
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.eio.Logger = c.log
	s := &Server{eio: engineio.NewServer(c.eio), connectTimeout: c.connectTimeout, log: c.log, nsps: map[string]*Namespace{},
		sessions: c.sessions, sessionID: c.sessionID, sharedSession: c.sharedSession, alwaysConnect: c.alwaysConnect,
		backlogEvents: c.backlogEvents, backlogBytes: c.backlogBytes, handlerLimit: c.maxHandlers, maxNamespaces: c.maxNamespaces,
		pyReasons: c.pyReasons, parser: c.parser, recovery: newRecovery(c.recovery)}
	if c.syncHandlers {
		s.handlerLimit = 1
	}
	s.hooks.update(func([]*Hooks) []*Hooks { return c.hooks })
	if c.adapter != nil {
		s.member = newMember(s, *c.adapter, true)
	}
	s.Of("/")
	s.recovery.start(s)
	if s.member != nil {
		s.member.start() // after recovery.start, which the member's loop reads
	}
	s.eio.OnConnection(s.onConnection)
	return s
}

// ServeHTTP serves Socket.IO; mount it at "/socket.io/".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.eio.ServeHTTP(w, r) }

// Limits of NewHTTPServer.
const (
	// MaxHeaderBytes bounds a request's header (Node's default, 16 KB).
	MaxHeaderBytes = 16 << 10
	// ReadHeaderTimeout is the time a client has to send a request's
	// header: a connection that sends it slower (slowloris) is closed.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes keep-alive connections idle between requests.
	IdleTimeout = 120 * time.Second
)

// NewHTTPServer returns an http.Server for addr and h with the limits a
// public server needs, which http.ListenAndServe does not set:
// ReadHeaderTimeout, IdleTimeout and MaxHeaderBytes (larger headers get
// 431). No ReadTimeout or WriteTimeout: a polling GET waits up to the ping
// interval and a WebSocket lives on; the bodies of polling requests are
// bounded by WithMaxPayload. Serve it on Server.Listen's listener, which
// refuses clients beyond the descriptor limit at once.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes}
}

// Shutdown stops the listeners of Run and Serve, disconnects every
// client and waits for handlers and the HTTP requests in flight to
// finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	waitHTTP, over := s.run.shutdownHTTP(ctx) // no new connections from here
	defer over()                              // lets Run return
	err := s.eio.Shutdown(ctx)
	if s.member != nil {
		s.member.close()
	}
	if rerr := s.recovery.stop(ctx); rerr != nil {
		waitHTTP()
		return rerr
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		waitHTTP()
		return ctx.Err()
	}
	if herr := waitHTTP(); err == nil && herr != nil {
		err = fmt.Errorf("socket.io: shutdown: %w", herr)
	}
	return err
}

// Of returns namespace name, creating it if needed (a name that a dynamic
// namespace pattern accepts is created as that dynamic namespace).
func (s *Server) Of(name string) *Namespace {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	if n := s.lookup(name); n != nil {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nsps[name]
	if n == nil {
		n = newNamespace(s, name)
		s.nsps[name] = n
		s.member.addNamespace(name)
	}
	return n
}

// OfFunc accepts namespaces whose name match accepts (dynamic namespaces);
// setup configures each one when a client first connects to it. A dynamic
// namespace is removed when its last socket leaves (Node's
// cleanupEmptyChildNamespaces), so that clients cannot fill the server
// with namespaces: the next client creates it again and setup runs again.
// Namespaces made with Of or On are never removed.
func (s *Server) OfFunc(match func(name string) bool, setup func(*Namespace)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynamic = append(s.dynamic, dynamicNamespace{match, setup})
}

// OfPattern accepts namespaces whose name matches re.
func (s *Server) OfPattern(re *regexp.Regexp, setup func(*Namespace)) {
	s.OfFunc(re.MatchString, setup)
}

// lookup returns the namespace a client asks for, or nil.
func (s *Server) lookup(name string) *Namespace {
	s.mu.RLock()
	n := s.nsps[name]
	dyn := s.dynamic
	s.mu.RUnlock()
	if n != nil {
		return n
	}
	for _, d := range dyn {
		if d.match(name) {
			s.mu.Lock()
			n = s.nsps[name]
			created := n == nil
			if created {
				n = newNamespace(s, name)
				n.dynamic = true
				s.nsps[name] = n
				s.member.addNamespace(name)
			}
			s.mu.Unlock()
			if created && d.setup != nil {
				d.setup(n)
			}
			return n
		}
	}
	return nil
}

// dropIfEmpty removes dynamic namespace n when it has no socket left.
func (s *Server) dropIfEmpty(n *Namespace) {
	if !n.dynamic {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.sockets) == 0 && s.nsps[n.name] == n {
		delete(s.nsps, n.name)
		n.removed = true
		s.member.removeNamespace(n.name)
	}
}

// On registers an event handler in namespace ns; see Namespace.On.
func (s *Server) On(ns, event string, fn any) { s.Of(ns).On(event, fn) }

// OnConnect registers the connect handler of namespace ns.
func (s *Server) OnConnect(ns string, fn func(s *Socket, auth json.RawMessage) error) {
	s.Of(ns).OnConnect(fn)
}

// OnDisconnect registers the disconnect handler of namespace ns.
func (s *Server) OnDisconnect(ns string, fn func(s *Socket, reason string)) {
	s.Of(ns).OnDisconnect(fn)
}

// OnErrorDefault sets the error handler of namespaces that have none
// (Flask-SocketIO's on_error_default).
func (s *Server) OnErrorDefault(fn func(s *Socket, event string, err error)) {
	s.OnErrorDefaultAck(ackless(fn))
}

// OnErrorDefaultAck is OnErrorDefault with a handler whose result is the
// failed event's acknowledgement (see Namespace.OnErrorAck).
func (s *Server) OnErrorDefaultAck(fn func(s *Socket, event string, err error) any) {
	s.mu.Lock()
	s.onErrorDefault = fn
	s.mu.Unlock()
}

// Emit emits to every client of namespace "/" (from any goroutine).
func (s *Server) Emit(event string, args ...any) error { return s.Of("/").Emit(event, args...) }

// ---------------------------------------------------------------- client

// client is one Engine.IO connection and the namespaces it joined.
type client struct {
	s    *Server
	conn *engineio.Conn
	dec  parser.PacketDecoder

	mu      sync.Mutex
	sockets nsSockets
	closed  bool
	timer   *time.Timer

	session connSession // shared by the client's sockets
}

func (s *Server) onConnection(conn *engineio.Conn) {
	c := &client{s: s, conn: conn, dec: s.parser.NewDecoder()}
	c.timer = time.AfterFunc(s.connectTimeout, func() {
		c.mu.Lock()
		n := len(c.sockets)
		c.mu.Unlock()
		if n == 0 {
			conn.Close()
		}
	})
	conn.OnMessage(c.onMessage)
	conn.OnClose(c.onClose)
	s.hooks.clientOpened(conn)
}

func (c *client) sendPacket(p *parser.Packet) error {
	c.s.stats.sent(p.Type)
	msgs, err := c.s.encode(p)
	if err != nil {
		return err
	}
	c.s.hooks.packetOut(msgs)
	return c.conn.SendBatch(msgs)
}

func (c *client) onMessage(data []byte, binary bool) {
	c.s.hooks.packetIn(len(data))
	p, err := c.dec.Add(data, binary)
	if err != nil {
		c.s.log.Debug("socket.io: closing a client after an invalid packet", "sid", c.conn.ID(), "err", err)
		c.conn.Close()
		return
	}
	if p == nil {
		return
	}
	switch p.Type {
	case parser.Connect:
		c.connect(p)
	case parser.Disconnect:
		if sock := c.socket(p.Namespace); sock != nil {
			sock.remove("client namespace disconnect")
		}
	case parser.Event, parser.BinaryEvent:
		c.s.stats.eventsIn.Add(1)
		if sock := c.socket(p.Namespace); sock != nil {
			sock.enqueue(p)
		}
	case parser.Ack, parser.BinaryAck:
		if sock := c.socket(p.Namespace); sock != nil {
			sock.onAck(p)
		}
	default:
		c.conn.Close()
	}
}

// nsSockets is a client's sockets, one per namespace: a handful usually,
// WithMaxNamespaces at most, so a slice is smaller and as fast as a map.
type nsSockets []*Socket

func (l nsSockets) get(ns string) *Socket {
	for _, s := range l {
		if s.n.name == ns {
			return s
		}
	}
	return nil
}

func (l *nsSockets) remove(s *Socket) {
	for i, x := range *l {
		if x == s {
			*l = append((*l)[:i], (*l)[i+1:]...)
			(*l)[len(*l):cap(*l)][0] = nil
			return
		}
	}
}

func (c *client) socket(ns string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sockets.get(ns)
}

func (c *client) onClose(reason string) {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.closed = true
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	c.mu.Unlock()
	for _, s := range socks {
		s.remove(reason)
	}
	c.s.hooks.clientClosed(c.conn, reason)
}

// ConnectError refuses a connection with a message and data for the client
// (socket.io's CONNECT_ERROR {"message", "data"}).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

func connectErrorPayload(err error) json.RawMessage {
	var ce *ConnectError
	body := map[string]any{"message": err.Error()}
	if errors.As(err, &ce) && ce.Data != nil {
		body["data"] = ce.Data
	}
	b, _ := json.Marshal(body)
	return b
}

func (c *client) connect(p *parser.Packet) {
	c.mu.Lock()
	full := len(c.sockets) >= c.s.maxNamespaces
	c.mu.Unlock()
	if full {
		c.sendPacket(&parser.Packet{Type: parser.ConnectError, Namespace: p.Namespace, Data: json.RawMessage(`{"message":"Too many namespaces"}`)})
		return
	}
	n := c.s.lookup(p.Namespace)
	if n == nil {
		c.sendPacket(&parser.Packet{Type: parser.ConnectError, Namespace: p.Namespace, Data: json.RawMessage(`{"message":"Invalid namespace"}`)})
		return
	}
	auth := p.Data
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	c.mu.Lock()
	if c.sockets.get(n.name) != nil || c.closed {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.session.open(c.s, c.conn.Request())
	sock := newSocket(c, n, auth)
	for _, mw := range c.s.recovery.middlewares(n, sock, auth) {
		if err := mw(sock, auth); err != nil {
			c.s.dropIfEmpty(n) // before the client hears of the refusal
			c.sendPacket(&parser.Packet{Type: parser.ConnectError, Namespace: n.name, Data: connectErrorPayload(err)})
			return
		}
	}
	c.mu.Lock()
	c.sockets = append(c.sockets, sock)
	if c.timer != nil { // connected in time: the timer's memory is not kept
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	if !c.s.recovery.add(n, sock) { // a dynamic namespace removed since lookup, or a recovery pruned meanwhile: connect afresh
		c.mu.Lock()
		c.sockets.remove(sock)
		c.mu.Unlock()
		c.connect(p)
		return
	}
	if sock.csr.recovered {
		c.s.stats.sessionsRestored.Add(1)
	}
	if c.s.alwaysConnect {
		ack := sock.connectPayload()
		c.sendPacket(&parser.Packet{Type: parser.Connect, Namespace: n.name, Data: ack})
		sock.flushPending()
		c.s.hooks.connected(sock)
		if h := n.connectHandler(); h != nil {
			if err := h(sock, auth); err != nil {
				sock.Disconnect()
			}
		}
		return
	}
	if h := n.connectHandler(); h != nil {
		if err := h(sock, auth); err != nil {
			n.removeSocket(sock)
			c.mu.Lock()
			c.sockets.remove(sock)
			c.mu.Unlock()
			sock.dropPending()
			c.s.dropIfEmpty(n) // before the client hears of the refusal
			c.sendPacket(&parser.Packet{Type: parser.ConnectError, Namespace: n.name, Data: connectErrorPayload(err)})
			return
		}
	}
	ack := sock.connectPayload()
	c.sendPacket(&parser.Packet{Type: parser.Connect, Namespace: n.name, Data: ack})
	sock.flushPending()
	c.s.hooks.connected(sock)
}

// errorf formats handler errors for logs.
func errorf(format string, a ...any) error { return fmt.Errorf("socket.io: "+format, a...) }
