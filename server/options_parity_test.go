package server_test

import (
	"context"
	"net/http/httptest"
	"time"

	"encoding/json"
	"github.com/gorilla/websocket"
	"github.com/siobridge/siobridge/internal/wstest"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
)

// handshakeOpen returns the Engine.IO open packet of a polling handshake.
func handshakeOpen(t *testing.T, code int, body string) (open struct {
	Sid      string
	Upgrades []string
}) {
	t.Helper()
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	return open
}

// upgradeRefused tells whether the server refuses to move polling session
// sid to a WebSocket: it refuses the handshake, or accepts it and closes
// it without answering the probe ("2probe" -> "3probe").
func upgradeRefused(t *testing.T, hs *httptest.Server, sid string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket&sid=" + sid
	c, _, err := wstest.Dialer.DialContext(ctx, u, nil)
	if err != nil {
		return true
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		return true
	}
	_, msg, err := c.ReadMessage()
	return err != nil || string(msg) != "3probe"
}

// TestTransportsOption: WithTransports (Flask-SocketIO's transports)
// refuses the transports not listed, on the handshake and on an upgrade.
func TestTransportsOption(t *testing.T) {
	wsOnly := originServer(t, server.WithTransports("websocket"))
	if code, _ := pollReq(t, wsOnly, http.MethodGet, "", "", ""); code != 400 {
		t.Errorf("websocket only: a polling handshake got %d, want 400", code)
	}
	if code, _ := wsReq(t, wsOnly, "", ""); code != 101 {
		t.Errorf("websocket only: a WebSocket handshake got %d, want 101", code)
	}

	pollOnly := originServer(t, server.WithTransports("polling"))
	code, body := pollReq(t, pollOnly, http.MethodGet, "", "", "")
	open := handshakeOpen(t, code, body)
	if len(open.Upgrades) != 0 {
		t.Errorf("polling only: the handshake offers upgrades %v", open.Upgrades)
	}
	if code, _ := wsReq(t, pollOnly, "", ""); code == 101 {
		t.Error("polling only: a WebSocket handshake was accepted")
	}
	if !upgradeRefused(t, pollOnly, open.Sid) {
		t.Error("polling only: an upgrade to WebSocket was accepted")
	}
}

// TestAllowUpgradesOption: DisableUpgrades (allow_upgrades=False) offers
// no upgrade and refuses one, while WebSocket stays available from the
// start; by default the upgrade is offered and accepted.
func TestAllowUpgradesOption(t *testing.T) {
	def := originServer(t)
	code, body := pollReq(t, def, http.MethodGet, "", "", "")
	if open := handshakeOpen(t, code, body); !slices.Equal(open.Upgrades, []string{"websocket"}) {
		t.Fatalf("default: upgrades %v, want [websocket]", open.Upgrades)
	} else if upgradeRefused(t, def, open.Sid) {
		t.Fatal("default: the upgrade was refused")
	}

	noUp := originServer(t, server.WithEngineOptions(engineio.Options{DisableUpgrades: true}))
	code, body = pollReq(t, noUp, http.MethodGet, "", "", "")
	open := handshakeOpen(t, code, body)
	if len(open.Upgrades) != 0 {
		t.Errorf("DisableUpgrades: the handshake offers %v", open.Upgrades)
	}
	if !upgradeRefused(t, noUp, open.Sid) {
		t.Error("DisableUpgrades: an upgrade was accepted")
	}
	if code, _ := pollReq(t, noUp, http.MethodPost, open.Sid, "", "40"); code != 200 {
		t.Errorf("DisableUpgrades: the session is not on polling after the refused upgrade: POST %d", code)
	}
	if code, _ := wsReq(t, noUp, "", ""); code != 101 {
		t.Errorf("DisableUpgrades: a WebSocket from the start got %d, want 101", code)
	}
}

// TestCORSCredentials: cors_credentials decides the
// Access-Control-Allow-Credentials header for an accepted origin.
func TestCORSCredentials(t *testing.T) {
	for _, cred := range []bool{true, false} {
		hs := originServer(t, server.WithCORS(cred, "https://good.example"))
		h := handshakeHeaders(t, hs, "https://good.example")
		if h.Get("Access-Control-Allow-Origin") != "https://good.example" {
			t.Errorf("credentials %v: Access-Control-Allow-Origin %q", cred, h.Get("Access-Control-Allow-Origin"))
		}
		if got := h.Get("Access-Control-Allow-Credentials") == "true"; got != cred {
			t.Errorf("credentials %v: Access-Control-Allow-Credentials %q", cred, h.Get("Access-Control-Allow-Credentials"))
		}
	}
}
