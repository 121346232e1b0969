package server

import (
	"context"
	"maps"
	"net/http"
	"sync"
)

// Sessions (Socket.Get, Socket.Set) follow Flask-SocketIO:
//
//   - There is one session per connection (Engine.IO client), shared by
//     all the namespaces the client joins on it, for the life of the
//     connection: a value set in "/" is read in "/chat", and is still
//     there in the disconnect handlers and when a namespace is joined again.
//   - Flask's manage_session=True (the default here too,
//     WithManageSession(true)): with WithSessionStore, the session starts as
//     a copy of the HTTP session the handshake request's cookie names (taken
//     when the client joins its first namespace, before the middlewares and
//     connect handler run); later changes on either side are not seen by the
//     other, as Flask-SocketIO does not write a managed session back to the
//     HTTP session.
//   - Flask's manage_session=False with a server-side session
//     (WithManageSession(false) and WithSessionStore): Get and Set read and
//     write the store, so HTTP routes and Socket.IO handlers see each
//     other's changes.
//
// Without a store, or when the id function returns "" (no session
// cookie), the connection's session starts empty and stays in the
// connection.
//
// Size: only the application writes a session (a client cannot add to it
// by itself), so it is not bounded here: it holds what the handlers Set
// plus what the store held at connect, once per connection (a user with
// several connections has a copy each). Keys should be the application's
// own names, not strings a client sends.

// SessionStore keeps session values outside the connection, shared by
// HTTP handlers and Socket.IO handlers (a server-side session, as
// Flask-Session's). Implementations are safe for concurrent use and bound
// their own calls (the contexts they get have no deadline).
type SessionStore interface {
	// Get returns the value of key in session id.
	Get(ctx context.Context, id, key string) (any, bool)
	// Set stores v under key in session id.
	Set(ctx context.Context, id, key string, v any)
	// Values returns a copy of the values of session id (nil or empty
	// when there are none), which the caller may keep and change.
	Values(ctx context.Context, id string) map[string]any
}

// WithSessionStore seeds (or, with WithManageSession(false), backs) each
// connection's session with the session of store that id names for the
// handshake request (typically from a session cookie). When id returns
// "", the connection keeps its own values.
func WithSessionStore(store SessionStore, id func(r *http.Request) string) Option {
	return func(c *config) { c.sessions, c.sessionID = store, id }
}

// WithManageSession is Flask-SocketIO's manage_session. With true (the
// default), each connection has its own session, a copy of the
// SessionStore's session made at connect (WithSessionStore), never
// written back. With false, Socket.Get and Socket.Set read and write the
// SessionStore, sharing the session with HTTP handlers; it has no effect
// without WithSessionStore.
func WithManageSession(manage bool) Option {
	return func(c *config) { c.sharedSession = !manage }
}

// connSession is the session of one connection, shared by its sockets.
type connSession struct {
	mu      sync.Mutex
	opened  bool
	storeID string // read and write through the store under this id; "" keeps m
	m       map[string]any
}

// open takes the store's session for r, once per connection: a copy, or
// (shared) its id. It runs on the connection's read loop before the
// first namespace's middlewares, so every handler sees it.
func (cs *connSession) open(srv *Server, r *http.Request) {
	cs.mu.Lock()
	done := cs.opened
	cs.opened = true
	cs.mu.Unlock()
	if done || srv.sessions == nil || srv.sessionID == nil {
		return
	}
	id := srv.sessionID(r)
	if id == "" {
		return
	}
	if srv.sharedSession {
		cs.mu.Lock()
		cs.storeID = id
		cs.mu.Unlock()
		return
	}
	m := srv.sessions.Values(context.Background(), id) // without the lock: the store may be slow
	cs.mu.Lock()
	cs.m = m // no socket of the connection exists yet: nothing was set before
	cs.mu.Unlock()
}

func (cs *connSession) setLocked(k string, v any) {
	if cs.m == nil {
		cs.m = map[string]any{}
	}
	cs.m[k] = v
}

func (cs *connSession) get(srv *Server, key string) (any, bool) {
	cs.mu.Lock()
	if id := cs.storeID; id != "" {
		cs.mu.Unlock()
		return srv.sessions.Get(context.Background(), id, key)
	}
	defer cs.mu.Unlock()
	v, ok := cs.m[key]
	return v, ok
}

func (cs *connSession) set(srv *Server, key string, v any) {
	cs.mu.Lock()
	if id := cs.storeID; id != "" {
		cs.mu.Unlock()
		srv.sessions.Set(context.Background(), id, key, v)
		return
	}
	defer cs.mu.Unlock()
	cs.setLocked(key, v)
}

// Get returns a value of the session of the socket's connection (shared by
// the connection's namespaces; see WithManageSession).
func (s *Socket) Get(key string) (any, bool) { return s.c.session.get(s.n.s, key) }

// Set stores a value in the session of the socket's connection (shared by
// the connection's namespaces; see WithManageSession).
func (s *Socket) Set(key string, v any) { s.c.session.set(s.n.s, key, v) }

// MemorySessionStore is an in-memory SessionStore. It holds what the
// application stores, without a bound: delete the sessions that end.
type MemorySessionStore struct {
	mu sync.Mutex
	m  map[string]map[string]any
}

// NewMemorySessionStore returns an empty store.
func NewMemorySessionStore() *MemorySessionStore {
	return &MemorySessionStore{m: map[string]map[string]any{}}
}

// Get returns the value of key in session id.
func (s *MemorySessionStore) Get(_ context.Context, id, key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id][key]
	return v, ok
}

// Set stores v under key in session id.
func (s *MemorySessionStore) Set(_ context.Context, id, key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[id] == nil {
		s.m[id] = map[string]any{}
	}
	s.m[id][key] = v
}

// Values returns a copy of the values of session id.
func (s *MemorySessionStore) Values(_ context.Context, id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m[id])
}

// Delete removes session id (at logout).
func (s *MemorySessionStore) Delete(_ context.Context, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}
