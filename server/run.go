package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
)

// RunOptions are the options of Run and Serve, as those of Flask-SocketIO's
// socketio.run(app, host, port, certfile=, keyfile=, ssl_context=).
type RunOptions struct {
	// Handler serves every request outside Path: the application's own
	// routes (the app of socketio.run(app)). Without it they get 404.
	Handler http.Handler
	// Path is where Socket.IO is served (Flask-SocketIO's path option),
	// default "/socket.io/"; "my-path" and "/my-path" mean "/my-path/".
	// Clients connect with the same path (socket.io-client's path option).
	Path string
	// CertFile and KeyFile, PEM files, serve HTTPS (socketio.run's
	// certfile and keyfile).
	CertFile, KeyFile string
	// TLSConfig serves HTTPS with this configuration (its Certificates or
	// GetCertificate; socketio.run's ssl_context); CertFile and KeyFile,
	// when set too, are added to its Certificates. It is cloned.
	//
	// HTTPS is served over HTTP/1.1 only, as Node's and python-engineio's
	// servers: the WebSocket transport takes over its HTTP/1.1
	// connection, which an HTTP/2 stream cannot be.
	TLSConfig *tls.Config
}

// handler returns the mux of o: Socket.IO at its path, o.Handler beside.
func (o RunOptions) handler(sio http.Handler) http.Handler {
	path := strings.Trim(o.Path, "/")
	if path == "" {
		path = "socket.io"
	}
	mux := http.NewServeMux()
	mux.Handle("/"+path+"/", sio)
	if o.Handler != nil {
		mux.Handle("/", o.Handler)
	}
	return mux
}

func (o RunOptions) tls() bool { return o.TLSConfig != nil || o.CertFile != "" || o.KeyFile != "" }

// runState is the HTTP servers that Run and Serve started, which
// Shutdown stops.
type runState struct {
	mu       sync.Mutex
	stopping bool
	servers  map[*http.Server]struct{}
	stopped  chan struct{} // closed when Shutdown returns
	once     sync.Once
}

// Run listens on the TCP address addr (with Listen) and serves s at
// "/socket.io/" (RunOptions.Path) and the application's handler beside
// it, over HTTP or HTTPS, with the limits of NewHTTPServer, until
// Shutdown: as Flask-SocketIO's socketio.run(app, host, port). Run then
// returns nil, once Shutdown has returned (the clients were disconnected
// and the requests in flight answered, or Shutdown's context ended), so a
// program may exit when Run returns. Any other error ends Run at once.
// At most one RunOptions is taken; srv.Run(addr) serves Socket.IO alone.
func (s *Server) Run(addr string, opts ...RunOptions) error {
	if len(opts) > 1 {
		return errors.New("socket.io: Run takes at most one RunOptions")
	}
	ln, err := s.Listen(addr) // refuses clients beyond the descriptor limit at once
	if err != nil {
		return fmt.Errorf("socket.io: run: %w", err)
	}
	return s.Serve(ln, opts...)
}

// Serve is Run on a listener of the caller's (Listen's, or one from
// net.Listen); it closes ln when it returns.
func (s *Server) Serve(ln net.Listener, opts ...RunOptions) error {
	if len(opts) > 1 {
		ln.Close()
		return errors.New("socket.io: Serve takes at most one RunOptions")
	}
	var o RunOptions
	if len(opts) == 1 {
		o = opts[0]
	}
	hs := NewHTTPServer(ln.Addr().String(), o.handler(s))
	if o.tls() {
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if o.CertFile != "" || o.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				ln.Close()
				return fmt.Errorf("socket.io: run: %w", err)
			}
			cfg.Certificates = append(cfg.Certificates, cert)
		}
		cfg.NextProtos = []string{"http/1.1"} // no HTTP/2 (Serve on a TLS listener does not serve it either)
		ln = tls.NewListener(ln, cfg)
	}
	r := &s.run
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		ln.Close()
		return fmt.Errorf("socket.io: run after Shutdown: %w", http.ErrServerClosed)
	}
	if r.servers == nil {
		r.servers = map[*http.Server]struct{}{}
		r.stopped = make(chan struct{})
	}
	r.servers[hs] = struct{}{}
	stopped := r.stopped
	r.mu.Unlock()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped // Shutdown began; wait until it is over
		return nil
	}
	r.mu.Lock()
	delete(r.servers, hs)
	r.mu.Unlock()
	hs.Close()
	return fmt.Errorf("socket.io: serve %s: %w", ln.Addr(), err)
}

// shutdownHTTP stops the listeners of the HTTP servers of Run and Serve at
// once and lets them finish their requests in the background while
// Shutdown disconnects the clients (which answers pending polling
// requests); wait waits for them, or ctx. done marks Shutdown over, which
// lets Run return.
func (r *runState) shutdownHTTP(ctx context.Context) (wait func() error, done func()) {
	r.mu.Lock()
	r.stopping = true
	servers := make([]*http.Server, 0, len(r.servers))
	for hs := range r.servers {
		servers = append(servers, hs)
	}
	stopped := r.stopped
	r.mu.Unlock()
	errs := make(chan error, len(servers))
	for _, hs := range servers {
		go func() { errs <- hs.Shutdown(ctx) }()
	}
	wait = func() error {
		var all []error
		for range servers {
			all = append(all, <-errs)
		}
		return errors.Join(all...)
	}
	done = func() {
		if stopped != nil {
			r.once.Do(func() { close(stopped) })
		}
	}
	return wait, done
}
