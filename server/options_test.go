package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
)

// WithEngineOptions composes with the options before and after it: it
// used to replace them all (WithPing then WithEngineOptions gave a 25 s
// ping interval).
func TestEngineOptionsCompose(t *testing.T) {
	hs := originServer(t,
		server.WithPing(3*time.Second, 2*time.Second),
		server.WithEngineOptions(engineio.Options{MaxPayload: 5000, PingTimeout: 4 * time.Second}),
		server.WithAllowRequest(func(r *http.Request) error {
			if r.Header.Get("X-Deny") != "" {
				return errors.New("denied")
			}
			return nil
		}),
	)
	code, body := pollReq(t, hs, http.MethodGet, "", "", "")
	var open struct{ PingInterval, PingTimeout, MaxPayload int }
	if code != 200 || json.Unmarshal([]byte(body[1:]), &open) != nil {
		t.Fatalf("handshake: %d %q", code, body)
	}
	if open.PingInterval != 3000 || open.PingTimeout != 4000 || open.MaxPayload != 5000 {
		t.Errorf("handshake %+v, want pingInterval 3000 (WithPing), pingTimeout 4000 and maxPayload 5000 (WithEngineOptions)", open)
	}
	if code, body := pollReq(t, hs, http.MethodGet, "", "", "", "X-Deny", "1"); code != http.StatusForbidden {
		t.Errorf("WithAllowRequest refusal: %d %q, want 403", code, body)
	}
}
