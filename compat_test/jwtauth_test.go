package compat_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/jwtauth"
)

// socket.io-client 4.8 sends its token in the auth payload: with a valid
// one it connects, is in the token's rooms and may join only the rooms
// its allow patterns match; with an expired one, or none, its
// connect_error event carries our message and data.
func TestSocketIOClientJWT(t *testing.T) {
	needNode(t)
	secret := []byte("compat-test-secret-of-32-bytes!!")
	v, err := jwtauth.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New()
	expiry := v.DisconnectExpired(srv, jwtauth.ExpiryOptions{Warning: 2 * time.Second})
	defer expiry.Close()
	srv.Of("/").OnConnect(v.OnConnect(nil))
	expiry.HandleRefresh(srv.Of("/"))
	srv.On("/", "join", func(s *server.Socket, room string) string {
		if !jwtauth.Allowed(s, room) {
			return "denied"
		}
		s.Join(room)
		return "joined"
	})
	ln := listen(t, "127.0.0.1:0")
	serve(t, srv, ln)
	url := "http://" + ln.Addr().String()
	tokenAt := func(exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "rooms": []string{"user:alice"},
			"allow": []string{"chat/*"}, "exp": exp.Unix()}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	token := func(exp time.Duration) string { return tokenAt(time.Now().Add(exp)) }

	for _, transports := range []string{"websocket", "polling"} {
		c := startPeerWith(t, "client "+transports, true, "node", "node/sio-client.js", url, transports, jsonString(map[string]string{"token": token(time.Hour)}))
		c.waitFor("connect", 30*time.Second, isType("connect"))
		srv.Of("/").To("user:alice").Emit("notice", "for alice")
		c.waitFor("notice", 30*time.Second, isEventWith("notice", "for alice"))
		for i, j := range []struct{ room, want string }{{"chat/general", "joined"}, {"admin", "denied"}} {
			c.send(map[string]any{"emit": "join", "args": []any{j.room}, "ack": true})
			acks := 0
			ack := c.waitFor("join ack", 30*time.Second, func(l map[string]any) bool {
				if l["type"] == "ack" {
					acks++
				}
				return acks == i+1
			})
			if !reflect.DeepEqual(ack["args"], []any{j.want}) {
				t.Fatalf("%s: join %s: %v, want %s", transports, j.room, ack, j.want)
			}
		}
	}

	for _, cs := range []struct{ name, auth, message, reason string }{
		{"expired", jsonString(map[string]string{"token": token(-time.Hour)}), "expired token", "expired"},
		{"missing", "{}", "missing token", "missing"},
		{"forged", jsonString(map[string]string{"token": token(time.Hour)[:40] + "x.y"}), "", "invalid"},
	} {
		c := startPeerWith(t, "client "+cs.name, true, "node", "node/sio-client.js", url, "websocket", cs.auth)
		ce := c.waitFor("connect_error", 30*time.Second, isType("connect_error"))
		if (cs.message != "" && ce["message"] != cs.message) || !reflect.DeepEqual(ce["data"], map[string]any{"reason": cs.reason}) {
			t.Errorf("%s: connect_error %v, want message %q reason %q", cs.name, ce, cs.message, cs.reason)
		}
	}

	testClientTokenExpiry(t, srv, expiry, url, tokenAt)
}

// testClientTokenExpiry: a socket.io-client whose token expires receives
// token_expiring, then token_expired and "io server disconnect", does not
// reconnect by itself, and its socket is gone from the server; one that
// sends refresh_token with a fresh token stays connected past its first
// exp (a control client whose token expires a second later is
// disconnected meanwhile). The clients connect with tokens of an hour,
// then the server gives them short ones (Expiry.Refresh), so that a slow
// start of the Node processes cannot make them late.
func testClientTokenExpiry(t *testing.T, srv *server.Server, expiry *jwtauth.Expiry, url string, tokenAt func(time.Time) string) {
	auth := jsonString(map[string]string{"token": tokenAt(time.Now().Add(time.Hour))})
	peers := map[string]*peer{}
	for _, name := range []string{"expiring", "refreshing", "control"} {
		transports := "websocket"
		if name == "refreshing" {
			transports = "polling"
		}
		peers[name] = startPeerWith(t, "client "+name, true, "node", "node/sio-client.js", url, transports, auth)
	}
	shorten := func(name string, exp time.Time) string {
		sid, _ := peers[name].waitFor("connect", 30*time.Second, isType("connect"))["sid"].(string)
		s := srv.Of("/").Socket(sid)
		if s == nil {
			t.Fatalf("%s: no socket %s", name, sid)
		}
		if _, err := expiry.Refresh(s, tokenAt(exp)); err != nil {
			t.Fatal(err)
		}
		return sid
	}
	for _, name := range []string{"expiring", "refreshing", "control"} {
		peers[name].waitFor("connect", 30*time.Second, isType("connect"))
	}
	exp := time.Now().Add(4 * time.Second) // 3 to 4 s left, warned 2 s before
	sid := shorten("expiring", exp)
	shorten("refreshing", exp)
	shorten("control", exp.Add(time.Second))
	expiring, refreshing, control := peers["expiring"], peers["refreshing"], peers["control"]

	later := time.Now().Add(time.Hour)
	refreshing.send(map[string]any{"emit": jwtauth.EventRefreshToken, "args": []any{map[string]string{"token": tokenAt(later)}}, "ack": true})
	ack := refreshing.waitFor("refresh ack", 30*time.Second, isType("ack"))
	if !reflect.DeepEqual(ack["args"], []any{map[string]any{"exp": float64(later.Unix())}}) {
		t.Fatalf("refresh_token ack %v", ack)
	}

	expiring.waitFor("token_expired", 30*time.Second, isEvent(jwtauth.EventTokenExpired))
	if len(expiring.events(jwtauth.EventTokenExpiring)) != 1 {
		t.Fatal("token_expired without token_expiring before")
	}
	d := expiring.waitFor("disconnect", 30*time.Second, isType("disconnect"))
	if d["reason"] != "io server disconnect" {
		t.Fatalf("disconnect %v, want io server disconnect", d)
	}
	for deadline := time.Now().Add(30 * time.Second); srv.Of("/").Socket(sid) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the expired socket is still on the server")
		}
	}
	control.waitFor("disconnect", 30*time.Second, isType("disconnect"))
	// the refreshed client's first exp is a second before the control's
	refreshing.send(map[string]any{"emit": "join", "args": []any{"chat/after"}, "ack": true})
	acks := 0
	ack = refreshing.waitFor("join ack", 30*time.Second, func(l map[string]any) bool {
		if l["type"] == "ack" {
			acks++
		}
		return acks == 2
	})
	if !reflect.DeepEqual(ack["args"], []any{"joined"}) {
		t.Fatalf("the refreshed client after its first exp: %v", ack)
	}
	for name, p := range map[string]*peer{"refreshed": refreshing, "expired": expiring} {
		p.mu.Lock()
		connects, disconnects := 0, 0
		for _, l := range p.lines {
			switch l["type"] {
			case "connect":
				connects++
			case "disconnect":
				disconnects++
			}
		}
		p.mu.Unlock()
		if connects != 1 || (name == "refreshed") != (disconnects == 0) {
			t.Errorf("%s client: %d connects, %d disconnects", name, connects, disconnects)
		}
	}
}
