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

// TestPingOption: WithPing (ping_interval, ping_timeout) is announced in
// the handshake, and a client that does not answer a ping is closed after
// interval + timeout.
func TestPingOption(t *testing.T) {
	hs := originServer(t, server.WithPing(100*time.Millisecond, 150*time.Millisecond))
	code, body := pollReq(t, hs, http.MethodGet, "", "", "")
	var open struct {
		Sid                       string
		PingInterval, PingTimeout int
	}
	if code != 200 || json.Unmarshal([]byte(body[1:]), &open) != nil {
		t.Fatalf("handshake %d %q", code, body)
	}
	if open.PingInterval != 100 || open.PingTimeout != 150 {
		t.Fatalf("handshake pingInterval %d, pingTimeout %d, want 100 and 150", open.PingInterval, open.PingTimeout)
	}
	// the pending GET gets the ping; no pong is sent: the session closes
	if code, body := pollReq(t, hs, http.MethodGet, open.Sid, "", ""); code != 200 || body != "2" {
		t.Fatalf("poll: %d %q, want the ping", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := pollReq(t, hs, http.MethodGet, open.Sid, "", ""); code == 400 {
			return // unknown session: closed
		}
		if time.Now().After(deadline) {
			t.Fatal("the session outlived its unanswered ping")
		}
	}
}

// TestMaxPayloadOption: WithMaxPayload (max_http_buffer_size) is announced
// in the handshake and bounds a polling POST.
func TestMaxPayloadOption(t *testing.T) {
	hs := originServer(t, server.WithMaxPayload(1000))
	code, body := pollReq(t, hs, http.MethodGet, "", "", "")
	var open struct {
		Sid        string
		MaxPayload int
	}
	if code != 200 || json.Unmarshal([]byte(body[1:]), &open) != nil || open.MaxPayload != 1000 {
		t.Fatalf("handshake %d %q, want maxPayload 1000", code, body)
	}
	if code, _ := pollReq(t, hs, http.MethodPost, open.Sid, "", "4"+strings.Repeat("x", 999)); code != 200 {
		t.Fatalf("a 1,000-byte POST: %d", code)
	}
	if code, _ := pollReq(t, hs, http.MethodPost, open.Sid, "", "4"+strings.Repeat("x", 1000)); code == 200 {
		t.Fatal("a 1,001-byte POST was accepted")
	}
}
