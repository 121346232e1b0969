package engineio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/internal/wstest"
)

// This file is a Go port of every case of the official engine.io-protocol
// test suite (socketio/engine.io-protocol, test-suite/test-suite.js, 24
// cases), run against an echo server configured like the suite's reference
// server: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000,
// CORS "*".

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	pingInterval = 300 * time.Millisecond
	pingTimeout  = 200 * time.Millisecond
)

// EchoServer returns the reference echo server of the suite.
func echoServer(t *testing.T) (string, *Server) {
	t.Helper()
	s := NewServer(Options{PingInterval: pingInterval, PingTimeout: pingTimeout, MaxPayload: 1_000_000, CORS: &CORS{Origins: []string{"*"}}})
	s.OnConnection(func(c *Conn) {
		c.OnMessage(func(data []byte, binary bool) { c.Send(append([]byte(nil), data...), binary) })
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", s)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	return hs.URL + "/engine.io/", s
}

func get(t *testing.T, url string) (int, string) { return wstest.Do(t, "GET", url, "") }

func do(t *testing.T, method, url, body string) (int, string) { return wstest.Do(t, method, url, body) }

func openPolling(t *testing.T, base string) string {
	t.Helper()
	code, body := get(t, base+"?EIO=4&transport=polling")
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	var v struct{ Sid string }
	json.Unmarshal([]byte(body[1:]), &v)
	return v.Sid
}

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") }

func handshakeKeys(t *testing.T, body string, upgrades []string) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(body[1:]), &v); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, []string{"maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"}) {
		t.Fatalf("handshake keys %v", keys)
	}
	if _, ok := v["sid"].(string); !ok {
		t.Fatal("sid is not a string")
	}
	ups, _ := json.Marshal(v["upgrades"])
	want, _ := json.Marshal(upgrades)
	if string(ups) != string(want) || v["pingInterval"] != 300.0 || v["pingTimeout"] != 200.0 || v["maxPayload"] != 1e6 {
		t.Fatalf("handshake %v", v)
	}
}

func TestEngineIOProtocolSuite(t *testing.T) {
	base, _ := echoServer(t)
	ws := wsURL(base)

	t.Run("handshake/polling/successfully opens a session", func(t *testing.T) {
		code, body := get(t, base+"?EIO=4&transport=polling")
		if code != 200 || !strings.HasPrefix(body, "0") {
			t.Fatalf("%d %q", code, body)
		}
		handshakeKeys(t, body, []string{"websocket"})
	})
	t.Run("handshake/polling/fails with an invalid EIO query parameter", func(t *testing.T) {
		for _, q := range []string{"?transport=polling", "?EIO=abc&transport=polling"} {
			if code, _ := get(t, base+q); code != 400 {
				t.Fatalf("%s: %d", q, code)
			}
		}
	})
	t.Run("handshake/polling/fails with an invalid transport query parameter", func(t *testing.T) {
		for _, q := range []string{"?EIO=4", "?EIO=4&transport=abc"} {
			if code, _ := get(t, base+q); code != 400 {
				t.Fatalf("%s: %d", q, code)
			}
		}
	})
	t.Run("handshake/polling/fails with an invalid request method", func(t *testing.T) {
		for _, m := range []string{"POST", "PUT"} {
			if code, _ := do(t, m, base+"?EIO=4&transport=polling", ""); code != 400 {
				t.Fatalf("%s: %d", m, code)
			}
		}
	})
	t.Run("handshake/websocket/successfully opens a session", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		_, data := c.Read()
		if !strings.HasPrefix(data, "0") {
			t.Fatalf("%q", data)
		}
		handshakeKeys(t, data, []string{})
	})
	t.Run("handshake/websocket/fails with an invalid EIO query parameter", func(t *testing.T) {
		for _, q := range []string{"?transport=websocket", "?EIO=abc&transport=websocket"} {
			if _, _, err := wstest.Dialer.Dial(ws+q, nil); err == nil {
				t.Fatalf("%s: the WebSocket opened", q)
			}
		}
	})
	t.Run("handshake/websocket/fails with an invalid transport query parameter", func(t *testing.T) {
		for _, q := range []string{"?EIO=4", "?EIO=4&transport=abc"} {
			if _, _, err := wstest.Dialer.Dial(ws+q, nil); err == nil {
				t.Fatalf("%s: the WebSocket opened", q)
			}
		}
	})

	t.Run("message/polling/one plain text packet", func(t *testing.T) {
		sid := openPolling(t, base)
		if code, body := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "4hello"); code != 200 || body != "ok" {
			t.Fatalf("%d %q", code, body)
		}
		if code, body := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 200 || body != "4hello" {
			t.Fatalf("%d %q", code, body)
		}
	})
	t.Run("message/polling/several plain text packets", func(t *testing.T) {
		sid := openPolling(t, base)
		if code, body := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "4test1\x1e4test2\x1e4test3"); code != 200 || body != "ok" {
			t.Fatalf("%d %q", code, body)
		}
		if code, body := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 200 || body != "4test1\x1e4test2\x1e4test3" {
			t.Fatalf("%d %q", code, body)
		}
	})
	t.Run("message/polling/plain text and binary packets", func(t *testing.T) {
		sid := openPolling(t, base)
		if code, body := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "4hello\x1ebAQIDBA=="); code != 200 || body != "ok" {
			t.Fatalf("%d %q", code, body)
		}
		if code, body := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 200 || body != "4hello\x1ebAQIDBA==" {
			t.Fatalf("%d %q", code, body)
		}
	})
	t.Run("message/polling/closes the session upon invalid packet format", func(t *testing.T) {
		sid := openPolling(t, base)
		if code, _ := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "abc"); code != 400 && code != 0 {
			t.Fatalf("POST abc: %d", code)
		}
		if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("GET after: %d", code)
		}
	})
	t.Run("message/polling/closes the session upon duplicate poll requests", func(t *testing.T) {
		sid := openPolling(t, base)
		var wg sync.WaitGroup
		var c1, c2 int
		var b1 string
		wg.Add(2)
		go func() { defer wg.Done(); c1, b1 = get(t, base+"?EIO=4&transport=polling&sid="+sid) }()
		go func() {
			defer wg.Done()
			time.Sleep(5 * time.Millisecond)
			c2, _ = get(t, base+"?EIO=4&transport=polling&sid="+sid+"&t=burst")
		}()
		wg.Wait()
		if c1 != 200 || b1 != "1" || (c2 != 400 && c2 != 500) {
			t.Fatalf("first %d %q, second %d", c1, b1, c2)
		}
		if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("later GET: %d", code)
		}
	})
	t.Run("message/websocket/plain text packet", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		c.Read()
		c.Send("4hello")
		if _, d := c.Read(); d != "4hello" {
			t.Fatalf("%q", d)
		}
	})
	t.Run("message/websocket/binary packet", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		c.Read()
		c.SendBinary([]byte{1, 2, 3, 4})
		if typ, d := c.Read(); typ != websocket.BinaryMessage || d != "\x01\x02\x03\x04" {
			t.Fatalf("%v %q", typ, d)
		}
	})
	t.Run("message/websocket/closes the session upon invalid packet format", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		c.Read()
		c.Send("abc")
		c.WaitClose(5 * time.Second)
	})

	t.Run("heartbeat/polling/sends ping/pong packets", func(t *testing.T) {
		sid := openPolling(t, base)
		for i := 0; i < 3; i++ {
			if code, body := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 200 || body != "2" {
				t.Fatalf("round %d: %d %q", i, code, body)
			}
			if code, body := do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "3"); code != 200 || body != "ok" {
				t.Fatalf("round %d: %d %q", i, code, body)
			}
		}
	})
	t.Run("heartbeat/polling/closes the session upon ping timeout", func(t *testing.T) {
		sid := openPolling(t, base)
		time.Sleep(pingInterval + pingTimeout)
		if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("GET after the ping timeout: %d", code)
		}
	})
	t.Run("heartbeat/websocket/sends ping/pong packets", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		c.Read()
		for i := 0; i < 3; i++ {
			if _, d := c.Read(); d != "2" {
				t.Fatalf("round %d: %q", i, d)
			}
			c.Send("3")
		}
	})
	t.Run("heartbeat/websocket/closes the session upon ping timeout", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		c.WaitClose(5 * time.Second)
	})

	t.Run("close/polling/forcefully closes the session", func(t *testing.T) {
		sid := openPolling(t, base)
		var wg sync.WaitGroup
		var code int
		var body string
		wg.Add(1)
		go func() { defer wg.Done(); code, body = get(t, base+"?EIO=4&transport=polling&sid="+sid) }()
		time.Sleep(20 * time.Millisecond)
		do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "1")
		wg.Wait()
		if code != 200 || body != "6" {
			t.Fatalf("pending GET: %d %q", code, body)
		}
		if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("GET after close: %d", code)
		}
	})
	// the suite sends the GET and the POST at once: either may arrive first
	t.Run("close/polling/close packet before the GET", func(t *testing.T) {
		sid := openPolling(t, base)
		do(t, "POST", base+"?EIO=4&transport=polling&sid="+sid, "1")
		if code, body := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 200 || body != "6" {
			t.Fatalf("GET after the close: %d %q", code, body)
		}
		if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("second GET: %d", code)
		}
	})
	t.Run("close/websocket/forcefully closes the session", func(t *testing.T) {
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket")
		c.Read()
		c.Send("1")
		c.WaitClose(5 * time.Second)
	})

	t.Run("upgrade/successfully upgrades from polling to WebSocket", func(t *testing.T) {
		sid := openPolling(t, base)
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket&sid="+sid)
		c.Send("2probe")
		if _, d := c.Read(); d != "3probe" {
			t.Fatalf("probe: %q", d)
		}
		if code, body := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 200 || body != "6" {
			t.Fatalf("pending GET: %d %q", code, body)
		}
		c.Send("5")
		c.Send("4hello")
		if _, d := c.Read(); d != "4hello" {
			t.Fatalf("echo: %q", d)
		}
	})
	t.Run("upgrade/ignores HTTP requests with same sid after upgrade", func(t *testing.T) {
		sid := openPolling(t, base)
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket&sid="+sid)
		c.Send("2probe")
		c.Send("5") // at once, as the official case: the GET below must find the upgrade done
		if code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("polling after upgrade: %d", code)
		}
		c.Send("4hello")
		c.ExpectSkipping("3probe", "2")
		c.ExpectSkipping("4hello", "2") // nothing else (no noop) on the WebSocket
	})
	t.Run("upgrade/ignores WebSocket connection with same sid after upgrade", func(t *testing.T) {
		sid := openPolling(t, base)
		c := wstest.Dial(t, ws+"?EIO=4&transport=websocket&sid="+sid)
		c.Send("2probe")
		c.Send("5")
		c.ExpectSkipping("3probe", "2")
		c2 := wstest.Dial(t, ws+"?EIO=4&transport=websocket&sid="+sid)
		c2.WaitClose(5 * time.Second)
		c.Send("4hello")
		c.ExpectSkipping("4hello", "2")
	})
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4test1\x1e4test2", "4hello\x1ebAQIDBA==", "abc", "2\x1e3", "b!!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := decodePayload(body)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if !m.Binary && (len(m.Data) == 0 || m.Data[0] < '0' || m.Data[0] > '6') {
				t.Fatalf("accepted an invalid packet %q", m.Data)
			}
		}
	})
}
