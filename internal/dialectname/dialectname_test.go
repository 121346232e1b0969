package dialectname

import (
	"strings"
	"testing"

	"github.com/siobridge/siobridge/dialect/nodesharded"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name          string
		server, relay bool
	}{{"python", true, true}, {"python-pickle", true, true}, {"node", true, true}, {"node-sharded", true, false}, {"node-streams", true, false}} {
		d, err := New(c.name, "")
		if err != nil || d.Name() != c.name {
			t.Errorf("New(%q): %v %v", c.name, d, err)
		}
		if ServerCapable(c.name) != c.server {
			t.Errorf("ServerCapable(%q) = %v", c.name, !c.server)
		}
		if RelaySource(c.name) != c.relay {
			t.Errorf("RelaySource(%q) = %v", c.name, !c.relay)
		}
	}
	if _, err := New("nodes", ""); err == nil {
		t.Error("unknown name accepted")
	}
	if ServerCapable("nodes") || RelaySource("nodes") {
		t.Error("unknown name server-capable")
	}
	if d, _ := New("node-sharded", "k"); d.ReplySubscription("/").Channels[0] != "k#/#emitter#" {
		t.Errorf("node-sharded key: %+v", d.ReplySubscription("/"))
	}
	if d, _ := New("node-streams", "k"); d.ReplySubscription("/").Channels[0] != "k#/#emitter#" {
		t.Errorf("node-streams key: %+v", d.ReplySubscription("/"))
	}
}

func TestShardedMode(t *testing.T) {
	for _, mode := range []nodesharded.Mode{nodesharded.Static, nodesharded.Dynamic, nodesharded.DynamicPrivate} {
		d, err := NewWithMode("node-sharded", "", string(mode))
		if err != nil || d.(*nodesharded.Dialect).Mode() != mode {
			t.Errorf("NewWithMode(node-sharded, %s): %v %v", mode, d, err)
		}
	}
	if d, err := NewWithMode("node-sharded", "", ""); err != nil || d.(*nodesharded.Dialect).Mode() != nodesharded.Dynamic {
		t.Errorf("the default mode: %v %v", d, err)
	}
	if _, err := NewWithMode("node-sharded", "", "dynamic-public"); err == nil || !strings.Contains(err.Error(), "dynamic-public") {
		t.Errorf("an unknown mode: %v", err)
	}
	for _, name := range []string{"python", "python-pickle", "node"} {
		if _, err := NewWithMode(name, "", "static"); err == nil || !strings.Contains(err.Error(), "node-sharded") {
			t.Errorf("a mode with %s: %v", name, err)
		}
	}
}
