package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
)

// quickStartCommands returns the commands of the README's quick start:
// the lines of the code blocks of its "## Quick start" section, in order.
func quickStartCommands(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start")
	if !ok {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var cmds []string
	inBlock := false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock
		case inBlock && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#"):
			cmds = append(cmds, strings.TrimSpace(line))
		}
	}
	return cmds
}

// shellWith runs a README command with "go run ./cmd/NAME" replaced by the
// binary built for the tests, through sh (so the README's quoting is the
// shell's), from the repository's root.
func shellWith(ctx context.Context, t *testing.T, command, goRun, bin string) *exec.Cmd {
	t.Helper()
	rest, ok := strings.CutPrefix(command, goRun)
	if !ok {
		t.Fatalf("README command %q does not start with %q", command, goRun)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", "exec "+bin+rest)
	cmd.Dir = ".."
	return cmd
}

// browserPrelude starts the scripts of startBrowserScript: launch() opens
// headless Chromium (Debian's, driven by playwright-core), out(o) prints
// a JSON line, fail(e) prints {"ok": false, "error": ...} and exits 1.
const browserPrelude = `
const { chromium } = require("playwright-core");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (e) => { out({ ok: false, error: String(e) }); process.exit(1); };
const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
`

// startBrowserScript runs browserPrelude+script with node, with args,
// finding playwright-core in examples/chat's npm packages.
func startBrowserScript(t *testing.T, script string, args ...string) *peer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "page-test.js")
	if err := os.WriteFile(path, []byte(browserPrelude+script), 0o600); err != nil {
		t.Fatal(err)
	}
	modules, err := filepath.Abs("../examples/chat/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NODE_PATH", modules)
	return startPeer(t, "browser", append([]string{"node", path}, args...)...)
}

// quickStartPage drives the page of sioserver in headless Chromium (with
// playwright-core from examples/chat): it waits until the page has joined
// room news and prints {"joined": true}; then waits for a headline event
// in the page's list, takes the screenshot and prints {"ok": true,
// "rows": [...]}; then waits until the page shows the server gone and
// prints {"gone": reason, "reconnecting": "yes" or "no"}. Any failure prints {"ok":
// false, "error": ...}.
const quickStartPage = `
(async () => {
  const [url, shot] = process.argv.slice(2);
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    page.on("console", (m) => process.stderr.write("console: " + m.text() + "\n"));
    await page.goto(url);
    await page.waitForSelector('body[data-status=connected][data-joined~="news"]', { timeout: 20000 });
    out({ joined: true });
    await page.waitForSelector('#events tr[data-event="headline"]', { timeout: 60000 });
    await page.waitForTimeout(1600); // the new row's highlight fades before the screenshot
    await page.screenshot({ path: shot, fullPage: true });
    const rows = await page.$$eval("#events tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    out({ ok: true, rows });
    await page.waitForSelector("body[data-status=disconnected]", { timeout: 60000 });
    out({ gone: await page.$eval("body", (b) => b.dataset.reason), reconnecting: await page.$eval("body", (b) => b.dataset.reconnecting) });
  } finally {
    await browser.close();
  }
})().catch(fail);
`

// TestQuickStart runs exactly the two commands of the README's quick
// start — sioserver, then sioemit in a second terminal — and checks in
// headless Chromium that the page at the printed URL shows the event
// (screenshot: compat_test/artifacts/quickstart.png). The startup output
// must print the README's second command. Then SIGTERM: sioserver exits
// 0 and the page sees the connection end as socket.io-client does when a
// server goes away ("transport close"), and tries to reconnect.
func TestQuickStart(t *testing.T) {
	needChromium(t)
	cmds := quickStartCommands(t)
	if len(cmds) != 2 {
		t.Fatalf("README quick start commands %q, want two", cmds)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:5000", time.Second); err == nil {
		c.Close()
		t.Fatal("127.0.0.1:5000, the quick start's address, is in use")
	}

	server := shellWith(context.Background(), t, cmds[0], "go run ./cmd/sioserver", sioserverBin)
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.LogBuffer
	server.Stderr = &stderr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- server.Wait()
	}()
	defer func() {
		server.Process.Kill()
		if t.Failed() {
			t.Logf("sioserver stderr:\n%s", stderr.String())
		}
	}()
	var url, hint string
	deadline := time.After(60 * time.Second)
	for url == "" || hint == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sioserver exited: %v", <-exited)
			}
			if u, ok := strings.CutPrefix(l, "sioserver: open "); ok {
				url = u
			}
			if h, ok := strings.CutPrefix(l, "sioserver: then try, from the repository: "); ok {
				hint = h
			}
		case <-deadline:
			t.Fatalf("sioserver printed no page URL and sioemit command (url %q, command %q)", url, hint)
		}
	}
	go func() { // the rest of stdout, so that sioserver never blocks on it
		for range lines {
		}
	}()
	if hint != cmds[1] {
		t.Fatalf("sioserver prints the command %q, the README says %q", hint, cmds[1])
	}
	t.Logf("page %s; %s", url, strings.TrimSpace(stderr.String()))

	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs("artifacts/quickstart.png")
	os.Remove(shot)
	browser := startBrowserScript(t, quickStartPage, url, shot)
	browser.waitFor("the page joined room news", 60*time.Second, func(l map[string]any) bool { return l["joined"] == true || l["ok"] == false })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emit := shellWith(ctx, t, cmds[1], "go run ./cmd/sioemit", sioemitBin)
	if out, err := emit.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmds[1], err, out)
	}

	res := browser.waitFor("result", 90*time.Second, func(l map[string]any) bool { _, ok := l["ok"]; return ok })
	if res["ok"] != true {
		t.Fatalf("browser: %v", res["error"])
	}
	rows, _ := res["rows"].([]any)
	found := false
	for _, r := range rows {
		cells := toStrings(r)
		if len(cells) == 3 && cells[1] == "headline" && cells[2] == `"hello"` && cells[0] != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the page's events %v lack headline \"hello\" with its time", rows)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)

	// graceful shutdown, as seen by the page
	server.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("sioserver after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sioserver still running 30 s after SIGTERM")
	}
	gone := browser.waitFor("the page seeing the server gone", 60*time.Second, func(l map[string]any) bool { _, ok := l["gone"]; return ok || l["ok"] == false })
	if gone["gone"] != "transport close" || gone["reconnecting"] != "yes" {
		t.Fatalf("page after SIGTERM: %v, want reason \"transport close\" and reconnecting", gone)
	}
	if !strings.Contains(stderr.String(), "closing the clients") {
		t.Fatalf("sioserver log:\n%s", stderr.String())
	}
}

// TestVendoredSocketIOClient: the socket.io client that sioserver embeds
// is, byte for byte, the npm package socket.io-client's (the version of
// examples/chat's package-lock.json), with its license.
func TestVendoredSocketIOClient(t *testing.T) {
	needPeer(t, "examples/chat's npm packages", func() error {
		_, err := os.Stat("../examples/chat/node_modules/socket.io-client/package.json")
		return err
	})
	for vendored, pkg := range map[string]string{
		"../cmd/sioserver/web/socket.io.min.js":         "../examples/chat/node_modules/socket.io-client/dist/socket.io.min.js",
		"../cmd/sioserver/web/socket.io-client.LICENSE": "../examples/chat/node_modules/socket.io-client/LICENSE",
	} {
		a, err := os.ReadFile(vendored)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(pkg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (cmd/sioserver/web/README.md says how to update it)", vendored, pkg)
		}
	}
	lock, err := os.ReadFile("../examples/chat/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(lock, []byte(`"node_modules/socket.io-client": {`+"\n"+`      "version": "4.8.1"`)) {
		t.Errorf("examples/chat installs another socket.io-client than the 4.8.1 the page names")
	}
}

// roomsPage drives the page's room controls in headless Chromium: it
// opens URL?rooms=alpha, joins beta with the form, leaves alpha with its
// button, prints {"ready": true}; then waits for a "seen" event, prints
// {"ok": true, "rows": [...], "bus": ..., "transport": ..., "joined": ...}.
const roomsPage = `
(async () => {
  const [url] = process.argv.slice(2);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    page.on("console", (m) => process.stderr.write("console: " + m.text() + "\n"));
    await page.goto(url + "?rooms=alpha");
    await page.waitForSelector('body[data-status=connected][data-joined~="alpha"]', { timeout: 20000 });
    await page.fill("#room", "beta");
    await page.click("#join-form button");
    await page.waitForSelector('body[data-joined~="beta"]', { timeout: 10000 });
    await page.click('#rooms li[data-room="alpha"] button');
    await page.waitForSelector('#rooms li[data-room="alpha"]', { state: "detached", timeout: 10000 });
    out({ ready: true });
    await page.waitForSelector('#events tr[data-event="seen"]', { timeout: 60000 });
    await page.waitForFunction(() => document.getElementById("bus").textContent === "connected", null, { timeout: 20000 });
    const rows = await page.$$eval("#events tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const text = (id) => page.$eval("#" + id, (e) => e.textContent);
    out({ ok: true, rows, bus: await text("bus"), transport: await text("transport"),
      joined: await page.$eval("body", (b) => b.dataset.joined) });
  } finally {
    await browser.close();
  }
})().catch(fail);
`

// TestPageRoomsInHeadlessChromium: the page's room controls. It joins the
// rooms of its URL, joins one with its form and leaves one with its
// button; an emit to the room it left does not show, one to the room it
// joined does, with the broker's and the transport's status shown.
// sioserver runs its embedded NATS server on a free port.
func TestPageRoomsInHeadlessChromium(t *testing.T) {
	needChromium(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	nats := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	server := startPeer(t, "sioserver", sioserverBin, "--addr", addr, "--embedded-nats", nats)
	server.waitFor("the banner", 30*time.Second, func(l map[string]any) bool {
		s, _ := l["text"].(string)
		return strings.HasPrefix(s, "sioserver: then try")
	})
	browser := startBrowserScript(t, roomsPage, "http://"+addr+"/")
	browser.waitFor("rooms ready", 60*time.Second, func(l map[string]any) bool { return l["ready"] == true || l["ok"] == false })
	for _, e := range [][]string{{"alpha", "skipped"}, {"beta", "seen"}} {
		if code, out, errs := sioemit(t, "--url", "nats://"+nats, "--to", e[0], e[1], `"x"`); code != 0 {
			t.Fatalf("sioemit %v: %d %s %s", e, code, out, errs)
		}
	}
	res := browser.waitFor("result", 90*time.Second, func(l map[string]any) bool { _, ok := l["ok"]; return ok })
	if res["ok"] != true {
		t.Fatalf("browser: %v", res["error"])
	}
	var events []string
	for _, r := range res["rows"].([]any) {
		if cells := toStrings(r); len(cells) == 3 {
			events = append(events, cells[1])
		}
	}
	if strings.Join(events, ",") != "seen" || res["joined"] != "beta" || res["bus"] != "connected" ||
		(res["transport"] != "websocket" && res["transport"] != "polling") {
		t.Fatalf("page: events %q, %v", events, res)
	}
}
