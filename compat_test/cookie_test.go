package compat_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
)

// cookiePage connects to the Socket.IO server mounted at /my-path/ (the
// client's path option), waits for the upgrade to WebSocket, sends an
// event with an ack, then fetches /other/probe, and records in
// body[data-results] what it saw.
const cookiePage = `<!doctype html>
<html><head><meta charset="utf-8"><title>cookie path</title></head>
<body>
<script src="/socket.io.min.js"></script>
<script>
  const results = {};
  const finish = () => { document.body.dataset.results = JSON.stringify(results); };
  const s = io({ path: "/my-path/", transports: ["polling", "websocket"], reconnection: false, timeout: 15000 });
  s.on("connect_error", (e) => { results.error = "connect_error: " + e.message; finish(); });
  s.on("connect", () => {
    results.engineSid = s.io.engine.id;
    const ready = async () => {
      results.transport = s.io.engine.transport.name;
      results.ack = await s.timeout(10000).emitWithAck("echo", "hi");
      await fetch("/other/probe");
      s.close();
      finish();
    };
    if (s.io.engine.transport.name === "websocket") ready();
    else s.io.engine.once("upgrade", ready);
  });
</script>
</body></html>`

// seenRequest is a request the server got, with its io cookie.
type seenRequest struct {
	path, transport, sid, method string
	cookie                       string // the io cookie's value, "" when not sent
	setCookie                    []string
}

// TestCookiePathInHeadlessChromium: a server mounted at /my-path/ (the
// path option) with WithCookie(engineio.Cookie{Path: "/my-path"}), and
// the official JavaScript client in Chromium, connecting with
// path: "/my-path/" over polling then WebSocket. The handshake's
// Set-Cookie carries the path (and HttpOnly, SameSite=Lax); the browser
// sends the cookie back on the next polling requests and on the WebSocket
// upgrade, and not to a path outside /my-path (/other/probe), as it would
// with the default path "/".
func TestCookiePathInHeadlessChromium(t *testing.T) {
	needChromium(t)
	srv := server.New(server.WithCookie(engineio.Cookie{Path: "/my-path"}))
	srv.On("/", "echo", func(s *server.Socket, v string) string { return v })

	var mu sync.Mutex
	var seen []seenRequest
	record := func(r *http.Request, w http.ResponseWriter) {
		sr := seenRequest{path: r.URL.Path, method: r.Method, transport: r.URL.Query().Get("transport"), sid: r.URL.Query().Get("sid")}
		if c, err := r.Cookie("io"); err == nil {
			sr.cookie = c.Value
		}
		if w != nil {
			sr.setCookie = w.Header().Values("Set-Cookie")
		}
		mu.Lock()
		seen = append(seen, sr)
		mu.Unlock()
	}
	mux := pageMux(cookiePage)
	mux.HandleFunc("/my-path/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") == "websocket" {
			record(r, nil) // before the connection is taken over
			srv.ServeHTTP(w, r)
			return
		}
		srv.ServeHTTP(w, r)
		record(r, w)
	})
	mux.HandleFunc("/other/probe", func(w http.ResponseWriter, r *http.Request) { record(r, nil) })
	url := serveHTTP(t, mux, srv.Shutdown)

	p := startPeer(t, "browser", "node", "../examples/chat/browser-origin-test.js", url+"/")
	res := p.waitFor("result", 90*time.Second, func(l map[string]any) bool { _, ok := l["ok"]; return ok })
	if res["ok"] != true {
		t.Fatalf("browser test: %v", res["error"])
	}
	results, _ := res["results"].(map[string]any)
	t.Logf("page: %v", results)
	sid, _ := results["engineSid"].(string)
	if results["error"] != nil || sid == "" || results["transport"] != "websocket" || fmt.Sprint(results["ack"]) != "hi" {
		t.Fatalf("the page did not connect, upgrade and get its ack: %v", results)
	}

	mu.Lock()
	defer mu.Unlock()
	var handshake, polls, upgrades, probes int
	for _, r := range seen {
		t.Logf("%s %s transport=%s sid=%s cookie=%q set-cookie=%q", r.method, r.path, r.transport, r.sid, r.cookie, r.setCookie)
		switch {
		case r.path == "/other/probe":
			probes++
			if r.cookie != "" {
				t.Errorf("the io cookie (path /my-path) was sent to /other/probe: %q", r.cookie)
			}
		case r.sid == "" && r.transport == "polling":
			handshake++
			want := "io=" + sid + "; Path=/my-path; HttpOnly; SameSite=Lax"
			if len(r.setCookie) != 1 || r.setCookie[0] != want {
				t.Errorf("handshake Set-Cookie %q, want %q", r.setCookie, want)
			}
		case r.sid != sid:
			t.Errorf("a request of another session: %+v", r)
		case r.transport == "polling":
			polls++
			if r.cookie != sid {
				t.Errorf("%s polling request sent io cookie %q, want %q", r.method, r.cookie, sid)
			}
		case r.transport == "websocket":
			upgrades++
			if r.cookie != sid {
				t.Errorf("WebSocket upgrade sent io cookie %q, want %q", r.cookie, sid)
			}
		}
	}
	if handshake != 1 || polls == 0 || upgrades != 1 || probes != 1 {
		t.Errorf("requests seen: %d handshakes, %d polling requests, %d upgrades, %d probes; want 1, >0, 1, 1",
			handshake, polls, upgrades, probes)
	}
}
