package compat_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/examples/chat/chatapp"
)

// TestChatInHeadlessChromium: two real browser pages (Debian's Chromium
// driven by playwright-core) load examples/chat, join a room and see each
// other's messages. The screenshot is kept in compat_test/artifacts.
func TestChatInHeadlessChromium(t *testing.T) {
	needPeer(t, "chromium and examples/chat's npm packages", func() error {
		if _, err := exec.LookPath("chromium"); err != nil {
			return err
		}
		_, err := os.Stat("../examples/chat/node_modules/playwright-core")
		return err
	})
	srv, h := chatapp.New("../examples/chat/node_modules/socket.io-client/dist/socket.io.min.js")
	ln := listen(t, "127.0.0.1:0")
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs("artifacts/chat.png")
	p := startPeer(t, "browser", "node", "../examples/chat/browser-test.js", "http://"+ln.Addr().String()+"/", shot)
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

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
