package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/nodesharded"
	"github.com/siobridge/siobridge/internal/dialectname"
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
		{[]string{"--from", "redis://x", "--from-dialect", "node-sharded", "--to", "redis://y", "--to-dialect", "node"}, exitUsage, "cannot be relayed from"},
		{[]string{"--from", "redis://x", "--from-dialect", "node-streams", "--to", "redis://y", "--to-dialect", "node"}, exitUsage, "cannot be relayed from"},
		{[]string{"--from", "redis://x", "--from-dialect", "node", "--to", "redis://y", "--to-dialect", "node", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"--from", "redis://h:6379/0", "--from-dialect", "python-pickle", "--from-channel", "c", "--to", "redis://h:6379/1", "--to-dialect", "python", "--to-channel", "c"}, exitUsage, "overlap"},
		{[]string{"--from", "redis://h/0", "--from-dialect", "node", "--from-channel", "k", "--to", "redis://h/1", "--to-dialect", "node", "--to-channel", "k"}, exitUsage, "overlap"},
		{[]string{"--from", "redis://x", "--from-dialect", "node", "--to", "redis://y", "--to-dialect", "node", "--to-sharded-mode", "static"}, exitUsage, "--to-sharded-mode"},
		{[]string{"--from", "redis://x", "--from-dialect", "node", "--to", "redis://y", "--to-dialect", "node-sharded", "--to-sharded-mode", "public"}, exitUsage, "--to-sharded-mode"},
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

// Sides on one broker whose channels cannot meet are allowed.
func TestCheckOverlapAllows(t *testing.T) {
	for _, c := range []struct{ da, ca, db, cb string }{
		{"python", "a", "python-pickle", "b"},
		{"python", "socket.io", "node", "socket.io"}, // "socket.io" vs "socket.io#/#..."
		{"node", "k1", "node", "k2"},
	} {
		a, _ := dialectname.New(c.da, c.ca)
		b, _ := dialectname.New(c.db, c.cb)
		o := &options{from: endpoint{"redis://h/0", c.da, c.ca, ""}, to: endpoint{"redis://h/0", c.db, c.cb, ""}, namespaces: []string{"/"}, nodeRequests: true}
		if err := checkOverlap(o, [2]dialect.Dialect{a, b}); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// --to-sharded-mode gives the node-sharded side its servers' mode.
func TestToShardedMode(t *testing.T) {
	for _, mode := range []nodesharded.Mode{"", nodesharded.Static, nodesharded.Dynamic, nodesharded.DynamicPrivate} {
		o, err := parseArgs([]string{"--from", "redis://x", "--from-dialect", "node", "--to", "redis+cluster://y", "--to-dialect", "node-sharded", "--to-sharded-mode", string(mode)}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := newDialects(o)
		want := mode
		if want == "" {
			want = nodesharded.Dynamic
		}
		if err != nil || ds[1].(*nodesharded.Dialect).Mode() != want {
			t.Errorf("--to-sharded-mode %q: %v, %v", mode, ds[1], err)
		}
	}
}
