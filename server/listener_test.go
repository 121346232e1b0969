package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/server"
)

// TestListenServes: the listener of Server.Listen (the one Server.Run
// uses) serves the server; its refusal of clients beyond the descriptor
// limit is tested in internal/listen.
func TestListenServes(t *testing.T) {
	srv := newServer(t, server.WithTransports("polling"))
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()
	res, err := http.Get("http://" + ln.Addr().String() + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), `0{"sid":`) {
		t.Fatalf("handshake: %d %q", res.StatusCode, body)
	}
}
