package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/wstest"
	"github.com/siobridge/siobridge/server"
)

// originServer serves srv on a loopback test server.
func originServer(t *testing.T, opts ...server.Option) *httptest.Server {
	srv := newServer(t, opts...)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

// pollReq sends a polling request (a handshake when sid is "") with the
// given Origin ("" for none) and returns its status and body.
func pollReq(t *testing.T, hs *httptest.Server, method, sid, origin, body string, hdr ...string) (int, string) {
	t.Helper()
	u := hs.URL + "/socket.io/?EIO=4&transport=polling"
	if sid != "" {
		u += "&sid=" + sid
	}
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// handshakeHeaders returns the headers of a polling handshake from origin.
func handshakeHeaders(t *testing.T, hs *httptest.Server, origin string) http.Header {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/socket.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", origin)
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header
}

// handshakeSid opens a polling session without an Origin header.
func handshakeSid(t *testing.T, hs *httptest.Server) string {
	t.Helper()
	code, body := pollReq(t, hs, http.MethodGet, "", "", "")
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	return open.Sid
}

// wsReq opens a WebSocket (an upgrade of session sid when not "") with the
// given Origin and returns the HTTP status of the answer (101 when
// accepted) and the body of a refusal.
func wsReq(t *testing.T, hs *httptest.Server, sid, origin string) (int, string) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	if sid != "" {
		u += "&sid=" + sid
	}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wstest.Dialer.DialContext(ctx, u, h)
	if err == nil {
		if sid == "" {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			c.ReadMessage() // the open packet: the server is done with the handshake
		}
		c.Close()
		return resp.StatusCode, ""
	}
	if resp == nil {
		t.Fatalf("websocket dial: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkOrigin asserts that a request from origin is accepted or refused
// on every kind of request of both transports: polling handshake, polling
// GET and POST of a session, WebSocket handshake, WebSocket upgrade.
func checkOrigin(t *testing.T, hs *httptest.Server, origin string, accepted bool, hdr ...string) {
	t.Helper()
	want := func(what string, code int, body string, okCode int) {
		t.Helper()
		switch {
		case accepted && code != okCode:
			t.Errorf("origin %q, %s: %d %q, want %d", origin, what, code, body, okCode)
		case !accepted && (code != http.StatusBadRequest || body != "Not an accepted origin."):
			t.Errorf("origin %q, %s: %d %q, want 400 \"Not an accepted origin.\"", origin, what, code, body)
		}
	}
	code, body := pollReq(t, hs, http.MethodGet, "", origin, "", hdr...)
	want("polling handshake", code, body, 200)
	code, body = pollReq(t, hs, http.MethodPost, handshakeSid(t, hs), origin, "6", hdr...)
	want("polling POST", code, body, 200)
	sid := handshakeSid(t, hs)
	pollReq(t, hs, http.MethodPost, sid, "", "2") // a client ping: the GET gets its pong at once
	code, body = pollReq(t, hs, http.MethodGet, sid, origin, "", hdr...)
	want("polling GET", code, body, 200)
	if len(hdr) > 0 {
		return // the WebSocket requests below carry no extra headers
	}
	code, body = wsReq(t, hs, "", origin)
	want("websocket handshake", code, body, http.StatusSwitchingProtocols)
	code, body = wsReq(t, hs, handshakeSid(t, hs), origin)
	want("websocket upgrade", code, body, http.StatusSwitchingProtocols)
}

func TestOriginDefaultIsSameOrigin(t *testing.T) {
	hs := originServer(t)
	self := hs.URL // http://127.0.0.1:port: the request's scheme and Host
	checkOrigin(t, hs, "", true)
	checkOrigin(t, hs, self, true)
	checkOrigin(t, hs, "https://evil.example", false)
	checkOrigin(t, hs, "http://localhost"+strings.TrimPrefix(self, "http://127.0.0.1"), false) // another host name
	checkOrigin(t, hs, strings.Replace(self, "http:", "https:", 1), false)                     // another scheme
	// behind a TLS-terminating proxy, as python-engineio
	checkOrigin(t, hs, "https://app.example", true, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example")
	checkOrigin(t, hs, strings.Replace(self, "http:", "https:", 1), true, "X-Forwarded-Proto", "https, http")
	checkOrigin(t, hs, "https://evil.example", false, "X-Forwarded-Proto", "https")
}

func TestOriginList(t *testing.T) {
	hs := originServer(t, server.WithCORS(true, "https://good.example"))
	checkOrigin(t, hs, "https://good.example", true)
	checkOrigin(t, hs, "", true)
	checkOrigin(t, hs, "https://evil.example", false)
	checkOrigin(t, hs, hs.URL, false) // the list replaces the default (python-engineio)
	// CORS preflights too
	if code, body := pollReq(t, hs, http.MethodOptions, "", "https://evil.example", ""); code != 400 || body != "Not an accepted origin." {
		t.Errorf("preflight from another origin: %d %q", code, body)
	}
	if code, _ := pollReq(t, hs, http.MethodOptions, "", "https://good.example", ""); code != http.StatusNoContent {
		t.Errorf("preflight from a listed origin: %d", code)
	}
	if h := handshakeHeaders(t, hs, "https://good.example"); h.Get("Access-Control-Allow-Origin") != "https://good.example" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("CORS headers: %v", h)
	}
}

func TestOriginAny(t *testing.T) {
	hs := originServer(t, server.WithCORS(false, "*"))
	checkOrigin(t, hs, "https://evil.example", true)
	checkOrigin(t, hs, hs.URL, true)
}

func TestOriginFunction(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	hs := originServer(t, server.WithOriginCheck(func(origin string, r *http.Request) bool {
		if r.URL.Path != "/socket.io/" {
			t.Errorf("path %q", r.URL.Path)
		}
		mu.Lock()
		seen = append(seen, origin)
		mu.Unlock()
		return strings.HasSuffix(origin, ".good.example")
	}))
	checkOrigin(t, hs, "https://a.good.example", true)
	checkOrigin(t, hs, "https://evil.example", false)
	checkOrigin(t, hs, "", true)
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	for _, o := range got {
		if o == "" {
			t.Error("the function was called for a request without Origin")
		}
	}
	if h := handshakeHeaders(t, hs, "https://a.good.example"); h.Get("Access-Control-Allow-Origin") != "https://a.good.example" {
		t.Errorf("CORS headers: %v", h)
	}
}
