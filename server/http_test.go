package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// hardenedServer serves srv behind NewHTTPServer (what Run uses) on a
// loopback port, with the header timeout shortened for the test.
func hardenedServer(t *testing.T, srv *server.Server, headerTimeout time.Duration) string {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := server.NewHTTPServer("", mux)
	if hs.ReadHeaderTimeout != server.ReadHeaderTimeout || hs.MaxHeaderBytes != 16<<10 || hs.IdleTimeout != server.IdleTimeout {
		t.Fatalf("NewHTTPServer limits: %v %v %v", hs.ReadHeaderTimeout, hs.MaxHeaderBytes, hs.IdleTimeout)
	}
	if headerTimeout > 0 {
		hs.ReadHeaderTimeout = headerTimeout
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// A client that never finishes its request header (slowloris) has its
// connection closed by the server; it used to be held forever.
func TestSlowHeadersClosed(t *testing.T) {
	addr := hardenedServer(t, newServer(t), 200*time.Millisecond)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// the server must end the connection; the deadline only keeps a
	// failing test from hanging
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open (read %q)", b)
	}
}

// A request header over 16 KB (Node's limit) is refused with 431.
func TestLargeHeadersRefused(t *testing.T) {
	addr := hardenedServer(t, newServer(t), 0)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/socket.io/?EIO=4&transport=polling", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 20<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
}

// bigHeader is handshake headers of about size bytes besides a cookie and
// a token.
func bigHeader(size int) http.Header {
	h := http.Header{"Cookie": {"session=abc"}, "X-Token": {"t0k3n"}}
	for i := 0; size > 0; i++ {
		v := strings.Repeat("j", min(size, 4000))
		h.Set("X-Junk-"+strings.Repeat("z", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26%26)), v)
		size -= len(v)
	}
	return h
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// A session keeps a trimmed copy of its handshake request: the headers up
// to 16 KB (cookies and small headers kept), no body. It used to keep the
// whole request, ~1 MB of headers per session on a server that allows
// them.
func TestSessionRequestTrimmed(t *testing.T) {
	srv := newServer(t)
	got := make(chan *http.Request, 1)
	srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error { got <- s.Request(); return nil })
	client(t, srv, "/", servertest.Options{Header: bigHeader(300 << 10)})
	r := <-got
	if n := headerBytes(r.Header); n > 16<<10 {
		t.Errorf("the session keeps %d bytes of headers, want at most 16 KB", n)
	}
	if r.Header.Get("Cookie") != "session=abc" || r.Header.Get("X-Token") != "t0k3n" || r.Method != http.MethodGet ||
		r.URL.Query().Get("EIO") != "4" || r.RemoteAddr == "" || r.Host == "" {
		t.Errorf("trimmed request lost what handlers use: %s %v %v %q %q", r.Method, r.URL, r.Header, r.RemoteAddr, r.Host)
	}
	if c, err := r.Cookie("session"); err != nil || c.Value != "abc" {
		t.Errorf("cookie: %v %v", c, err)
	}
}

// Sessions whose handshakes carried large headers do not keep them: the
// heap held by 20 live sessions with 300 KB of headers each stays far below
// those 6 MB.
func TestSessionRequestHeapBounded(t *testing.T) {
	const sessions, size = 20, 300 << 10
	srv := newServer(t)
	hdr := bigHeader(size) // shared by the clients: only the server's copies count
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range sessions {
		client(t, srv, "/", servertest.Options{Header: hdr})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d sessions with %d KB of headers each: heap +%d KB", sessions, size>>10, grown>>10)
	if grown > sessions*size/3 {
		t.Errorf("heap grew by %d KB for %d sessions: their headers (%d KB) are kept", grown>>10, sessions, sessions*size>>10)
	}
}
