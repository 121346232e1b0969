package engineio

import (
	"encoding/json"
	"testing"
)

func TestOpenJSONAsMarshal(t *testing.T) {
	for _, c := range []struct {
		sid      string
		upgrades []string
		i, t     int64
		max      int
	}{
		{NewID(), []string{}, 25000, 20000, 1e6},
		{"a\"<b", []string{"websocket"}, 1, 0, 0},
		{"", []string{"websocket", "x"}, -5, 1 << 40, -1},
	} {
		want, _ := json.Marshal(struct {
			Sid          string   `json:"sid"`
			Upgrades     []string `json:"upgrades"`
			PingInterval int64    `json:"pingInterval"`
			PingTimeout  int64    `json:"pingTimeout"`
			MaxPayload   int      `json:"maxPayload"`
		}{c.sid, c.upgrades, c.i, c.t, c.max})
		if got := openJSON(c.sid, c.upgrades, c.i, c.t, c.max); string(got) != string(want) {
			t.Errorf("openJSON = %s, want %s", got, want)
		}
	}
}
