package jwtauth_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/jwtauth"
	"github.com/siobridge/siobridge/server/servertest"
)

// A gateway where clients connect with a token: they are put in the
// token's rooms, and may join only the rooms its allow patterns match.
// jwtauth.LoadJWKS("jwks.json") instead of NewHS256 verifies RS256 and
// ES256 tokens with public keys.
func ExampleVerifier_OnConnect() {
	v, err := jwtauth.NewHS256([]byte("a secret of at least thirty-two bytes"))
	if err != nil {
		panic(err)
	}
	srv := server.New()
	defer srv.Shutdown(context.Background())
	srv.Of("/").OnConnect(v.OnConnect(nil))
	srv.On("/", "join", func(s *server.Socket, room string) error {
		if !jwtauth.Allowed(s, room) {
			return fmt.Errorf("room %q not allowed", room)
		}
		s.Join(room)
		return nil
	})
	srv.OnErrorDefaultAck(func(s *server.Socket, event string, err error) any { return err.Error() })

	// what the application's login endpoint hands to the browser
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":   "alice",
		"rooms": []string{"user:alice"},
		"allow": []string{"news/*"},
		"exp":   time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte("a secret of at least thirty-two bytes"))

	c, _ := servertest.New(srv, servertest.Options{})
	defer c.Close()
	fmt.Println("without token:", c.Connect("/", nil))
	fmt.Println("with token:", c.Connect("/", map[string]string{"token": token}))
	for _, room := range []string{"news/sport", "admin"} {
		ack, _ := c.EmitWithAck("/", 5*time.Second, "join", room)
		fmt.Println("join", room, ack)
	}
	srv.Of("/").To("user:alice").Emit("notice", "hello alice")
	got, _ := c.WaitFor("/", "notice", 5*time.Second)
	fmt.Println(got[0].Args)
	// Output:
	// without token: connection refused: missing token
	// with token: <nil>
	// join news/sport []
	// join admin [room "admin" not allowed]
	// [hello alice]
}

// A gateway that disconnects the clients whose token expires: 30 s before
// (ExpiryOptions.Warning) they receive "token_expiring", and a client
// that sends a fresh token of the same user with "refresh_token" stays
// connected until the new token's exp.
func ExampleVerifier_DisconnectExpired() {
	key := []byte("a secret of at least thirty-two bytes")
	v, err := jwtauth.NewHS256(key)
	if err != nil {
		panic(err)
	}
	srv := server.New()
	defer srv.Shutdown(context.Background())
	expiry := v.DisconnectExpired(srv, jwtauth.ExpiryOptions{Warning: 30 * time.Second})
	defer expiry.Close()
	srv.Of("/").OnConnect(v.OnConnect(nil))
	expiry.HandleRefresh(srv.Of("/"))

	token := func(sub string, d time.Duration) string {
		t, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(d).Unix()}).SignedString(key)
		return t
	}
	c, _ := servertest.New(srv, servertest.Options{})
	defer c.Close()
	fmt.Println("connect:", c.Connect("/", map[string]string{"token": token("alice", 10*time.Second)}))
	got, _ := c.WaitFor("/", jwtauth.EventTokenExpiring, 5*time.Second) // 10 s left: warned at once
	fmt.Println(got[0].Event)
	ack, _ := c.EmitWithAck("/", 5*time.Second, jwtauth.EventRefreshToken, map[string]string{"token": token("bob", time.Hour)})
	fmt.Println("bob's token:", ack[0].(map[string]any)["reason"])
	ack, _ = c.EmitWithAck("/", 5*time.Second, jwtauth.EventRefreshToken, map[string]string{"token": token("alice", time.Hour)})
	fmt.Println("alice's token:", ack[0].(map[string]any)["exp"] != nil)
	// Output:
	// connect: <nil>
	// token_expiring
	// bob's token: subject
	// alice's token: true
}

// A verifier of a JWKS file that follows the file: keys added to it are
// accepted, keys removed refused for new connections, and a broken file
// leaves the keys as they were.
func ExampleVerifier_Watch() {
	v, err := jwtauth.LoadJWKS("jwks.json")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // Watch returns
	go v.Watch(ctx, 30*time.Second, func(err error) {
		if err != nil {
			log.Printf("jwks.json: %v", err) // the previous keys stay in use
		}
	})
	// srv.Of("/").OnConnect(v.OnConnect(nil)) ...
}
