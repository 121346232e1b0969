package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/internal/conformance"
	"github.com/siobridge/siobridge/internal/wstest"
)

// A Go port of every case of the official socket.io-protocol test suite
// (socketio/socket.io-protocol, test-suite/test-suite.js, 32 cases: the
// Engine.IO handshake, heartbeat, close and upgrade cases on /socket.io/,
// and the Socket.IO connect, disconnect and message cases), run against
// the suite's reference server (internal/conformance).

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startConformance(t *testing.T) string {
	t.Helper()
	srv := conformance.SocketIO()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs.URL + "/socket.io/"
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	return wstest.Do(t, method, url, body)
}

func polling(t *testing.T, base string) string {
	t.Helper()
	code, body := httpDo(t, "GET", base+"?EIO=4&transport=polling", "")
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake %d %q", code, body)
	}
	var v struct{ Sid string }
	json.Unmarshal([]byte(body[1:]), &v)
	return v.Sid
}

func dial(t *testing.T, base, query string) *wstest.Conn {
	t.Helper()
	return wstest.Dial(t, "ws"+strings.TrimPrefix(base, "http")+query)
}

// sioConnect opens a WebSocket session connected to the main namespace
// (the suite's initSocketIOConnection).
func sioConnect(t *testing.T, base string) *wstest.Conn {
	w := dial(t, base, "?EIO=4&transport=websocket")
	w.Read() // Engine.IO handshake
	w.Send("40")
	w.Read() // CONNECT ack
	w.Read() // auth
	return w
}

func TestSocketIOProtocolSuite(t *testing.T) {
	base := startConformance(t)

	// ---- Engine.IO part, on /socket.io/ ----
	t.Run("handshake/polling/successfully opens a session", func(t *testing.T) {
		code, body := httpDo(t, "GET", base+"?EIO=4&transport=polling", "")
		var v map[string]any
		if code != 200 || json.Unmarshal([]byte(body[1:]), &v) != nil || len(v) != 5 || v["pingInterval"] != 300.0 || v["pingTimeout"] != 200.0 || v["maxPayload"] != 1e6 {
			t.Fatalf("%d %q", code, body)
		}
	})
	t.Run("handshake/polling/fails with an invalid EIO query parameter", func(t *testing.T) {
		for _, q := range []string{"?transport=polling", "?EIO=abc&transport=polling"} {
			if code, _ := httpDo(t, "GET", base+q, ""); code != 400 {
				t.Fatalf("%s: %d", q, code)
			}
		}
	})
	t.Run("handshake/polling/fails with an invalid transport query parameter", func(t *testing.T) {
		for _, q := range []string{"?EIO=4", "?EIO=4&transport=abc"} {
			if code, _ := httpDo(t, "GET", base+q, ""); code != 400 {
				t.Fatalf("%s: %d", q, code)
			}
		}
	})
	t.Run("handshake/polling/fails with an invalid request method", func(t *testing.T) {
		for _, m := range []string{"POST", "PUT"} {
			if code, _ := httpDo(t, m, base+"?EIO=4&transport=polling", ""); code != 400 {
				t.Fatalf("%s: %d", m, code)
			}
		}
	})
	t.Run("handshake/websocket/successfully opens a session", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		_, d := w.Read()
		if !strings.HasPrefix(d, `0{"sid":`) || !strings.Contains(d, `"upgrades":[]`) {
			t.Fatalf("%q", d)
		}
	})
	t.Run("handshake/websocket/fails with an invalid EIO query parameter", func(t *testing.T) {
		for _, q := range []string{"?transport=websocket", "?EIO=abc&transport=websocket"} {
			if _, _, err := wstest.Dialer.Dial("ws"+strings.TrimPrefix(base, "http")+q, nil); err == nil {
				t.Fatalf("%s opened", q)
			}
		}
	})
	t.Run("handshake/websocket/fails with an invalid transport query parameter", func(t *testing.T) {
		for _, q := range []string{"?EIO=4", "?EIO=4&transport=abc"} {
			if _, _, err := wstest.Dialer.Dial("ws"+strings.TrimPrefix(base, "http")+q, nil); err == nil {
				t.Fatalf("%s opened", q)
			}
		}
	})
	t.Run("heartbeat/polling/sends ping/pong packets", func(t *testing.T) {
		sid := polling(t, base)
		for i := 0; i < 3; i++ {
			if code, body := httpDo(t, "GET", base+"?EIO=4&transport=polling&sid="+sid, ""); code != 200 || body != "2" {
				t.Fatalf("round %d: %d %q", i, code, body)
			}
			if code, _ := httpDo(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "3"); code != 200 {
				t.Fatalf("pong: %d", code)
			}
		}
	})
	t.Run("heartbeat/polling/closes the session upon ping timeout", func(t *testing.T) {
		sid := polling(t, base)
		time.Sleep(500 * time.Millisecond)
		if code, _ := httpDo(t, "GET", base+"?EIO=4&transport=polling&sid="+sid, ""); code != 400 {
			t.Fatalf("%d", code)
		}
	})
	t.Run("heartbeat/websocket/sends ping/pong packets", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		w.Read()
		for i := 0; i < 3; i++ {
			w.Expect("2")
			w.Send("3")
		}
	})
	t.Run("heartbeat/websocket/closes the session upon ping timeout", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		w.WaitClose(5 * time.Second)
	})
	t.Run("close/polling/forcefully closes the session", func(t *testing.T) {
		sid := polling(t, base)
		var wg sync.WaitGroup
		var code int
		var body string
		wg.Add(1)
		go func() { defer wg.Done(); code, body = httpDo(t, "GET", base+"?EIO=4&transport=polling&sid="+sid, "") }()
		time.Sleep(20 * time.Millisecond)
		httpDo(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "1")
		wg.Wait()
		if code != 200 || body != "6" {
			t.Fatalf("%d %q", code, body)
		}
		if code, _ := httpDo(t, "GET", base+"?EIO=4&transport=polling&sid="+sid, ""); code != 400 {
			t.Fatalf("%d", code)
		}
	})
	t.Run("close/websocket/forcefully closes the session", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		w.Read()
		w.Send("1")
		w.WaitClose(5 * time.Second)
	})
	t.Run("upgrade/successfully upgrades from polling to WebSocket", func(t *testing.T) {
		sid := polling(t, base)
		w := dial(t, base, "?EIO=4&transport=websocket&sid="+sid)
		w.Send("2probe")
		w.Expect("3probe")
		if code, body := httpDo(t, "GET", base+"?EIO=4&transport=polling&sid="+sid, ""); code != 200 || body != "6" {
			t.Fatalf("%d %q", code, body)
		}
		w.Send("5")
	})
	t.Run("upgrade/ignores HTTP requests with same sid after upgrade", func(t *testing.T) {
		sid := polling(t, base)
		w := dial(t, base, "?EIO=4&transport=websocket&sid="+sid)
		w.Send("2probe")
		w.Send("5") // at once, as the official case: the GET below must find the upgrade done
		if code, _ := httpDo(t, "GET", base+"?EIO=4&transport=polling&sid="+sid, ""); code != 400 {
			t.Fatalf("%d", code)
		}
		w.Expect("3probe")
	})
	t.Run("upgrade/ignores WebSocket connection with same sid after upgrade", func(t *testing.T) {
		sid := polling(t, base)
		w := dial(t, base, "?EIO=4&transport=websocket&sid="+sid)
		w.Send("2probe")
		w.Send("5")
		w.Expect("3probe")
		w2 := dial(t, base, "?EIO=4&transport=websocket&sid="+sid)
		w2.WaitClose(5 * time.Second)
	})

	// ---- Socket.IO part ----
	connectCase := func(send, prefix, auth string) func(t *testing.T) {
		return func(t *testing.T) {
			w := dial(t, base, "?EIO=4&transport=websocket")
			w.Read()
			w.Send(send)
			_, d := w.Read()
			var hs map[string]any
			if !strings.HasPrefix(d, prefix) || json.Unmarshal([]byte(d[len(prefix):]), &hs) != nil || len(hs) != 1 {
				t.Fatalf("CONNECT ack %q", d)
			}
			if _, ok := hs["sid"].(string); !ok {
				t.Fatalf("no sid in %q", d)
			}
			w.Expect(auth)
		}
	}
	t.Run("connect/main namespace", connectCase("40", "40", `42["auth",{}]`))
	t.Run("connect/main namespace with a payload", connectCase(`40{"token":"123"}`, "40", `42["auth",{"token":"123"}]`))
	t.Run("connect/custom namespace", connectCase("40/custom,", "40/custom,", `42/custom,["auth",{}]`))
	t.Run("connect/custom namespace with a payload", connectCase(`40/custom,{"token":"abc"}`, "40/custom,", `42/custom,["auth",{"token":"abc"}]`))
	t.Run("connect/unknown namespace", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		w.Read()
		w.Send("40/random")
		w.Expect(`44/random,{"message":"Invalid namespace"}`)
	})
	t.Run("connect/invalid handshake", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		w.Read()
		w.Send("4abc")
		w.WaitClose(5 * time.Second)
	})
	t.Run("connect/no handshake", func(t *testing.T) {
		w := dial(t, base, "?EIO=4&transport=websocket")
		w.Read()
		w.WaitClose(5 * time.Second)
	})
	t.Run("disconnect/main namespace", func(t *testing.T) {
		w := sioConnect(t, base)
		w.Send("41")
		w.Expect("2") // the Engine.IO session stays: the next packet is a ping
	})
	t.Run("disconnect/connect then disconnect from a custom namespace", func(t *testing.T) {
		w := sioConnect(t, base)
		w.Send("40/custom")
		w.Read()
		w.Read()
		w.Send("41/custom")
		w.Send(`42["message","message to main namespace"]`)
		w.Expect(`42["message-back","message to main namespace"]`)
	})
	t.Run("message/plain-text packet", func(t *testing.T) {
		w := sioConnect(t, base)
		w.Send(`42["message",1,"2",{"3":[true]}]`)
		w.Expect(`42["message-back",1,"2",{"3":[true]}]`)
	})
	binaryCase := func(send, want string) func(t *testing.T) {
		return func(t *testing.T) {
			w := sioConnect(t, base)
			w.Send(send)
			w.SendBinary([]byte{1, 2, 3})
			w.SendBinary([]byte{4, 5, 6})
			w.Expect(want)
			if typ, d := w.Read(); typ != websocket.BinaryMessage || d != "\x01\x02\x03" {
				t.Fatalf("first attachment %v %q", typ, d)
			}
			if typ, d := w.Read(); typ != websocket.BinaryMessage || d != "\x04\x05\x06" {
				t.Fatalf("second attachment %v %q", typ, d)
			}
		}
	}
	t.Run("message/packet with binary attachments", binaryCase(
		`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
		`452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`))
	t.Run("message/plain-text packet with an ack", func(t *testing.T) {
		w := sioConnect(t, base)
		w.Send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
		w.Expect(`43456[1,"2",{"3":[false]}]`)
	})
	t.Run("message/packet with binary attachments and an ack", binaryCase(
		`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
		`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`))
	for name, bad := range map[string]string{
		"message/close upon invalid format (unknown packet type)":    "4abc",
		"message/close upon invalid format (invalid payload format)": "42{}",
		"message/close upon invalid format (invalid ack id)":         `42abc["message-with-ack",1,"2",{"3":[false]}]`,
	} {
		t.Run(name, func(t *testing.T) {
			w := sioConnect(t, base)
			w.Send(bad)
			w.WaitClose(5 * time.Second)
		})
	}
}
