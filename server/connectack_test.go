package server

import (
	"encoding/json"
	"testing"

	"github.com/siobridge/siobridge/server/engineio"
)

func TestSidPayloadAsMarshal(t *testing.T) {
	for _, id := range []string{engineio.NewID(), "", `a"<>&\`, "é"} {
		want, _ := json.Marshal(map[string]string{"sid": id})
		if got := sidPayload(id); string(got) != string(want) {
			t.Errorf("sidPayload(%q) = %s, want %s", id, got, want)
		}
	}
}
