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
	srv.Of("/").OnConnect(v.OnConnect(nil))
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
	token := func(exp time.Duration) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "rooms": []string{"user:alice"},
			"allow": []string{"chat/*"}, "exp": time.Now().Add(exp).Unix()}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

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
}
