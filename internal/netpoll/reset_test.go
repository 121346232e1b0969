package netpoll

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// TestResetDropsUnsentData: after Reset the peer sees ECONNRESET instead
// of reading what was still queued and then EOF (an orderly Close).
func TestResetDropsUnsentData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(net.Conn) error
		want  error
	}{
		{"Close", func(c net.Conn) error { return c.Close() }, io.EOF},
		{"Reset", Reset, syscall.ECONNRESET},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := loopback(t)
			defer client.Close()
			server.Write(make([]byte, 64<<10)) // sent, not read yet
			if err := tc.close(server); err != nil {
				t.Fatal(err)
			}
			_, err := io.Copy(io.Discard, client)
			if err == nil {
				err = io.EOF
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("the peer read until %v, want %v", err, tc.want)
			}
		})
	}
}

// TestResetOfANonTCPConnectionCloses: connections without SO_LINGER are
// just closed.
func TestResetOfANonTCPConnectionCloses(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	if err := Reset(a); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte{1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write after Reset: %v", err)
	}
}
