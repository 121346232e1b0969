//go:build linux

package listen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hang bounds every wait of the test: a client left in the backlog would
// wait until this (it is a hang detector, not a speed requirement).
const hang = 20 * time.Second

// TestRefusedBeyondTheDescriptorLimit runs an HTTP server on a Listener in
// a child process whose RLIMIT_NOFILE leaves room for about 16 clients;
// this process connects clients (each one served once and kept open) until
// one is refused: that client's read must return (a 503, or the connection
// closed) instead of waiting in the backlog, the server must log it, and
// once the clients leave, new ones are served again.
func TestRefusedBeyondTheDescriptorLimit(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^TestHelperServer$")
	child.Env = append(os.Environ(), "SIOBRIDGE_LISTEN_HELPER=1")
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	var stderr bytes.Buffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close()
	sc := bufio.NewScanner(stdout)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatalf("server process did not start: %s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	refused := false
	for range 200 {
		c, status, err := get(addr)
		if strings.HasPrefix(status, "HTTP/1.1 200") {
			held = append(held, c) // keeps a descriptor of the server
			continue
		}
		if c != nil {
			c.Close()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("client %d was left waiting for %v (no answer, not closed)", len(held)+1, hang)
		}
		if status != "" && !strings.HasPrefix(status, "HTTP/1.1 503") {
			t.Fatalf("client %d: %q", len(held)+1, status)
		}
		t.Logf("client %d refused: %q %v", len(held)+1, status, err)
		refused = true
		break
	}
	if !refused {
		t.Fatalf("%d clients served, none refused: the descriptor limit was not reached", len(held))
	}
	if len(held) == 0 {
		t.Fatal("no client was served")
	}

	// the clients leave: the server gets its descriptors back
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(hang)
	for {
		c, status, err := get(addr)
		if c != nil {
			c.Close()
		}
		if strings.HasPrefix(status, "HTTP/1.1 200") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client served after the others left: %q %v", status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	stdin.Close()
	child.Wait()
	if !strings.Contains(stderr.String(), "out of file descriptors") {
		t.Errorf("no log line about the refusal; server's stderr:\n%s", stderr.String())
	}
}

// get connects, sends a request and reads the status line.
func get(addr string) (net.Conn, string, error) {
	c, err := net.DialTimeout("tcp", addr, hang)
	if err != nil {
		return nil, "", err
	}
	c.SetDeadline(time.Now().Add(hang))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return c, "", err
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		return c, status, err
	}
	for { // the rest of the response (Content-Length 2)
		l, err := br.ReadString('\n')
		if err != nil {
			return c, status, err
		}
		if l == "\r\n" {
			break
		}
	}
	io.ReadFull(br, make([]byte, 2))
	return c, status, nil
}

// TestHelperServer is the server process of
// TestRefusedBeyondTheDescriptorLimit.
func TestHelperServer(t *testing.T) {
	if os.Getenv("SIOBRIDGE_LISTEN_HELPER") == "" {
		t.Skip("runs as the server process of TestRefusedBeyondTheDescriptorLimit")
	}
	ln, err := TCP("127.0.0.1:0", slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	// the descriptors open now (the directory listing counts itself), and
	// room for 16 clients
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: uint64(len(ents) - 1 + 16)}
	var old syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old)
	lim.Max = old.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("READY %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the test closes stdin
	srv.Close()
}
