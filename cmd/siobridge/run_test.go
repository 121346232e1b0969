package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags exit 2 with a one-line reason; an unreachable broker exits 1.
func TestRunExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--from", "redis://127.0.0.1:1/0", "--from-dialect", "python"}, exitUsage, "--to and --to-dialect are required"},
		{[]string{"--from", "redis://x", "--from-dialect", "php", "--to", "redis://y", "--to-dialect", "node"}, exitUsage, `unknown dialect "php"`},
		{[]string{"--from", "redis://x", "--from-dialect", "node", "--to", "redis://x", "--to-dialect", "node"}, exitUsage, "same url"},
		{[]string{"--from", "redis://x", "--from-dialect", "node", "--to", "redis://y", "--to-dialect", "node", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"--from", "nosuch://x", "--from-dialect", "node", "--to", "redis://y", "--to-dialect", "python"}, exitBroker, "cannot connect"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
		if c.code == exitUsage && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%q: reason is not one line: %q", c.args, errb.String())
		}
	}
}
