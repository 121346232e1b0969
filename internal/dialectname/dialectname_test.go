package dialectname

import "testing"

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name   string
		server bool
	}{{"python", true}, {"python-pickle", true}, {"node", true}, {"node-sharded", false}} {
		d, err := New(c.name, "")
		if err != nil || d.Name() != c.name {
			t.Errorf("New(%q): %v %v", c.name, d, err)
		}
		if ServerCapable(c.name) != c.server {
			t.Errorf("ServerCapable(%q) = %v", c.name, !c.server)
		}
	}
	if _, err := New("nodes", ""); err == nil {
		t.Error("unknown name accepted")
	}
	if ServerCapable("nodes") {
		t.Error("unknown name server-capable")
	}
	if d, _ := New("node-sharded", "k"); d.ReplySubscription("/").Channels[0] != "k#/#emitter#" {
		t.Errorf("node-sharded key: %+v", d.ReplySubscription("/"))
	}
}
