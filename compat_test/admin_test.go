package compat_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/admin"
	"github.com/siobridge/siobridge/server/servertest"
)

// TestAdminUIInHeadlessChromium: the real Socket.IO Admin UI (npm
// @socket.io/admin-ui's build, embedded in server/admin and served at
// /admin/) logs in to an instrumented server through its connection form
// in headless Chromium, and lists a connected client and its room. The
// screenshot is kept in compat_test/artifacts/admin.png.
func TestAdminUIInHeadlessChromium(t *testing.T) {
	needChromium(t)
	srv := server.New()
	srv.On("/", "join", func(s *server.Socket, room string) string { s.Join(room); return "joined" })
	a, err := admin.Instrument(srv, admin.Options{Auth: admin.Basic("admin", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI()))
	url := serveHTTP(t, mux, srv.Shutdown)

	c, err := servertest.Dial(url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	room := uniq("lobby")
	if _, err := c.EmitWithAck("/", 5*time.Second, "join", room); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs("artifacts/admin.png")
	os.Remove(shot)
	p := startPeer(t, "browser", "node", "../examples/chat/admin-ui-test.js", url, "admin", "s3cret", c.SID("/"), room, shot)
	res := p.waitFor("result", 90*time.Second, func(l map[string]any) bool { _, ok := l["ok"]; return ok })
	if res["ok"] != true {
		t.Fatalf("admin UI test: %v", res["error"])
	}
	t.Logf("steps: %v", res["steps"])
	if text, _ := res["text"].(string); !strings.Contains(text, room) || !strings.Contains(text, c.SID("/")) {
		t.Errorf("the socket's page does not show its id and room:\n%s", text)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}

// TestAdminUIVendoredMatchesNpm: server/admin/ui is exactly the npm
// package's ui/dist (source maps excepted) at the version examples/chat
// locks, plus its LICENSE: run server/admin/vendor-ui.sh after changing
// that version.
func TestAdminUIVendoredMatchesNpm(t *testing.T) {
	const pkg = "../examples/chat/node_modules/@socket.io/admin-ui"
	needPeer(t, "examples/chat's npm packages", func() error { _, err := os.Stat(pkg + "/ui/dist"); return err })
	want := map[string]string{"LICENSE": pkg + "/LICENSE"}
	filepath.WalkDir(pkg+"/ui/dist", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".map") {
			rel, _ := filepath.Rel(pkg+"/ui/dist", p)
			want[filepath.ToSlash(rel)] = p
		}
		return err
	})
	got := map[string]bool{}
	filepath.WalkDir("../server/admin/ui", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel("../server/admin/ui", p)
			got[filepath.ToSlash(rel)] = true
		}
		return err
	})
	for name, src := range want {
		a, err1 := os.ReadFile(src)
		b, err2 := os.ReadFile("../server/admin/ui/" + name)
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("server/admin/ui/%s differs from the npm package's (%v, %v): run server/admin/vendor-ui.sh", name, err1, err2)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && name != "VERSION" {
			t.Errorf("server/admin/ui/%s is not in the npm package", name)
		}
	}
}
