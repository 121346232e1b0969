package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/testenv"
)

// needPeer skips (or, with SIOBRIDGE_REQUIRE_PEERS set, fails) when a peer
// program is missing.
func needPeer(t *testing.T, what string, check func() error) {
	t.Helper()
	if err := check(); err != nil {
		if os.Getenv("SIOBRIDGE_REQUIRE_PEERS") != "" {
			t.Fatalf("%s is not available: %v (run scripts/setup.sh)", what, err)
		}
		t.Skipf("%s is not available: %v (run scripts/setup.sh, or set SIOBRIDGE_REQUIRE_PEERS to fail instead)", what, err)
	}
}

func needFlaskSocketIO(t *testing.T) {
	needPeer(t, "Debian's python3-flask-socketio", func() error {
		return exec.Command("/usr/bin/python3", "-c", "import flask_socketio, socketio, redis, kombu, requests").Run()
	})
}

// uniq returns a name no other test uses.
func uniq(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// peer is a peer process whose stdout is read as JSON lines.
type peer struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	cond  chan struct{} // closed and replaced on every new line
	done  chan struct{}
	stdin io.WriteCloser
}

// send writes one JSON line to the peer's stdin.
func (p *peer) send(v any) {
	p.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("%s: write: %v", p.name, err)
	}
}

func startPeer(t *testing.T, name string, argv ...string) *peer {
	t.Helper()
	return startPeerWith(t, name, false, argv...)
}

// startPeerWith starts a peer; with stdin, send writes lines to it.
func startPeerWith(t *testing.T, name string, stdin bool, argv ...string) *peer {
	t.Helper()
	p := &peer{t: t, name: name, cond: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	if stdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	p.cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{p: p}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.cmd.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s output:\n%s", name, p.raw.String())
			p.mu.Unlock()
		}
	})
	return p
}

type lockedWriter struct{ p *peer }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.raw.Write(b)
}

func (p *peer) read(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.raw.WriteString(line + "\n")
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			p.lines = append(p.lines, m)
		} else {
			p.lines = append(p.lines, map[string]any{"type": "text", "text": line})
		}
		close(p.cond)
		p.cond = make(chan struct{})
		p.mu.Unlock()
	}
}

// waitFor waits until a line satisfies match, and returns it.
func (p *peer) waitFor(what string, within time.Duration, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.After(within)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if match(p.lines[seen]) {
				l := p.lines[seen]
				p.mu.Unlock()
				return l
			}
		}
		cond := p.cond
		p.mu.Unlock()
		select {
		case <-cond:
		case <-p.done:
			p.mu.Lock()
			for ; seen < len(p.lines); seen++ {
				if match(p.lines[seen]) {
					l := p.lines[seen]
					p.mu.Unlock()
					return l
				}
			}
			p.mu.Unlock()
			p.t.Fatalf("%s exited before %s", p.name, what)
		case <-deadline:
			p.t.Fatalf("%s: no %s within %s", p.name, what, within)
		}
	}
}

// events returns the event lines seen so far with the given name.
func (p *peer) events(name string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, l := range p.lines {
		if l["type"] == "event" && l["event"] == name {
			out = append(out, l)
		}
	}
	return out
}

func isEvent(name string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["type"] == "event" && l["event"] == name }
}

func isEventWith(name string, firstArg any) func(map[string]any) bool {
	return func(l map[string]any) bool {
		if l["type"] != "event" || l["event"] != name {
			return false
		}
		args, _ := l["args"].([]any)
		return len(args) > 0 && fmt.Sprint(args[0]) == fmt.Sprint(firstArg)
	}
}

// sioemit runs the CLI and returns its exit code and output.
func sioemit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return sioemitStdin(t, "", args...)
}

// sioemitStdin is sioemit with stdin as the CLI's standard input.
func sioemitStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sioemitBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sioemit: %v", err)
	}
	return code, out.String(), errb.String()
}

func mustSioemit(t *testing.T, args ...string) string {
	t.Helper()
	return mustSioemitStdin(t, "", args...)
}

func mustSioemitStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := sioemitStdin(t, stdin, args...)
	if code != 0 {
		t.Fatalf("sioemit %q: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func portString(t *testing.T) string { return strconv.Itoa(testenv.FreePort(t)) }

// eventually retries f every interval until it returns true or within ends.
func eventually(t *testing.T, what string, within, interval time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, within)
		}
		time.Sleep(interval)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
