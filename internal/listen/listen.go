// Package listen is the TCP listener of the servers: a client that arrives
// when the process has no file descriptor left is refused at once, with a
// log line, instead of waiting in the kernel's backlog until its own
// timeout.
//
// net/http's Server, when Accept fails with EMFILE or ENFILE, sleeps and
// retries (5 ms doubling to 1 s) and the connections already completed by
// the kernel stay queued, unanswered, while it does. Listener keeps one
// descriptor in reserve (on the null device): on EMFILE or ENFILE it gives
// that descriptor up, accepts the waiting connection with it, answers
// "503 Service Unavailable" and closes it, then takes its reserve back.
// When the reserve cannot be had, Accept returns the error (and net/http
// retries as before).
//
// The accepted connections get no TCP keep-alive: Engine.IO's heartbeat
// finds dead peers, and the four socket options per connection are not
// free in a connection storm.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// refusal is what a refused client reads before the connection closes.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\nout of file descriptors\r\n\r\n"

// logEvery is the shortest interval between two log lines about refusals.
const logEvery = 5 * time.Second

// Listener is a TCP listener that refuses, instead of leaving queued, the
// clients it has no file descriptor for. Use it as an http.Server's
// listener (Serve).
type Listener struct {
	*net.TCPListener
	log *slog.Logger

	mu      sync.Mutex
	spare   *os.File // the reserve descriptor, nil while given up
	closed  bool
	refused int // refusals since the last log line
	logged  time.Time
	total   int64
}

// TCP listens on the TCP address addr ("host:port"); log gets a line (at
// most every few seconds) when clients are refused; nil is slog.Default().
func TCP(addr string, log *slog.Logger) (*Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return Wrap(ln.(*net.TCPListener), log), nil
}

// Wrap returns ln with the refusal of clients beyond the descriptor limit.
// Keep-alive of accepted connections is as ln's ListenConfig set it.
func Wrap(ln *net.TCPListener, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{TCPListener: ln, log: log}
	l.spare, _ = os.Open(os.DevNull)
	return l
}

// Accept returns the next connection; the clients that arrive while the
// process is out of descriptors are refused in the meantime.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.TCPListener.AcceptTCP()
		if err == nil {
			return c, nil
		}
		if !outOfDescriptors(err) {
			return nil, err
		}
		kept, err := l.acceptWithSpare(err)
		if kept != nil || err != nil {
			return kept, err
		}
	}
}

// Refused returns how many clients were refused so far.
func (l *Listener) Refused() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Close closes the listener and frees the reserve.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.putSpare(nil)
	return l.TCPListener.Close()
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// acceptWithSpare runs after Accept failed with errFD (EMFILE or ENFILE):
// it gives up the reserve descriptor and accepts a client in its place. If
// the reserve can then be taken back, descriptors came free meanwhile and
// the client is returned; else the client is refused (503, closed), the
// reserve retaken with its descriptor, and (nil, nil) returned. Without a
// reserve to give up it returns errFD (net/http retries later).
func (l *Listener) acceptWithSpare(errFD error) (net.Conn, error) {
	l.mu.Lock()
	spare := l.spare
	l.spare = nil
	l.mu.Unlock()
	if spare == nil {
		if spare, _ = os.Open(os.DevNull); spare == nil {
			return nil, errFD
		}
	}
	spare.Close()
	tc, err := l.TCPListener.AcceptTCP() // with the reserve's descriptor
	spare, _ = os.Open(os.DevNull)
	l.putSpare(spare)
	if err != nil {
		return nil, err
	}
	if spare != nil {
		return tc, nil
	}
	tc.SetWriteDeadline(time.Now().Add(time.Second))
	tc.Write([]byte(refusal)) // into an empty socket buffer: does not wait
	tc.Close()
	spare, _ = os.Open(os.DevNull) // the descriptor the client had
	l.putSpare(spare)
	l.mu.Lock()
	l.total++
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= logEvery {
		l.log.Warn("siobridge: out of file descriptors (RLIMIT_NOFILE or the system's limit): refusing new clients",
			"refused", l.refused, "refused_total", l.total, "addr", l.Addr().String())
		l.logged, l.refused = now, 0
	}
	l.mu.Unlock()
	return nil, nil
}

// putSpare makes f the reserve, closing the one held; after Close it
// closes f too.
func (l *Listener) putSpare(f *os.File) {
	l.mu.Lock()
	old := l.spare
	l.spare = f
	if l.closed {
		l.spare = nil
	}
	closed := l.closed
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if closed && f != nil {
		f.Close()
	}
}
