package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// TestMain lets a test run the real command in a child process (the test
// binary re-executed with SIOEMIT_TEST_MAIN set): only a child process
// shows what the client libraries print on the real os.Stderr.
func TestMain(m *testing.M) {
	if os.Getenv("SIOEMIT_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runChild runs sioemit as a child process and returns its exit status and
// its stdout and stderr.
func runChild(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SIOEMIT_TEST_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run sioemit: %v", err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// TestBrokerDownOneLine: with the broker down, sioemit prints one line on
// stderr (cron mails stderr), not the client library's own log lines
// before it.
func TestBrokerDownOneLine(t *testing.T) {
	port := itoa(testenv.FreePort(t))
	for _, url := range []string{
		"redis://127.0.0.1:" + port + "/0",
		"amqp://guest:guest@127.0.0.1:" + port + "/",
		"nats://127.0.0.1:" + port,
	} {
		code, _, stderr := runChild(t, "--url", url, "--timeout", "2s", "hello", `"x"`)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != exitBroker || len(lines) != 1 || !strings.HasPrefix(lines[0], "sioemit: ") {
			t.Errorf("%s: exit %d, stderr of %d lines, want exit 1 and one line:\n%s", url, code, len(lines), stderr)
		}
	}
}
