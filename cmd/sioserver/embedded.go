package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// DefaultEmbeddedNATS is the address of the embedded NATS server: the
// address of a NATS server installed with its defaults, so that workers
// and sioemit reach it as nats://127.0.0.1:4222.
const DefaultEmbeddedNATS = "127.0.0.1:4222"

// Time limits of the embedded broker.
const (
	// probeTimeout bounds connecting to the embedded address and reading
	// the INFO line a NATS server sends first, to tell a running NATS
	// server from another program.
	probeTimeout = 2 * time.Second
	// embeddedStartTimeout bounds the start of the embedded NATS server.
	embeddedStartTimeout = 10 * time.Second
	// maxProbeRead bounds what the probe reads from the port's holder.
	maxProbeRead = 4096
)

// errPortHeld is wrapped by the error of startBroker when a program that
// is not a NATS server holds the embedded address (exit 2).
var errPortHeld = errors.New("held by a program that is not a NATS server")

// broker is the NATS server behind the embedded mode: one this process
// started (srv != nil) or one that was already running at the address.
type broker struct {
	url string             // nats://HOST:PORT to connect to
	srv *natsserver.Server // nil when reused
}

// embedded reports whether this process runs the NATS server.
func (b *broker) embedded() bool { return b.srv != nil }

// stop shuts the embedded server down (nothing for a reused one).
func (b *broker) stop() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// startBroker makes sure a NATS server answers at addr: when one already
// does, it is used; when the port is free, an embedded NATS server
// (JetStream off) is started there, logging through log. A port held by
// another program is an error wrapping errPortHeld. Port 0 picks a free
// port.
func startBroker(ctx context.Context, addr string, log *slog.Logger) (*broker, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--embedded-nats %q is not HOST:PORT: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--embedded-nats %q: bad port", addr)
	}
	if port != 0 {
		running, err := probeNATS(ctx, addr)
		if err != nil {
			return nil, err
		}
		if running {
			return &broker{url: "nats://" + addr}, nil
		}
		// nobody answers: the port must be ours to take (this catches an
		// address of another machine, or a port in use without listening)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("cannot listen on %s for the embedded NATS server: %w", addr, err)
		}
		ln.Close()
	} else {
		port = natsserver.RANDOM_PORT
	}
	opts := &natsserver.Options{
		ServerName: "sioserver-embedded",
		Host:       host,
		Port:       port,
		NoSigs:     true, // the signals are sioserver's
		JetStream:  false,
		// the limits are NATS's defaults, written out: 1 MB per message,
		// 64 MB of pending data per connection, 64k connections
		MaxPayload: natsserver.MAX_PAYLOAD_SIZE,
		MaxPending: natsserver.MAX_PENDING_SIZE,
		MaxConn:    natsserver.DEFAULT_MAX_CONNECTIONS,
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	nl := &natsLogger{log: log.With("component", "nats-server")}
	srv.SetLoggerV2(nl, log.Enabled(ctx, slog.LevelDebug), false, false)
	srv.Start()
	if !srv.ReadyForConnections(embeddedStartTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if f := nl.fatal(); f != "" {
			return nil, fmt.Errorf("embedded NATS server on %s: %s", addr, f)
		}
		return nil, fmt.Errorf("embedded NATS server on %s: not ready after %s", addr, embeddedStartTimeout)
	}
	a, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded NATS server on %s: no listening address", addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every interface: reached on loopback here
	}
	return &broker{url: "nats://" + net.JoinHostPort(host, strconv.Itoa(a.Port)), srv: srv}, nil
}

// probeNATS reports whether a NATS server answers at addr: false when
// nothing accepts connections there; an error wrapping errPortHeld when
// something does but its first line is not a NATS INFO.
func probeNATS(ctx context.Context, addr string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return false, fmt.Errorf("probing %s: %w", addr, err)
		}
		return false, nil // refused or unreachable: nobody serves there
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetReadDeadline(dl)
	line, err := bufio.NewReaderSize(c, maxProbeRead).ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) || !strings.HasPrefix(string(line), "INFO ") {
		return false, fmt.Errorf("%s is %w (it did not greet with a NATS INFO line); stop it, or pick another address with --embedded-nats", addr, errPortHeld)
	}
	return true, nil
}

// natsLogger routes nats-server's logs through slog: its notices (the
// start-up banner) at debug level, warnings and errors as such. Fatal
// errors (the server could not listen) are kept for startBroker's error
// and logged as errors; they never exit the process.
type natsLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	f   string
}

func (l *natsLogger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f
}

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats-server: " + fmt.Sprintf(format, v...))
}

func (l *natsLogger) Warnf(format string, v ...any) {
	l.log.Warn("nats-server: " + fmt.Sprintf(format, v...))
}

func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.f == "" {
		l.f = msg
	}
	l.mu.Unlock()
	l.log.Error("nats-server: " + msg)
}

func (l *natsLogger) Errorf(format string, v ...any) {
	l.log.Error("nats-server: " + fmt.Sprintf(format, v...))
}

func (l *natsLogger) Debugf(format string, v ...any) {
	l.log.Debug("nats-server: " + fmt.Sprintf(format, v...))
}

func (l *natsLogger) Tracef(format string, v ...any) {
	l.log.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
