package compat_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
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
// in headless Chromium, and lists a connected client and its room. It
// works offline: the page requests nothing from another host, nothing it
// requests fails, and its icon font (Material Design Icons) and Roboto
// load from the server. The screenshot is kept in
// compat_test/artifacts/admin.png.
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
	if ext, _ := res["external"].([]any); len(ext) != 0 {
		t.Errorf("the page requested other hosts: %v", ext)
	}
	if failed, _ := res["failed"].([]any); len(failed) != 0 {
		t.Errorf("requests of the page failed: %v", failed)
	}
	fonts, _ := res["fonts"].(map[string]any)
	loaded := map[string]bool{}
	faces, _ := fonts["faces"].([]any)
	for _, f := range faces {
		if f, _ := f.(map[string]any); f["status"] == "loaded" {
			loaded[fmt.Sprint(f["family"])] = true
		}
	}
	if !loaded["Material Design Icons"] || !loaded["Roboto"] || fonts["check"] != true ||
		!strings.Contains(fmt.Sprint(fonts["iconFont"]), "Material Design Icons") {
		t.Errorf("fonts: %v", fonts)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}

// TestAdminUIVendoredMatchesNpm: server/admin/ui is exactly what
// server/admin/vendor-ui.sh makes from the npm packages examples/chat
// locks (the UI's ui/dist without source maps, its fonts, the page
// pointed at them): the script runs into a temporary folder and the two
// trees are compared file by file. Run the script after changing one of
// those versions.
func TestAdminUIVendoredMatchesNpm(t *testing.T) {
	const pkg = "../examples/chat/node_modules/@socket.io/admin-ui"
	needPeer(t, "examples/chat's npm packages", func() error { _, err := os.Stat(pkg + "/ui/dist"); return err })
	needNode(t)
	fresh := filepath.Join(t.TempDir(), "ui")
	if out, err := exec.Command("bash", "../server/admin/vendor-ui.sh", fresh).CombinedOutput(); err != nil {
		t.Fatalf("vendor-ui.sh: %v\n%s", err, out)
	}
	tree := func(root string) map[string]string {
		files := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			files[filepath.ToSlash(rel)] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	want, got := tree(fresh), tree("../server/admin/ui")
	for name, b := range want {
		if g, ok := got[name]; !ok || g != b {
			t.Errorf("server/admin/ui/%s differs from what vendor-ui.sh makes (present: %v): run server/admin/vendor-ui.sh", name, ok)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("server/admin/ui/%s is not made by vendor-ui.sh", name)
		}
	}
}
