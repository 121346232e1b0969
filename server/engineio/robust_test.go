package engineio

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/internal/wstest"
)

func serverWith(t *testing.T, o Options, onConn func(*Conn)) (string, *Server) {
	t.Helper()
	s := NewServer(o)
	s.OnConnection(onConn)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs.URL + "/", s
}

func TestMaxPayloadEnforcedOnBothTransports(t *testing.T) {
	base, _ := serverWith(t, Options{MaxPayload: 100, PingInterval: time.Minute}, func(c *Conn) {
		c.OnMessage(func(d []byte, b bool) { c.Send(append([]byte(nil), d...), b) })
	})
	sid := openPolling(t, base)
	if code, _ := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "4"+strings.Repeat("x", 200)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize POST: %d", code)
	}
	if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
		t.Fatalf("the session survived an oversize POST: %d", code)
	}
	c := wstest.Dial(t, wsURL(base)+"?EIO=4&transport=websocket")
	c.Read()
	c.Send("4" + strings.Repeat("x", 50)) // under the limit: echoed
	if _, d := c.Read(); len(d) != 51 {
		t.Fatalf("echo %q", d)
	}
	c.Send("4" + strings.Repeat("x", 200))
	c.WaitClose(5 * time.Second)
}

// TestSlowClientDoesNotDelayOthers: a client that never reads is closed
// when its bounded queue fills; the others keep receiving.
func TestSlowClientDoesNotDelayOthers(t *testing.T) {
	var mu sync.Mutex
	var conns []*Conn
	var reasons []string
	base, _ := serverWith(t, Options{SendQueueSize: 16, PingInterval: time.Minute}, func(c *Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		c.OnClose(func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() })
	})
	fast := wstest.Dial(t, wsURL(base)+"?EIO=4&transport=websocket")
	fast.Read()
	slowSid := openPolling(t, base) // a polling client that never polls: nothing drains its queue
	_ = slowSid
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	payload := []byte(strings.Repeat("y", 1000))
	// the sender waits for the fast client every 8 messages (so the fast
	// client never has more than 8 queued); nobody drains the slow one
	for i := 0; i < 100; i++ {
		mu.Lock()
		cs := append([]*Conn(nil), conns...)
		mu.Unlock()
		for _, c := range cs {
			c.Send(payload, false) // never blocks
		}
		if i%8 == 7 || i == 99 {
			for j := 0; j < 8 && (i != 99 || j < 4); j++ {
				if _, d := fast.Read(); len(d) != 1001 {
					t.Fatalf("fast client got %q", d)
				}
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 1 || reasons[0] != "send queue full" {
		t.Fatalf("close reasons %v", reasons)
	}
}

// TestManyWebSocketClients: 10,000 WebSocket clients (in a child process,
// so that each process stays within its descriptor limit) connect,
// exchange a message and disconnect; every session goes away, the heap
// returns near where it was, and goleak checks the goroutines when the
// package ends.
func TestManyWebSocketClients(t *testing.T) {
	n := 10000
	if raceEnabled {
		n = 5000 // one server goroutine per client, under the race detector's 8128
	}
	if testing.Short() {
		n = 1000
	}
	if v := os.Getenv("SIOBRIDGE_MANY_CLIENTS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	var open atomic.Int64
	base, s := serverWith(t, Options{PingInterval: time.Minute}, func(c *Conn) {
		open.Add(1)
		c.OnMessage(func(d []byte, b bool) { c.Send(append([]byte(nil), d...), b) })
		c.OnClose(func(string) { open.Add(-1) })
	})
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(n+1000) {
		lim.Cur = min(lim.Max, uint64(n+1000))
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	child := exec.Command(os.Args[0], "-test.run=^TestHelperClients$", "-test.v")
	child.Env = append(os.Environ(), "SIOBRIDGE_HELPER_URL="+wsURL(base)+"?EIO=4&transport=websocket",
		"SIOBRIDGE_HELPER_N="+strconv.Itoa(n))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	sc := bufio.NewScanner(stdout)
	ready := ""
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "READY ") {
			ready = sc.Text()
			break
		}
	}
	if ready != fmt.Sprintf("READY %d 0", n) {
		stdin.Close()
		t.Fatalf("client process: %q", ready)
	}
	if got := s.Count(); got != n {
		t.Fatalf("server counts %d sessions, want %d", got, n)
	}
	during := runtime.NumGoroutine()
	stdin.Close() // the child closes every client and exits
	go io.Copy(io.Discard, stdout)
	deadline := time.Now().Add(60 * time.Second)
	for s.Count() != 0 || open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still open after every client left", s.Count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d clients: %d goroutines while connected; heap in use %+d KiB after they left", n, during, grown/1024)
	if grown > 32<<20 {
		t.Fatalf("the heap kept %d MiB after every client left", grown>>20)
	}
}

// TestHelperClients is the child process of TestManyWebSocketClients.
func TestHelperClients(t *testing.T) {
	url := os.Getenv("SIOBRIDGE_HELPER_URL")
	if url == "" {
		t.Skip("runs as the client process of TestManyWebSocketClients")
	}
	n, _ := strconv.Atoi(os.Getenv("SIOBRIDGE_HELPER_N"))
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	clients := make([]*websocket.Conn, n)
	// small buffers, the write buffer pooled: thousands of idle clients
	dialer := &websocket.Dialer{HandshakeTimeout: 60 * time.Second, ReadBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, _, err := dialer.DialContext(ctx, url, nil)
			if err != nil {
				failed.Add(1)
				return
			}
			clients[i] = c
			deadline, _ := ctx.Deadline()
			c.SetReadDeadline(deadline)
			c.ReadMessage() // open packet
			msg := fmt.Sprintf("4hello %d", i)
			c.WriteMessage(websocket.TextMessage, []byte(msg))
			if _, d, err := c.ReadMessage(); err != nil || string(d) != msg {
				failed.Add(1)
			}
			c.SetReadDeadline(time.Time{})
		}(i)
	}
	wg.Wait()
	fmt.Printf("READY %d %d\n", n, failed.Load())
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	for _, c := range clients {
		if c != nil {
			wstest.CloseHandshake(c, 10*time.Second)
		}
	}
}

func TestHTTPCompressionCookieAndPerMessageDeflate(t *testing.T) {
	base, _ := serverWith(t, Options{PingInterval: time.Minute, PerMessageDeflate: true,
		Cookie: &Cookie{}}, func(c *Conn) {
		c.OnMessage(func(d []byte, b bool) { c.Send(append([]byte(nil), d...), b) })
	})
	// the cookie carries the sid
	resp, err := http.Get(base + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "io" {
			ck = c
		}
	}
	if ck == nil || len(ck.Value) != 20 || !ck.HttpOnly || ck.Path != "/" || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v, want the zero Cookie's defaults: HttpOnly, SameSite=Lax, path /", ck)
	}
	sid := ck.Value
	// a large polling response is gzip-compressed for a client that asks
	big := strings.Repeat("z", 5000)
	do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "4"+big)
	req, _ := http.NewRequest("GET", base+"?EIO=4&transport=polling&sid="+sid, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength >= 5000 {
		t.Fatalf("not compressed: %q, %d bytes", resp.Header.Get("Content-Encoding"), resp.ContentLength)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if string(body) != "4"+big {
		t.Fatalf("decompressed %d bytes", len(body))
	}
	// permessage-deflate is negotiated with a client that offers it
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dialer := &websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	ws, hresp, err := dialer.DialContext(ctx, wsURL(base)+"?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if ext := hresp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q", ext)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	ws.ReadMessage()
	ws.WriteMessage(websocket.TextMessage, []byte("4"+big))
	if _, d, err := ws.ReadMessage(); err != nil || string(d) != "4"+big {
		t.Fatalf("compressed echo: %d bytes, %v", len(d), err)
	}
}

// Every attribute of the session cookie can be set; HttpOnly is dropped
// only when asked.
func TestCookieAttributes(t *testing.T) {
	base, _ := serverWith(t, Options{PingInterval: time.Minute, Cookie: &Cookie{Name: "sio", Path: "/app",
		Domain: "example.test", MaxAge: 600, Secure: true, ScriptAccess: true, SameSite: http.SameSiteStrictMode}},
		func(c *Conn) {})
	resp, err := http.Get(base + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"sio=", "Path=/app", "Domain=example.test", "Max-Age=600", "Secure", "SameSite=Strict"} {
		if !strings.Contains(got, want) {
			t.Errorf("Set-Cookie %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "HttpOnly") {
		t.Errorf("Set-Cookie %q is HttpOnly with ScriptAccess", got)
	}
}

// Engine-level events are logged at debug level through the server's
// logger (python-engineio's engineio_logger): the handshake, the upgrade,
// the close with its reason, and a refused request.
func TestEngineEventsLogged(t *testing.T) {
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base, _ := serverWith(t, Options{PingInterval: time.Minute, Logger: log}, func(c *Conn) {})
	sid := openPolling(t, base)
	w := dialRaw(t, base, "EIO=4&transport=websocket&sid="+sid)
	w.text("2probe")
	w.read() // 3probe
	w.text("5")
	w.text("1") // the client closes
	if code, _ := get(t, base+"?EIO=4&transport=polling&sid=unknown"); code != 400 {
		t.Fatalf("unknown sid: %d", code)
	}
	for _, want := range []string{
		`msg="engineio: session opened" sid=` + sid + ` transport=polling`,
		`msg="engineio: session upgraded" sid=` + sid,
		`msg="engineio: session closed" sid=` + sid + ` reason="transport close"`,
		`msg="engineio: request refused" status=400`,
	} {
		waitFor(t, "log line "+want, func() bool { return strings.Contains(logs.String(), want) })
	}
}
