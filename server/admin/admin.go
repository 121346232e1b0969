// Package admin instruments a server.Server for the Socket.IO Admin UI
// (the npm package @socket.io/admin-ui), with the protocol of
// python-socketio's socketio/admin.py and of the Node package's server
// side: the namespace /admin, authenticated by the auth payload of its
// clients, which receives the server's statistics every 2 s and, in
// development mode, its sockets, their rooms and every event; its clients
// may make sockets emit, join and leave rooms, and disconnect.
//
//	srv := server.New()
//	a, err := admin.Instrument(srv, admin.Options{Auth: admin.Basic("admin", "secret")})
//	...
//	defer a.Close()
//	mux.Handle("/socket.io/", srv)
//	mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI()))
//
// UI serves the UI's static build, embedded in the package: open
// http://host:port/admin/, enter the server's URL (http://host:port), and
// the user name and password in the connection form (its advanced options
// keep the path /socket.io and the namespace /admin).
package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
)

// Mode selects what the admin namespace reports.
type Mode string

const (
	// Development reports everything: the server's statistics, every
	// socket with its rooms, and every event received and sent (each
	// costs a notification; see Options.QueueBytes). The default, as in
	// python-socketio and the Node package. In a cluster (WithAdapter),
	// every notification is published on the bus for the admin clients
	// of every server, as python-socketio does: prefer Production on a
	// busy cluster.
	Development Mode = "development"
	// Production reports the server's statistics only (number of clients
	// and sockets per namespace, connections and traffic per second).
	Production Mode = "production"
)

// Defaults of Options.
const (
	DefaultNamespace     = "/admin"
	DefaultStatsInterval = 2 * time.Second
	// DefaultQueueBytes bounds the notifications waiting to be sent to the
	// admin clients (see Options.QueueBytes).
	DefaultQueueBytes = 4 << 20
	// DefaultSocketsListBytes bounds the list of sockets sent to an admin
	// client when it connects (see Options.SocketsListBytes).
	DefaultSocketsListBytes = 1 << 20
	// DefaultMaxSessions bounds the login sessions remembered (see
	// Options.MaxSessions).
	DefaultMaxSessions = 1000
	// DefaultSessionTTL is how long a login session is accepted (the Node
	// package's RedisStore default).
	DefaultSessionTTL = 24 * time.Hour
)

// Options configure Instrument.
type Options struct {
	// Auth decides whether the auth payload of a client of the admin
	// namespace is accepted (the UI sends {"username": ..., "password":
	// ...}); Basic makes the usual one. It is required unless NoAuth is
	// set. A client that logged in receives a session id (event
	// "session"), which the UI sends instead ({"sessionId": ...}) when it
	// reconnects, as with the Node package; see MaxSessions.
	Auth func(auth json.RawMessage) bool
	// NoAuth accepts every client of the admin namespace.
	NoAuth bool
	// Mode is Development (the default) or Production.
	Mode Mode
	// ReadOnly refuses the UI's operations (emit, join, leave,
	// disconnect).
	ReadOnly bool
	// ServerID names this server in the UI (default: the host name).
	// Give each server of a cluster its own.
	ServerID string
	// Namespace is the admin namespace (default "/admin").
	Namespace string
	// StatsInterval is the period of the "server_stats" event (default
	// 2 s).
	StatsInterval time.Duration
	// QueueBytes bounds the notifications (a socket connected, a room
	// joined, an event received...) waiting to be emitted to the admin
	// namespace by the package's goroutine: each counts 256 bytes plus,
	// for events, their size. When the bound is reached, notifications are
	// dropped (counted by Dropped and logged) rather than the server
	// delayed. Default DefaultQueueBytes.
	QueueBytes int
	// SocketsListBytes bounds the list of sockets ("all_sockets") sent to
	// an admin client when it connects, in JSON bytes; the sockets past it
	// are left out (and logged). Default DefaultSocketsListBytes.
	SocketsListBytes int
	// MaxSessions bounds the login sessions remembered (the oldest is
	// forgotten first); SessionTTL is their life. Defaults
	// DefaultMaxSessions and DefaultSessionTTL.
	MaxSessions int
	SessionTTL  time.Duration
	// Logger receives the package's warnings (default: none).
	Logger *slog.Logger
}

// Basic returns an Options.Auth that accepts the auth payload
// {"username": username, "password": password} (other fields are
// ignored), comparing in constant time.
func Basic(username, password string) func(auth json.RawMessage) bool {
	return func(auth json.RawMessage) bool {
		var c struct {
			Username *string `json:"username"`
			Password *string `json:"password"`
		}
		if json.Unmarshal(auth, &c) != nil || c.Username == nil || c.Password == nil {
			return false
		}
		u := subtle.ConstantTimeCompare([]byte(*c.Username), []byte(username))
		p := subtle.ConstantTimeCompare([]byte(*c.Password), []byte(password))
		return u&p == 1
	}
}

// errInvalidCredentials is the refusal the UI recognises (the Node
// package's message; python-socketio says "authentication failed").
var errInvalidCredentials = errors.New("invalid credentials")

// Admin is an instrumented server. Close it to stop reporting.
type Admin struct {
	srv      *server.Server
	ns       *server.Namespace
	o        Options
	hostname string
	started  time.Time
	log      *slog.Logger

	removeHooks func()
	stop        chan struct{}
	done        chan struct{}
	closeOnce   sync.Once
	closed      atomic.Bool

	q     noteQueue
	stats counters

	mu         sync.Mutex
	conns      map[string]*engineio.Conn // Engine.IO connections by id
	sockets    map[string]*tracked       // development mode: sockets by id
	admins     map[string]string         // admin sockets: id -> client id
	adminCount atomic.Int32              // len(admins), read by the hooks without mu
	sessions   sessionStore
}

// tracked is what development mode remembers of a socket.
type tracked struct {
	s         *server.Socket
	at        time.Time
	transport string
}

// Instrument makes srv report to the Admin UI through its admin namespace
// (created here) and returns the instrumentation; call it before srv
// serves, so that every connection is counted. It starts one goroutine,
// stopped by Close.
func Instrument(srv *server.Server, o Options) (*Admin, error) {
	if o.Auth == nil && !o.NoAuth {
		return nil, errors.New("admin: Options.Auth is required (or set NoAuth to accept every client)")
	}
	switch o.Mode {
	case "":
		o.Mode = Development
	case Development, Production:
	default:
		return nil, fmt.Errorf("admin: unknown mode %q", o.Mode)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = DefaultStatsInterval
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.SocketsListBytes <= 0 {
		o.SocketsListBytes = DefaultSocketsListBytes
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	host, _ := os.Hostname()
	if o.ServerID == "" {
		o.ServerID = host
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Admin{srv: srv, o: o, hostname: host, started: time.Now(), log: log,
		stop: make(chan struct{}), done: make(chan struct{}),
		conns: map[string]*engineio.Conn{}, sockets: map[string]*tracked{}, admins: map[string]string{},
		sessions: sessionStore{max: o.MaxSessions, ttl: o.SessionTTL, m: map[string]time.Time{}}}
	a.q.max = o.QueueBytes
	a.q.wake = make(chan struct{}, 1)
	a.ns = srv.Of(o.Namespace)
	a.ns.Use(a.authenticate)
	a.ns.OnConnect(a.onAdminConnect)
	a.ns.OnDisconnect(a.onAdminDisconnect)
	if !o.ReadOnly {
		a.registerOperations()
	}
	a.removeHooks = srv.AddHooks(a.hooks())
	go a.run()
	return a, nil
}

// Close stops reporting: the hooks are removed, the goroutine stopped,
// and the admin clients disconnected; new ones are refused.
func (a *Admin) Close() {
	a.closeOnce.Do(func() {
		a.closed.Store(true)
		a.removeHooks()
		close(a.stop)
		<-a.done
		for _, id := range a.ns.Sockets() {
			if s := a.ns.Socket(id); s != nil {
				s.Disconnect()
			}
		}
	})
}

// Dropped returns how many notifications were dropped because the queue
// was full (Options.QueueBytes).
func (a *Admin) Dropped() uint64 { return a.q.dropped.Load() }

// ------------------------------------------------------------ admin clients

func (a *Admin) authenticate(s *server.Socket, auth json.RawMessage) error {
	if a.closed.Load() {
		return errors.New("admin: closed")
	}
	if a.o.NoAuth {
		return nil
	}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if json.Unmarshal(auth, &sess) == nil && sess.SessionID != "" && a.sessions.valid(&a.mu, sess.SessionID) {
		return nil
	}
	if !a.o.Auth(auth) {
		return errInvalidCredentials
	}
	id := newSessionID()
	a.sessions.add(&a.mu, id)
	s.Emit("session", id) // sent right after the CONNECT
	return nil
}

// features are the Admin UI features this server offers.
func (a *Admin) features() []string {
	var f []string
	if !a.o.ReadOnly {
		f = append(f, "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
	}
	f = append(f, "AGGREGATED_EVENTS")
	if a.o.Mode == Development {
		f = append(f, "ALL_EVENTS")
	}
	return f
}

func (a *Admin) onAdminConnect(s *server.Socket, _ json.RawMessage) error {
	a.mu.Lock()
	a.admins[s.ID()] = s.ClientID()
	a.adminCount.Store(int32(len(a.admins)))
	a.mu.Unlock()
	s.Emit("config", map[string]any{"supportedFeatures": a.features()})
	s.Emit("server_stats", a.serverStats(false))
	if a.o.Mode == Development {
		s.Emit("all_sockets", a.allSockets())
	}
	return nil
}

func (a *Admin) onAdminDisconnect(s *server.Socket, _ string) {
	a.mu.Lock()
	delete(a.admins, s.ID())
	a.adminCount.Store(int32(len(a.admins)))
	a.mu.Unlock()
}

// namespace returns the existing namespace name, or nil: the UI's
// operations never create namespaces.
func (a *Admin) namespace(name string) *server.Namespace {
	for _, n := range a.srv.Namespaces() {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// selection is the sockets of namespace nsp in room filter (all of them
// without filter), or nil.
func (a *Admin) selection(nsp string, filter *string) *server.Broadcast {
	n := a.namespace(nsp)
	switch {
	case n == nil:
		return nil
	case filter == nil || *filter == "":
		return n.Except()
	default:
		return n.To(*filter)
	}
}

// registerOperations handles the UI's operations, as the Node package
// (with socket.io v4): emit(nsp, filter, event, ...args), join(nsp, room,
// filter), leave(nsp, room, filter), _disconnect(nsp, close, filter),
// where a missing filter selects the whole namespace.
func (a *Admin) registerOperations() {
	a.ns.On("emit", func(_ *server.Socket, nsp string, filter *string, event string, args ...any) {
		if b := a.selection(nsp, filter); b != nil {
			a.warn(b.Emit(event, args...), "emit", nsp)
		}
	})
	a.ns.On("join", func(_ *server.Socket, nsp, room string, filter *string) {
		if b := a.selection(nsp, filter); b != nil && room != "" {
			a.warn(b.SocketsJoin(room), "join", nsp)
		}
	})
	a.ns.On("leave", func(_ *server.Socket, nsp, room string, filter *string) {
		if b := a.selection(nsp, filter); b != nil && room != "" {
			a.warn(b.SocketsLeave(room), "leave", nsp)
		}
	})
	a.ns.On("_disconnect", func(_ *server.Socket, nsp string, close bool, filter *string) {
		if b := a.selection(nsp, filter); b != nil {
			a.warn(b.DisconnectSockets(close), "disconnect", nsp)
		}
	})
}

func (a *Admin) warn(err error, op, nsp string) {
	if err != nil {
		a.log.Warn("admin: operation failed", "op", op, "namespace", nsp, "err", err)
	}
}

// ----------------------------------------------------------------- sessions

// sessionStore remembers login sessions (guarded by the Admin's mu): at
// most max, each for ttl.
type sessionStore struct {
	max int
	ttl time.Duration
	m   map[string]time.Time // id -> expiry
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (st *sessionStore) valid(mu *sync.Mutex, id string) bool {
	mu.Lock()
	defer mu.Unlock()
	exp, ok := st.m[id]
	if ok && time.Now().After(exp) {
		delete(st.m, id)
		return false
	}
	return ok
}

func (st *sessionStore) add(mu *sync.Mutex, id string) {
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	if len(st.m) >= st.max {
		var oldest string
		var oldestExp time.Time
		for k, exp := range st.m {
			if now.After(exp) {
				delete(st.m, k)
				continue
			}
			if oldest == "" || exp.Before(oldestExp) {
				oldest, oldestExp = k, exp
			}
		}
		if len(st.m) >= st.max {
			delete(st.m, oldest)
		}
	}
	st.m[id] = now.Add(st.ttl)
}
