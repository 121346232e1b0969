package server

import (
	"context"
	"net/http"
	"sync"
)

// SessionStore keeps session values outside the connection, so that HTTP
// handlers and Socket.IO handlers share them (Flask-SocketIO with
// manage_session=False and a server-side session). Implementations are
// safe for concurrent use.
type SessionStore interface {
	Get(ctx context.Context, id, key string) (any, bool)
	Set(ctx context.Context, id, key string, v any)
}

// WithSessionStore makes Socket.Get and Socket.Set use store, under the
// session id that id returns for the handshake request (typically a
// session cookie). When id returns "", the socket keeps its own values.
func WithSessionStore(store SessionStore, id func(r *http.Request) string) Option {
	return func(c *config) { c.sessions, c.sessionID = store, id }
}

// MemorySessionStore is an in-memory SessionStore.
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
