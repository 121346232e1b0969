package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/wstest"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue/memory"
)

// Acknowledgement requests of other processes for a client that never
// answers are bounded: at most maxRemoteAckWaits wait at once (each holds a
// goroutine and an ack entry on the socket); the rest are delivered
// without asking.
func TestRemoteAckWaitsAreBounded(t *testing.T) {
	bus := memory.New()
	defer bus.Close()
	srv := New(WithAdapter(bus, python.New(python.Options{Channel: "bound"})))
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer hs.CloseClientConnections()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	w := wstest.Dial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/socket.io/?EIO=4&transport=websocket")
	w.Read()
	w.Send("40")
	_, ack := w.Read()
	sid := ack[len(`40{"sid":"`) : len(ack)-2]
	sock := srv.Of("/").Socket(sid)

	const extra = 100
	for i := range maxRemoteAckWaits + extra {
		srv.member.handle(&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{sid}}, Event: "ask",
			Ack: &op.AckRequest{ID: "1"}, Origin: "another-host"}, time.Now())
		if n := srv.member.inFlight.Load(); n > maxRemoteAckWaits {
			t.Fatalf("after %d requests, %d in flight", i+1, n)
		}
	}
	sock.mu.Lock()
	waiting := len(sock.acks)
	sock.mu.Unlock()
	if waiting != maxRemoteAckWaits {
		t.Fatalf("%d acknowledgement ids held on the socket, want %d", waiting, maxRemoteAckWaits)
	}
	withID, without := 0, 0
	for range maxRemoteAckWaits + extra {
		_, msg := w.Read()
		if strings.HasPrefix(msg, `42["ask"`) {
			without++
		} else {
			withID++
		}
	}
	if withID != maxRemoteAckWaits || without != extra {
		t.Fatalf("%d events asked for an ack and %d did not; want %d and %d", withID, without, maxRemoteAckWaits, extra)
	}
}
