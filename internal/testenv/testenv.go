// Package testenv helps integration tests find the real brokers and peers
// that the test set-up (scripts/setup.sh) starts, and start private broker
// processes for outage tests.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Broker addresses used by the integration tests.
const (
	RedisAddr = "127.0.0.1:6379"
	AMQPAddr  = "127.0.0.1:5672"
	NATSAddr  = "127.0.0.1:4222"
)

// Need skips the test when addr does not accept connections, unless
// SIOBRIDGE_REQUIRE_BROKERS is set (the README test command sets it), in
// which case the test fails.
func Need(t testing.TB, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("SIOBRIDGE_REQUIRE_BROKERS") != "" {
		t.Fatalf("%s is not reachable at %s (%v); run scripts/setup.sh", name, addr, err)
	}
	t.Skipf("%s is not reachable at %s (%v); run scripts/setup.sh or set SIOBRIDGE_REQUIRE_BROKERS to fail instead", name, addr, err)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitPort waits until addr accepts connections or the timeout ends.
func WaitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Process is a broker process a test started for itself.
type Process struct {
	t    testing.TB
	name string
	args []string
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts a private redis-server on a free loopback port, stopped
// when the test ends.
func StartRedis(t testing.TB) *Process {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SIOBRIDGE_REQUIRE_BROKERS") != "" {
			t.Fatalf("redis-server not installed: %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	port := FreePort(t)
	p := &Process{t: t, name: bin, Addr: "127.0.0.1:" + strconv.Itoa(port),
		args: []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--logfile", ""}}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// StartNATS starts a private nats-server on a free loopback port; args
// are added to its command line (e.g. "-c", a configuration file).
func StartNATS(t testing.TB, args ...string) *Process {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("SIOBRIDGE_REQUIRE_BROKERS") != "" {
			t.Fatalf("nats-server not installed: %v", err)
		}
		t.Skipf("nats-server not installed: %v", err)
	}
	port := FreePort(t)
	p := &Process{t: t, name: bin, Addr: "127.0.0.1:" + strconv.Itoa(port),
		args: append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}, args...)}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start (re)starts the process and waits until it listens.
func (p *Process) Start() {
	p.t.Helper()
	p.cmd = exec.Command(p.name, p.args...)
	p.cmd.Dir = os.TempDir()
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", filepath.Base(p.name), err)
	}
	if err := WaitPort(p.Addr, 20*time.Second); err != nil {
		p.t.Fatalf("%s: %v", filepath.Base(p.name), err)
	}
}

// Stop kills the process and waits for it to exit.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// NATSUser is a user of a private nats-server (NATSConfig): Subjects are
// the subjects it may publish and subscribe to, nil for every subject.
type NATSUser struct {
	Name, Password string
	Subjects       []string
}

// NATSConfig writes a nats-server configuration with users and returns
// its path, for StartNATS(t, "-c", path).
func NATSConfig(t testing.TB, users ...NATSUser) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		fmt.Fprintf(&b, "    {user: %q, password: %q", u.Name, u.Password)
		if u.Subjects != nil {
			l := make([]string, len(u.Subjects))
			for i, s := range u.Subjects {
				l[i] = strconv.Quote(s)
			}
			list := "[" + strings.Join(l, ", ") + "]"
			fmt.Fprintf(&b, ", permissions: {publish: %s, subscribe: %s}", list, list)
		}
		b.WriteString("}\n")
	}
	b.WriteString("  ]\n}\n")
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartNATSWith starts again a nats-server of StartNATS, on the same
// address, with args instead of the ones StartNATS was given.
func (p *Process) StartNATSWith(args ...string) {
	p.t.Helper()
	p.args = append(p.args[:4:4], args...)
	p.Start()
}
