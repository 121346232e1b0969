package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// appMux is an application's own routes.
func appMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from the app") })
	return mux
}

// serve runs srv.Serve(ln, o) in the background; the returned channel
// gets its result.
func serve(t *testing.T, srv *server.Server, o server.RunOptions) (addr string, result <-chan error) {
	t.Helper()
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- srv.Serve(ln, o) }()
	return ln.Addr().String(), res
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, string(b)
}

// checkServes checks that base serves the app's route, a 404 elsewhere,
// and an Engine.IO polling handshake at path.
func checkServes(t *testing.T, c *http.Client, base, path string) {
	t.Helper()
	if code, body := get(t, c, base+"/hello"); code != 200 || body != "hello from the app" {
		t.Errorf("app route: %d %q", code, body)
	}
	if code, _ := get(t, c, base+"/nothing-here"); code != 404 {
		t.Errorf("unknown route: %d", code)
	}
	if code, body := get(t, c, base+path+"?EIO=4&transport=polling"); code != 200 || !strings.HasPrefix(body, `0{"sid":`) {
		t.Errorf("Engine.IO handshake at %s: %d %q", path, code, body)
	}
}

// dialConnected connects a WebSocket client to "/" of the server at base.
func dialConnected(t *testing.T, base string) *servertest.Client {
	t.Helper()
	c, err := servertest.Dial(base, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRunServesAppBesideSocketIO: Serve (Run on a given listener) serves
// the application's handler beside Socket.IO, at the default path and at
// a custom one, as socketio.run(app) does.
func TestRunServesAppBesideSocketIO(t *testing.T) {
	srv := newServer(t)
	srv.On("/", "echo", func(s *server.Socket, v string) string { return v })
	addr, _ := serve(t, srv, server.RunOptions{Handler: appMux()})
	checkServes(t, http.DefaultClient, "http://"+addr, "/socket.io/")
	c := dialConnected(t, "http://"+addr)
	if r, err := c.EmitWithAck("/", 5*time.Second, "echo", "x"); err != nil || r[0] != "x" {
		t.Fatalf("echo: %v %v", r, err)
	}

	custom := newServer(t)
	addr, _ = serve(t, custom, server.RunOptions{Handler: appMux(), Path: "my-path"})
	checkServes(t, http.DefaultClient, "http://"+addr, "/my-path/")
	if code, body := get(t, http.DefaultClient, "http://"+addr+"/socket.io/?EIO=4&transport=polling"); code != 404 {
		t.Errorf("the default path with a custom one: %d %q", code, body)
	}

	alone := newServer(t) // srv.Run(addr) as before: Socket.IO only
	addr, _ = serve(t, alone, server.RunOptions{})
	if code, _ := get(t, http.DefaultClient, "http://"+addr+"/hello"); code != 404 {
		t.Errorf("no handler: %d", code)
	}
}

// selfSigned returns a certificate for 127.0.0.1, its PEM files in a
// temporary directory, and a pool that trusts it.
func selfSigned(t *testing.T) (cert tls.Certificate, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "siobridge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return cert, certFile, keyFile, pool
}

// wssOpen opens a WebSocket to addr's Engine.IO endpoint over TLS (a
// client that offers HTTP/2 too) and returns the negotiated protocol and
// the text of the first frame (the Engine.IO open packet).
func wssOpen(t *testing.T, addr string, pool *x509.CertPool) (proto, open string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a failing test does not hang
	fmt.Fprintf(conn, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket handshake: %s", res.Status)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	n := int(hdr[1] & 0x7f)
	if hdr[0] != 0x81 || n >= 126 { // one unmasked text frame; the open packet is short
		t.Fatalf("first frame header %x", hdr)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return conn.ConnectionState().NegotiatedProtocol, string(b)
}

// TestRunTLS: HTTPS with a self-signed certificate, given as PEM files or
// as a tls.Config: the app's route, the polling handshake and the
// WebSocket transport work, over HTTP/1.1 even for a client that offers
// HTTP/2 (the WebSocket transport takes over its connection).
func TestRunTLS(t *testing.T) {
	cert, certFile, keyFile, pool := selfSigned(t)
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer https.CloseIdleConnections()
	for name, o := range map[string]server.RunOptions{
		"files":     {Handler: appMux(), CertFile: certFile, KeyFile: keyFile},
		"tlsConfig": {Handler: appMux(), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}},
	} {
		t.Run(name, func(t *testing.T) {
			addr, _ := serve(t, newServer(t), o)
			checkServes(t, https, "https://"+addr, "/socket.io/")
			if code, body := get(t, http.DefaultClient, "http://"+addr+"/hello"); code == 200 {
				t.Errorf("plain HTTP served on the HTTPS port: %q", body)
			}
			proto, open := wssOpen(t, addr, pool)
			if proto == "h2" || !strings.HasPrefix(open, `0{"sid":`) {
				t.Fatalf("WebSocket over TLS: protocol %q, first frame %q", proto, open)
			}
		})
	}
	srv := newServer(t)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln, server.RunOptions{CertFile: certFile + ".missing", KeyFile: keyFile}); err == nil {
		t.Fatal("Serve with a missing certificate file returned nil")
	}
}

// TestShutdownEndsRun: Shutdown makes Run return nil once the clients
// were disconnected and a polling request in flight was answered (it
// would otherwise wait for the 25 s ping interval, past Shutdown's
// context), and the port is closed; Run after Shutdown fails at once.
func TestShutdownEndsRun(t *testing.T) {
	srv := server.New()
	// the app also serves Socket.IO at /tracked/, telling when a request is in its handler
	entered := make(chan struct{}, 1)
	app := appMux()
	app.Handle("/tracked/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sid") != "" {
			entered <- struct{}{}
		}
		srv.ServeHTTP(w, r)
	}))
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	res := make(chan error, 1)
	go func() { res <- srv.Run(addr, server.RunOptions{Handler: app}) }()
	if err := testenv.WaitPort(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c := dialConnected(t, "http://"+addr)
	// a polling client waiting for packets
	_, body := get(t, http.DefaultClient, "http://"+addr+"/tracked/?EIO=4&transport=polling")
	sid := strings.Split(strings.TrimPrefix(body, `0{"sid":"`), `"`)[0]
	poll := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/tracked/?EIO=4&transport=polling&sid=" + sid)
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		poll <- err
	}()
	select {
	case <-entered:
	case err := <-poll:
		t.Fatalf("the polling request ended at once: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Shutdown")
	}
	if err := <-poll; err != nil { // answered before Shutdown returned
		t.Errorf("the pending polling request: %v", err)
	}
	if !c.WaitDisconnected("/", 5*time.Second) {
		t.Error("the WebSocket client is still connected")
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Error("the port still accepts connections")
	}
	if err := srv.Run("127.0.0.1:0"); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Run after Shutdown: %v", err)
	}
}

// A Flask-style program: the application's routes and Socket.IO on one
// port until Shutdown. A program calls srv.Run(":5000", opts) (Listen and
// Serve), and Shutdown from a signal handler; HTTPS with
// server.RunOptions{Handler: app, CertFile: "cert.pem", KeyFile: "key.pem"}.
func ExampleServer_Serve() {
	srv := server.New()
	app := http.NewServeMux()
	app.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "index page") })
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, server.RunOptions{Handler: app}) }()

	res, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		panic(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(string(page))

	srv.Shutdown(context.Background())
	fmt.Println("Serve returned", <-done)
	// Output:
	// index page
	// Serve returned <nil>
}
