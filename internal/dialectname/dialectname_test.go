package dialectname

import "testing"

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
