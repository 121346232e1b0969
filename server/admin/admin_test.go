package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/admin"
	"github.com/siobridge/siobridge/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var creds = map[string]string{"username": "admin", "password": "s3cret"}

// start serves a new server instrumented with o (Basic admin/s3cret
// unless o sets Auth or NoAuth), returning its URL.
func start(t *testing.T, o admin.Options, setup func(*server.Server), opts ...server.Option) (*server.Server, *admin.Admin, string) {
	t.Helper()
	srv := server.New(opts...)
	if setup != nil {
		setup(srv)
	}
	if o.Auth == nil && !o.NoAuth {
		o.Auth = admin.Basic(creds["username"], creds["password"])
	}
	a, err := admin.Instrument(srv, o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI()))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	return srv, a, hs.URL
}

// inbox keeps everything a client received in a namespace.
type inbox struct {
	t   *testing.T
	c   *servertest.Client
	ns  string
	got []servertest.Received
}

func dial(t *testing.T, url, ns string, auth any) (*servertest.Client, error) {
	t.Helper()
	c, err := servertest.Dial(url, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.Connect(ns, auth)
}

func adminClient(t *testing.T, url string) *inbox {
	t.Helper()
	c, err := dial(t, url, "/admin", creds)
	if err != nil {
		t.Fatal(err)
	}
	return &inbox{t: t, c: c, ns: "/admin"}
}

// wait returns the arguments of the first event named event whose
// arguments match (nil matches all), waiting 5 s at most.
func (b *inbox) wait(event string, match func(args []any) bool) []any {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.got = append(b.got, b.c.Received(b.ns)...)
		for _, r := range b.got {
			if r.Event == event && (match == nil || match(r.Args)) {
				return r.Args
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, r := range b.got {
				names = append(names, fmt.Sprintf("%s%v", r.Event, r.Args))
			}
			b.t.Fatalf("no matching %q within 5 s; received:\n%s", event, strings.Join(names, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// events returns the names of the events received so far, in order.
func (b *inbox) events() []string {
	b.got = append(b.got, b.c.Received(b.ns)...)
	var out []string
	for _, r := range b.got {
		out = append(out, r.Event)
	}
	return out
}

func args(want ...any) func([]any) bool {
	return func(got []any) bool {
		if len(got) < len(want) {
			return false
		}
		for i, w := range want {
			if w != nil && !reflect.DeepEqual(got[i], w) {
				return false
			}
		}
		return true
	}
}

// The admin namespace accepts the configured user name and password
// (refusing others with the UI's "invalid credentials"), gives a session
// id that is accepted alone later, and sends the UI what it needs first:
// its session, the features, the statistics and the sockets.
func TestAuthentication(t *testing.T) {
	_, _, url := start(t, admin.Options{}, nil)
	for _, bad := range []any{nil, map[string]string{"username": "admin", "password": "wrong"},
		map[string]string{"username": "root", "password": "s3cret"}, map[string]string{"sessionId": "made-up"}} {
		_, err := dial(t, url, "/admin", bad)
		var ce *servertest.ConnectError
		if !errors.As(err, &ce) || ce.Message != "invalid credentials" {
			t.Errorf("auth %v: %v, want the refusal \"invalid credentials\"", bad, err)
		}
	}
	a := adminClient(t, url)
	session, _ := a.wait("session", nil)[0].(string)
	a.wait("all_sockets", nil)
	if got, want := a.events()[:4], []string{"session", "config", "server_stats", "all_sockets"}; !reflect.DeepEqual(got, want) {
		t.Errorf("first events %v, want %v", got, want)
	}
	if _, err := dial(t, url, "/admin", map[string]string{"sessionId": session}); err != nil || len(session) != 32 {
		t.Errorf("session %q refused: %v", session, err)
	}
}

func TestInstrumentOptions(t *testing.T) {
	if _, err := admin.Instrument(server.New(), admin.Options{}); err == nil {
		t.Error("Instrument without Auth nor NoAuth: no error")
	}
	if _, err := admin.Instrument(server.New(), admin.Options{NoAuth: true, Mode: "debug"}); err == nil {
		t.Error("Instrument with mode \"debug\": no error")
	}
	_, _, url := start(t, admin.Options{NoAuth: true}, nil)
	if _, err := dial(t, url, "/admin", nil); err != nil {
		t.Errorf("NoAuth: %v", err)
	}
}

// Login sessions are bounded: the oldest is forgotten first.
func TestSessionsBounded(t *testing.T) {
	_, _, url := start(t, admin.Options{MaxSessions: 2}, nil)
	var ids []string
	for range 3 {
		a := adminClient(t, url)
		ids = append(ids, a.wait("session", nil)[0].(string))
	}
	if _, err := dial(t, url, "/admin", map[string]string{"sessionId": ids[0]}); err == nil {
		t.Error("the oldest of 3 sessions with MaxSessions 2 is still accepted")
	}
	if _, err := dial(t, url, "/admin", map[string]string{"sessionId": ids[2]}); err != nil {
		t.Errorf("the newest session is refused: %v", err)
	}
}

// The features follow the options, as python-socketio's.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		o    admin.Options
		want []any
	}{
		{admin.Options{}, []any{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}},
		{admin.Options{ReadOnly: true}, []any{"AGGREGATED_EVENTS", "ALL_EVENTS"}},
		{admin.Options{Mode: admin.Production}, []any{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS"}},
	} {
		_, _, url := start(t, tc.o, nil)
		a := adminClient(t, url)
		cfg, _ := a.wait("config", nil)[0].(map[string]any)
		if got := cfg["supportedFeatures"]; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("mode %q read-only %v: features %v, want %v", tc.o.Mode, tc.o.ReadOnly, got, tc.want)
		}
	}
}

// In development mode the admin clients see every socket: those already
// connected (all_sockets, with their rooms and handshake), those that
// connect, the rooms they join and leave, the events they receive and
// send, and their disconnection (then the rooms they left).
func TestDevelopmentReports(t *testing.T) {
	_, _, url := start(t, admin.Options{}, func(srv *server.Server) {
		srv.On("/", "join", func(s *server.Socket, room string) string { s.Join(room); return "ok" })
		srv.On("/", "leave", func(s *server.Socket, room string) { s.Leave(room) })
		srv.On("/", "ping", func(s *server.Socket, v any) { s.Emit("pong", v, []byte{7}) })
	})
	early, err := servertest.Dial(url, servertest.Options{Query: map[string][]string{"user": {"early"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	if err := early.Connect("/", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := early.EmitWithAck("/", 5*time.Second, "join", "lobby"); err != nil {
		t.Fatal(err)
	}

	a := adminClient(t, url)
	list, _ := a.wait("all_sockets", nil)[0].([]any)
	var found map[string]any
	for _, e := range list {
		if s, _ := e.(map[string]any); s["id"] == early.SID("/") {
			found = s
		}
	}
	if found == nil {
		t.Fatalf("all_sockets %v does not list %s", list, early.SID("/"))
	}
	hs, _ := found["handshake"].(map[string]any)
	query, _ := hs["query"].(map[string]any)
	if found["nsp"] != "/" || found["transport"] != "websocket" || found["clientId"] == "" || found["clientId"] == found["id"] ||
		!reflect.DeepEqual(found["rooms"], []any{"lobby", early.SID("/")}) && !reflect.DeepEqual(found["rooms"], []any{early.SID("/"), "lobby"}) ||
		query["user"] != "early" || hs["address"] != "127.0.0.1" || hs["time"] == "" || hs["issued"] == float64(0) {
		t.Errorf("all_sockets entry %v", found)
	}

	c, err := dial(t, url, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	sid := c.SID("/")
	a.wait("room_joined", args("/", sid, sid))
	connected := a.wait("socket_connected", func(v []any) bool { s, _ := v[0].(map[string]any); return s["id"] == sid })
	if ts, _ := connected[1].(string); !strings.HasSuffix(ts, "Z") || len(ts) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("socket_connected timestamp %q, want JavaScript's Date.toJSON", connected[1])
	}
	c.Emit("/", "join", "room1")
	a.wait("event_received", args("/", sid, []any{"join", "room1"}))
	a.wait("room_joined", args("/", "room1", sid))
	c.Emit("/", "ping", map[string]any{"n": 1.0})
	a.wait("event_received", args("/", sid, []any{"ping", map[string]any{"n": 1.0}}))
	a.wait("event_sent", args("/", sid, []any{"pong", map[string]any{"n": 1.0}, []byte{7}}))
	c.Emit("/", "leave", "room1")
	a.wait("room_left", args("/", "room1", sid))
	c.Disconnect("/")
	a.wait("socket_disconnected", args("/", sid, "client namespace disconnect"))
	a.wait("room_left", args("/", sid, sid))
	// the admin namespace's own events are not reported
	for _, r := range a.got {
		if (r.Event == "event_sent" || r.Event == "event_received") && r.Args[0] == "/admin" {
			t.Errorf("reported an event of the admin namespace: %v", r.Args)
		}
	}
}

// The UI's operations act on the sockets the filter selects: a socket id,
// a room, or the whole namespace.
func TestOperations(t *testing.T) {
	srv, _, url := start(t, admin.Options{}, nil)
	c1, err := dial(t, url, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := dial(t, url, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := adminClient(t, url)
	a.wait("all_sockets", nil)
	rooms := func(c *servertest.Client) []string {
		r := srv.Of("/").Socket(c.SID("/")).Rooms()
		slices.Sort(r)
		return r
	}
	eventually := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not done within 5 s: %s", what)
			}
		}
	}
	a.c.Emit("/admin", "join", "/", "vip", c1.SID("/"))
	eventually("c1 joins vip", func() bool { return slices.Contains(rooms(c1), "vip") })
	a.c.Emit("/admin", "emit", "/", "vip", "news", "for vip", 2)
	if got, err := c1.WaitFor("/", "news", 5*time.Second); err != nil || !reflect.DeepEqual(got[len(got)-1].Args, []any{"for vip", 2.0}) {
		t.Fatalf("c1: %v %v", got, err)
	}
	a.c.Emit("/admin", "emit", "/", nil, "all", 1)
	if _, err := c2.WaitFor("/", "all", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c2.Received("/"); len(got) != 0 {
		t.Errorf("c2, not in vip, received %v", got)
	}
	a.c.Emit("/admin", "join", "/", "everyone") // no filter: every socket of the namespace
	eventually("both join everyone", func() bool {
		return slices.Contains(rooms(c1), "everyone") && slices.Contains(rooms(c2), "everyone")
	})
	a.c.Emit("/admin", "leave", "/", "everyone", "vip")
	eventually("c1 leaves everyone", func() bool { return !slices.Contains(rooms(c1), "everyone") })
	if !slices.Contains(rooms(c2), "everyone") {
		t.Error("c2, not in vip, left everyone too")
	}
	a.c.Emit("/admin", "join", "/nowhere", "x") // an unknown namespace is not created
	a.c.Emit("/admin", "_disconnect", "/", false, c2.SID("/"))
	if !c2.WaitDisconnected("/", 5*time.Second) {
		t.Fatal("c2 was not disconnected")
	}
	if srv.Of("/").Socket(c1.SID("/")) == nil {
		t.Error("c1 was disconnected along with c2")
	}
	for _, n := range srv.Namespaces() {
		if n.Name() == "/nowhere" {
			t.Error("an operation created namespace /nowhere")
		}
	}
}

// A read-only admin cannot act on the sockets.
func TestReadOnly(t *testing.T) {
	srv, _, url := start(t, admin.Options{ReadOnly: true}, func(srv *server.Server) {
		srv.On("/admin", "sync", func(*server.Socket) string { return "ok" })
	}, server.WithAsyncHandlers(false)) // an admin's events are handled in order
	c, err := dial(t, url, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := adminClient(t, url)
	a.wait("all_sockets", nil)
	a.c.Emit("/admin", "join", "/", "vip", c.SID("/"))
	a.c.Emit("/admin", "_disconnect", "/", true, c.SID("/"))
	if _, err := a.c.EmitWithAck("/admin", 5*time.Second, "sync"); err != nil { // handled after them
		t.Fatal(err)
	}
	if s := srv.Of("/").Socket(c.SID("/")); s == nil || slices.Contains(s.Rooms(), "vip") {
		t.Errorf("read-only admin acted on the socket: %v", s)
	}
}

// server_stats reports the clients, the sockets per namespace and the
// traffic since the last report.
func TestServerStats(t *testing.T) {
	_, _, url := start(t, admin.Options{StatsInterval: 50 * time.Millisecond, ServerID: "node-1"}, func(srv *server.Server) {
		srv.Of("/chat")
	})
	a := adminClient(t, url)
	c, err := dial(t, url, "/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Emit("/chat", "hello", strings.Repeat("x", 100))
	var sawTraffic bool
	st, _ := a.wait("server_stats", func(v []any) bool {
		st, _ := v[0].(map[string]any)
		for _, e := range st["aggregatedEvents"].([]any) {
			if ev, _ := e.(map[string]any); ev["type"] == "bytesIn" && ev["count"].(float64) > 100 {
				sawTraffic = true
			}
		}
		return sawTraffic
	})[0].(map[string]any)
	if st["serverId"] != "node-1" || st["clientsCount"] != 2.0 || st["pollingClientsCount"] != 0.0 || st["pid"] == 0.0 {
		t.Errorf("server_stats %v", st)
	}
	want := []any{
		map[string]any{"name": "/", "socketsCount": 0.0},
		map[string]any{"name": "/admin", "socketsCount": 1.0},
		map[string]any{"name": "/chat", "socketsCount": 1.0},
	}
	if !reflect.DeepEqual(st["namespaces"], want) {
		t.Errorf("namespaces %v, want %v", st["namespaces"], want)
	}
}

// In production mode the admin clients get the statistics only.
func TestProductionReportsStatsOnly(t *testing.T) {
	_, _, url := start(t, admin.Options{Mode: admin.Production, StatsInterval: 20 * time.Millisecond}, nil)
	a := adminClient(t, url)
	c, err := dial(t, url, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Emit("/", "x")
	a.wait("server_stats", args(nil)) // the one sent at connection
	a.wait("server_stats", func(v []any) bool { return len(v[0].(map[string]any)["aggregatedEvents"].([]any)) > 0 })
	for _, e := range a.events() {
		if e != "session" && e != "config" && e != "server_stats" {
			t.Errorf("production mode sent %q", e)
		}
	}
}

// UI serves the Admin UI's embedded build.
func TestUI(t *testing.T) {
	_, _, url := start(t, admin.Options{}, nil)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := get("/admin/")
	if res.StatusCode != 200 || !strings.Contains(body, "<title>Socket.IO Admin UI</title>") || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/admin/: %d %s %.100q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	i := strings.Index(body, `src="js/app.`)
	if i < 0 {
		t.Fatal("index.html loads no js/app.*.js")
	}
	script := body[i+len(`src="`):]
	script = script[:strings.IndexByte(script, '"')]
	res, js := get("/admin/" + script)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "javascript") ||
		!strings.Contains(res.Header.Get("Cache-Control"), "immutable") || !strings.Contains(js, "supportedFeatures") {
		t.Errorf("%s: %d %s %s", script, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	if res, _ := get("/admin"); res.StatusCode != 200 || res.Request.URL.Path != "/admin/" {
		t.Errorf("/admin: %d at %s, want a redirect to /admin/", res.StatusCode, res.Request.URL.Path)
	}
	for _, p := range []string{"/admin/nothing.js", "/admin/js/", "/admin/../admin.go"} {
		if res, _ := get(p); res.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
	if res, _ := get("/admin/LICENSE"); res.StatusCode != 200 {
		t.Errorf("the UI's LICENSE: %d", res.StatusCode)
	}
	if res, _ := get("/admin/fonts/LICENSE-roboto"); res.StatusCode != 200 || strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("the fonts' licence: %d %s", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	post, err := http.Post(url+"/admin/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", post.StatusCode)
	}
}

var (
	linkRe = regexp.MustCompile(`(?:href|src)="([^"]*)"`)
	urlRe  = regexp.MustCompile(`url\(["']?([^"')]+)["']?\)`)
	iconRe = regexp.MustCompile(`\bmdi-[a-z0-9-]+`)
)

// The UI works offline: its page links only files of the server, each of
// them served; its fonts' style sheet loads woff2 files of the server
// (served as fonts, immutable), and has the rule of every icon class
// (mdi-NAME) the UI's scripts and styles name.
func TestUIOffline(t *testing.T) {
	_, _, url := start(t, admin.Options{}, nil)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(url + "/admin/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		return res, string(b)
	}
	_, index := get("")
	var fontsCSS string
	names := map[string]bool{}
	for _, m := range linkRe.FindAllStringSubmatch(index, -1) {
		link := m[1]
		if strings.Contains(link, "//") || strings.Contains(link, ":") {
			t.Errorf("index.html links %s, not a file of the server", link)
			continue
		}
		_, body := get(link)
		switch {
		case strings.HasPrefix(link, "fonts/") && strings.HasSuffix(link, ".css"):
			fontsCSS = body
		case strings.HasSuffix(link, ".js") || strings.HasSuffix(link, ".css"):
			for _, n := range iconRe.FindAllString(body, -1) {
				names[n] = true
			}
		}
	}
	if fontsCSS == "" {
		t.Fatal("index.html links no fonts/*.css")
	}
	faces := 0
	for _, m := range urlRe.FindAllStringSubmatch(fontsCSS, -1) {
		res, body := get("fonts/" + m[1])
		if res.Header.Get("Content-Type") != "font/woff2" || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(body, "wOF2") {
			t.Errorf("%s: %s, %s, %.4q", m[1], res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"), body)
		}
		faces++
	}
	if faces != 3 || !strings.Contains(fontsCSS, `font-family:"Material Design Icons"`) || !strings.Contains(fontsCSS, "font-family: 'Roboto'") {
		t.Errorf("fonts CSS with %d font files:\n%.600s", faces, fontsCSS)
	}
	if len(names) < 10 {
		t.Fatalf("the UI names %d icons", len(names))
	}
	for n := range names {
		if !strings.Contains(fontsCSS, "."+n+":") {
			t.Errorf("no rule for the icon class %s the UI names: run server/admin/vendor-ui.sh", n)
		}
	}
}

// Close disconnects the admin clients, refuses new ones and stops the
// goroutine (TestMain checks for leaks).
func TestClose(t *testing.T) {
	_, adm, url := start(t, admin.Options{}, nil)
	a := adminClient(t, url)
	adm.Close()
	if !a.c.WaitDisconnected("/admin", 5*time.Second) {
		t.Error("the admin client is still connected")
	}
	if _, err := dial(t, url, "/admin", creds); err == nil {
		t.Error("an admin client connected after Close")
	}
	adm.Close() // twice is harmless
}

// A client that connects over HTTP long-polling is reported with that
// transport, counted in pollingClientsCount, and reported again
// (socket_updated) once it upgraded to WebSocket.
func TestUpgradeReported(t *testing.T) {
	_, _, url := start(t, admin.Options{StatsInterval: 50 * time.Millisecond}, nil)
	a := adminClient(t, url)
	a.wait("all_sockets", nil)

	// the Engine.IO handshake over polling, then CONNECT to "/"
	poll := url + "/socket.io/?EIO=4&transport=polling"
	body := func(res *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(body(http.Get(poll)), "0")), &open); err != nil || open.SID == "" {
		t.Fatalf("handshake: %v", err)
	}
	poll += "&sid=" + open.SID
	body(http.Post(poll, "text/plain", strings.NewReader("40")))
	ack := body(http.Get(poll))
	var sock struct{ SID string }
	if !strings.HasPrefix(ack, "40") || json.Unmarshal([]byte(ack[2:]), &sock) != nil {
		t.Fatalf("CONNECT answer %q", ack)
	}
	connected := a.wait("socket_connected", func(v []any) bool { return v[0].(map[string]any)["id"] == sock.SID })
	if tr := connected[0].(map[string]any)["transport"]; tr != "polling" {
		t.Errorf("socket_connected transport %v, want polling", tr)
	}
	a.wait("server_stats", func(v []any) bool { return v[0].(map[string]any)["pollingClientsCount"] == 1.0 })

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+open.SID, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "3probe" {
		t.Fatalf("probe answer %q %v", b, err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("5"))
	a.wait("socket_updated", args(map[string]any{"id": sock.SID, "nsp": "/", "transport": "websocket"}))
	a.wait("server_stats", func(v []any) bool { return v[0].(map[string]any)["pollingClientsCount"] == 0.0 })
}
