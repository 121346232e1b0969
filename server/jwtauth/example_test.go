package jwtauth_test

import (
	"context"
	"fmt"
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
