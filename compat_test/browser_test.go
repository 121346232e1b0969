package compat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siobridge/siobridge/examples/chat/chatapp"
	"github.com/siobridge/siobridge/server"
)

const clientBundle = "../examples/chat/node_modules/socket.io-client/dist/socket.io.min.js"

// needChromium skips (or fails) without Chromium and the npm packages of
// examples/chat (playwright-core, socket.io-client).
func needChromium(t *testing.T) {
	needPeer(t, "chromium and examples/chat's npm packages", func() error {
		if _, err := exec.LookPath("chromium"); err != nil {
			return err
		}
		_, err := os.Stat("../examples/chat/node_modules/playwright-core")
		return err
	})
}

// serveHTTP serves h on a new port of 127.0.0.1 and returns its origin
// (http://127.0.0.1:port); shutdown runs first at cleanup.
func serveHTTP(t *testing.T, h http.Handler, shutdown func(context.Context) error) string {
	ln := listen(t, "127.0.0.1:0")
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if shutdown != nil {
			shutdown(ctx)
		}
		hs.Close()
	})
	return "http://" + ln.Addr().String()
}

// pageMux serves html at "/" and the official client's bundle at
// "/socket.io.min.js".
func pageMux(html string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, clientBundle)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, html)
	})
	return mux
}

// TestChatInHeadlessChromium: two real browser pages (Debian's Chromium
// driven by playwright-core) load examples/chat, join a room and see each
// other's messages. The screenshot is kept in compat_test/artifacts. The
// chat's server has the default options: its own (same-origin) page is
// accepted.
func TestChatInHeadlessChromium(t *testing.T) {
	needChromium(t)
	srv, h := chatapp.New(clientBundle)
	url := serveHTTP(t, h, srv.Shutdown)
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs("artifacts/chat.png")
	p := startPeer(t, "browser", "node", "../examples/chat/browser-test.js", url+"/", shot)
	res := p.waitFor("result", 90*time.Second, func(l map[string]any) bool { _, ok := l["ok"]; return ok })
	if res["ok"] != true {
		t.Fatalf("browser test: %v", res["error"])
	}
	alice := strings.Join(toStrings(res["alice"]), "\n")
	bob := strings.Join(toStrings(res["bob"]), "\n")
	if !strings.Contains(alice, "bob: hi alice, bob here") || !strings.Contains(bob, "alice: hello from alice") ||
		!strings.Contains(alice, "bob has entered the room.") {
		t.Fatalf("chat logs:\nalice:\n%s\nbob:\n%s", alice, bob)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}

// crossOriginPage connects, from its own origin, to every server of
// ?targets={"name": "http://..."} once per transport, without reconnection,
// and records in body[data-results] {"name/transport": "connected" or
// "connect_error: ..."}.
const crossOriginPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body>
<script src="/socket.io.min.js"></script>
<script>
  const targets = JSON.parse(new URLSearchParams(location.search).get("targets"));
  const results = {};
  let pending = 0;
  for (const [name, url] of Object.entries(targets)) {
    for (const transport of ["polling", "websocket"]) {
      const key = name + "/" + transport;
      pending++;
      const s = io(url, { transports: [transport], reconnection: false, forceNew: true, timeout: 15000 });
      const done = (r) => {
        if (key in results) return;
        results[key] = r;
        s.close();
        if (--pending === 0) document.body.dataset.results = JSON.stringify(results);
      };
      s.on("connect", () => done("connected"));
      s.on("connect_error", (e) => done("connect_error: " + e.message));
    }
  }
</script>
</body></html>`

// TestCrossOriginPageInHeadlessChromium: a page served from another origin
// (another port of 127.0.0.1) cannot connect to a server with the default
// options, on either transport (the WebSocket handshake and the polling
// requests are refused with 400 "Not an accepted origin."), while a server
// that lists the page's origin with WithCORS accepts it on both.
func TestCrossOriginPageInHeadlessChromium(t *testing.T) {
	needChromium(t)
	page := serveHTTP(t, pageMux(crossOriginPage), nil)

	var connects [2]atomic.Int32 // per server: connect handlers run
	start := func(i int, opts ...server.Option) string {
		srv := server.New(opts...)
		srv.OnConnect("/", func(*server.Socket, json.RawMessage) error { connects[i].Add(1); return nil })
		mux := http.NewServeMux()
		mux.Handle("/socket.io/", srv)
		return serveHTTP(t, mux, srv.Shutdown)
	}
	defaults := start(0)
	listed := start(1, server.WithCORS(false, page))
	targets, _ := json.Marshal(map[string]string{"default": defaults, "listed": listed})

	p := startPeer(t, "browser", "node", "../examples/chat/browser-origin-test.js", page+"/?targets="+string(targets))
	res := p.waitFor("result", 90*time.Second, func(l map[string]any) bool { _, ok := l["ok"]; return ok })
	if res["ok"] != true {
		t.Fatalf("browser test: %v", res["error"])
	}
	results, _ := res["results"].(map[string]any)
	t.Logf("page %s: %v", page, results)
	for _, tr := range []string{"polling", "websocket"} {
		if r, _ := results["default/"+tr].(string); !strings.HasPrefix(r, "connect_error") {
			t.Errorf("default server, %s: %q, want a connect_error", tr, r)
		}
		if r := results["listed/"+tr]; r != "connected" {
			t.Errorf("server listing the page's origin, %s: %q, want connected", tr, r)
		}
	}
	if n := connects[0].Load(); n != 0 {
		t.Errorf("the default server accepted %d connections from another origin", n)
	}
	if n := connects[1].Load(); n != 2 {
		t.Errorf("the server listing the page's origin accepted %d connections, want 2", n)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
