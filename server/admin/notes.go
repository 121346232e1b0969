package admin

import (
	"encoding/json"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/engineio"
)

// What the hooks observe becomes notes, queued (bounded in bytes) for the
// package's goroutine, which emits them to the admin namespace: hooks run
// on the server's goroutines, sometimes under its locks, and must not
// emit themselves.

type noteKind uint8

const (
	noteConnected noteKind = iota
	noteDisconnected
	noteJoined
	noteLeft
	noteReceived
	noteSent
)

// noteOverhead is what a note counts against Options.QueueBytes besides
// the event it carries.
const noteOverhead = 256

type note struct {
	kind noteKind
	s    *server.Socket
	text string // room, or disconnection reason
	ev   server.EventData
	at   time.Time
	cost int
}

// noteQueue is the bounded queue of notes.
type noteQueue struct {
	max     int
	wake    chan struct{}
	dropped atomic.Uint64

	mu    sync.Mutex
	notes []note
	bytes int
}

func (q *noteQueue) push(n note) {
	n.cost = noteOverhead + n.ev.Size()
	q.mu.Lock()
	if q.bytes+n.cost > q.max {
		q.mu.Unlock()
		q.dropped.Add(1)
		return
	}
	q.notes = append(q.notes, n)
	q.bytes += n.cost
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *noteQueue) take() []note {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.notes
	q.notes, q.bytes = nil, 0
	return l
}

// counters are the aggregated events of the next server_stats.
type counters struct {
	connections, disconnections atomic.Int64
	packetsIn, packetsOut       atomic.Int64
	bytesIn, bytesOut           atomic.Int64
}

// hooks observe the server.
func (a *Admin) hooks() server.Hooks {
	h := server.Hooks{
		ClientOpened: func(c *engineio.Conn) {
			a.stats.connections.Add(1)
			a.mu.Lock()
			a.conns[c.ID()] = c
			a.mu.Unlock()
		},
		ClientClosed: func(c *engineio.Conn, _ string) {
			a.stats.disconnections.Add(1)
			a.mu.Lock()
			delete(a.conns, c.ID())
			a.mu.Unlock()
		},
		PacketIn: func(n int) {
			a.stats.packetsIn.Add(1)
			a.stats.bytesIn.Add(int64(n))
		},
		PacketOut: func(n int) {
			a.stats.packetsOut.Add(1)
			a.stats.bytesOut.Add(int64(n))
		},
	}
	if a.o.Mode != Development {
		return h
	}
	h.Connected = func(s *server.Socket) {
		now := time.Now()
		a.mu.Lock()
		a.sockets[s.ID()] = &tracked{s: s, at: now, transport: s.Transport()}
		a.mu.Unlock()
		a.note(note{kind: noteConnected, s: s, at: now})
	}
	h.Disconnected = func(s *server.Socket, reason string) {
		a.mu.Lock()
		delete(a.sockets, s.ID())
		a.mu.Unlock()
		a.note(note{kind: noteDisconnected, s: s, text: reason, at: time.Now()})
	}
	h.Joined = func(s *server.Socket, room string) {
		a.note(note{kind: noteJoined, s: s, text: room, at: time.Now()})
	}
	h.Left = func(s *server.Socket, room string) {
		a.note(note{kind: noteLeft, s: s, text: room, at: time.Now()})
	}
	h.EventReceived = func(s *server.Socket, e server.EventData) {
		if s.Namespace() != a.o.Namespace {
			a.note(note{kind: noteReceived, s: s, ev: e, at: time.Now()})
		}
	}
	h.EventSent = func(s *server.Socket, e server.EventData) {
		if s.Namespace() != a.o.Namespace {
			a.note(note{kind: noteSent, s: s, ev: e, at: time.Now()})
		}
	}
	return h
}

// note queues n when someone may listen: an admin client of this server,
// or of another server of the cluster (the admin namespace's emits cross
// the cluster, as python-socketio's and Node's do).
func (a *Admin) note(n note) {
	if !a.listened() {
		return
	}
	a.q.push(n)
}

func (a *Admin) listened() bool { return a.adminCount.Load() > 0 || a.srv.HasAdapter() }

// run is the package's goroutine: it emits the notes and the statistics.
func (a *Admin) run() {
	defer close(a.done)
	tick := time.NewTicker(a.o.StatsInterval)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-a.stop:
			return
		case <-a.q.wake:
			a.emitNotes()
		case <-tick.C:
			a.ns.Emit("server_stats", a.serverStats(true))
			if a.o.Mode == Development {
				a.reportUpgrades()
			}
			if d := a.q.dropped.Load(); d != reported {
				a.log.Warn("admin: notifications dropped: the admin clients do not keep up with the server (Options.QueueBytes)",
					"dropped", d-reported, "queueBytes", a.o.QueueBytes)
				reported = d
			}
		}
	}
}

// emitBatch is how many notes are emitted before waiting for the admin
// clients to take them: well below the Engine.IO send queue's bound in
// packets (1024 by default), so that a burst does not disconnect them.
const emitBatch = 256

// emitNotes emits the queued notes, emitBatch at a time.
func (a *Admin) emitNotes() {
	notes := a.q.take()
	for i, n := range notes {
		if i > 0 && i%emitBatch == 0 && !a.waitAdmins() {
			return
		}
		a.emitNote(n)
	}
}

// waitAdmins waits, for a second at most, until the admin clients of
// this server have sent what was queued for them; false when stopped.
func (a *Admin) waitAdmins() bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if a.adminsWritable() {
			return true
		}
		select {
		case <-a.stop:
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
	return true
}

func (a *Admin) adminsWritable() bool {
	a.mu.Lock()
	conns := make([]*engineio.Conn, 0, len(a.admins))
	for _, cid := range a.admins {
		if c := a.conns[cid]; c != nil {
			conns = append(conns, c)
		}
	}
	a.mu.Unlock()
	for _, c := range conns { // outside a.mu: Writable takes the connection's lock
		if !c.Writable() {
			return false
		}
	}
	return true
}

// timestamp is JavaScript's Date.toJSON, which the Node package sends.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (a *Admin) emitNote(n note) {
	nsp, sid, at := n.s.Namespace(), n.s.ID(), timestamp(n.at)
	var err error
	switch n.kind {
	case noteConnected:
		err = a.ns.Emit("socket_connected", a.serialize(n.s), at)
	case noteDisconnected:
		err = a.ns.Emit("socket_disconnected", nsp, sid, n.text, at)
	case noteJoined:
		err = a.ns.Emit("room_joined", nsp, n.text, sid, at)
	case noteLeft:
		err = a.ns.Emit("room_left", nsp, n.text, sid, at)
	case noteReceived, noteSent:
		name := "event_received"
		if n.kind == noteSent {
			name = "event_sent"
		}
		err = a.ns.Emit(name, nsp, sid, eventArgs(n.ev), at)
	}
	if err != nil {
		a.log.Warn("admin: cannot emit a notification", "err", err)
	}
}

// eventArgs is the event as the UI wants it: [name, args...].
func eventArgs(e server.EventData) any {
	if len(e.Attachments) == 0 {
		return e.Data // the packet's own JSON array
	}
	args, err := e.Args()
	if err != nil {
		return []any{e.Name}
	}
	return append([]any{e.Name}, args...)
}

// reportUpgrades emits socket_updated for the sockets whose transport
// changed (python-socketio checks for upgrades every 5 s; Node reports
// them at once).
func (a *Admin) reportUpgrades() {
	a.mu.Lock()
	socks := make([]*tracked, 0, len(a.sockets))
	for _, t := range a.sockets {
		socks = append(socks, t)
	}
	a.mu.Unlock()
	for _, t := range socks { // t.transport is only used by this goroutine
		if tr := t.s.Transport(); tr != t.transport {
			t.transport = tr
			a.ns.Emit("socket_updated", map[string]any{"id": t.s.ID(), "nsp": t.s.Namespace(), "transport": tr})
		}
	}
}

// ------------------------------------------------------------- statistics

type aggregatedEvent struct {
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
	Count     int64  `json:"count"`
}

type namespaceStats struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

type serverStats struct {
	ServerID            string            `json:"serverId"`
	Hostname            string            `json:"hostname"`
	PID                 int               `json:"pid"`
	Uptime              float64           `json:"uptime"`
	ClientsCount        int               `json:"clientsCount"`
	PollingClientsCount int               `json:"pollingClientsCount"`
	AggregatedEvents    []aggregatedEvent `json:"aggregatedEvents"`
	Namespaces          []namespaceStats  `json:"namespaces"`
}

// serverStats is the server_stats event; with aggregate, it carries (and
// resets) the counters of connections and traffic since the last one.
func (a *Admin) serverStats(aggregate bool) serverStats {
	st := serverStats{ServerID: a.o.ServerID, Hostname: a.hostname, PID: os.Getpid(),
		Uptime: time.Since(a.started).Seconds(), AggregatedEvents: []aggregatedEvent{}, Namespaces: []namespaceStats{}}
	a.mu.Lock()
	conns := make([]*engineio.Conn, 0, len(a.conns))
	for _, c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	st.ClientsCount = len(conns)
	for _, c := range conns { // outside a.mu: Transport takes the connection's lock
		if c.Transport() == "polling" {
			st.PollingClientsCount++
		}
	}
	for _, n := range a.srv.Namespaces() {
		st.Namespaces = append(st.Namespaces, namespaceStats{n.Name(), n.SocketCount()})
	}
	if aggregate {
		now := time.Now().Truncate(time.Second).UnixMilli()
		for _, c := range []struct {
			typ string
			v   *atomic.Int64
		}{
			{"rawConnection", &a.stats.connections}, {"rawDisconnection", &a.stats.disconnections},
			{"packetsIn", &a.stats.packetsIn}, {"packetsOut", &a.stats.packetsOut},
			{"bytesIn", &a.stats.bytesIn}, {"bytesOut", &a.stats.bytesOut},
		} {
			if v := c.v.Swap(0); v != 0 {
				st.AggregatedEvents = append(st.AggregatedEvents, aggregatedEvent{now, c.typ, v})
			}
		}
	}
	return st
}

// ---------------------------------------------------------------- sockets

type handshake struct {
	Address string            `json:"address"`
	Headers map[string]string `json:"headers"`
	Query   map[string]any    `json:"query"`
	Secure  bool              `json:"secure"`
	XDomain bool              `json:"xdomain"`
	URL     string            `json:"url"`
	Issued  int64             `json:"issued"`
	Time    string            `json:"time"`
}

type serializedSocket struct {
	ID        string         `json:"id"`
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      map[string]any `json:"data"`
	Handshake handshake      `json:"handshake"`
	Rooms     []string       `json:"rooms"`
}

// serialize describes s as python-socketio's serialize_socket (and the
// Node package's serialize) do.
func (a *Admin) serialize(s *server.Socket) serializedSocket {
	rooms := s.Rooms()
	sort.Strings(rooms)
	out := serializedSocket{ID: s.ID(), ClientID: s.ClientID(), Transport: s.Transport(), Nsp: s.Namespace(),
		Data: map[string]any{}, Rooms: rooms,
		Handshake: handshake{Headers: map[string]string{}, Query: map[string]any{}}}
	a.mu.Lock()
	if t := a.sockets[s.ID()]; t != nil {
		out.Handshake.Issued = t.at.UnixMilli()
		out.Handshake.Time = timestamp(t.at)
	}
	a.mu.Unlock()
	r := s.Request()
	if r == nil {
		return out
	}
	hs := &out.Handshake
	for k, v := range r.Header {
		hs.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if r.Host != "" {
		hs.Headers["host"] = r.Host
	}
	for k, v := range r.URL.Query() {
		if len(v) == 1 {
			hs.Query[k] = v[0]
		} else {
			hs.Query[k] = v
		}
	}
	hs.Address = r.RemoteAddr
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		hs.Address = h
	}
	hs.Secure = r.TLS != nil
	hs.XDomain = r.Header.Get("Origin") != ""
	hs.URL = r.URL.RequestURI()
	return out
}

// allSockets lists the sockets of every namespace (all_sockets), at most
// Options.SocketsListBytes of JSON.
func (a *Admin) allSockets() []json.RawMessage {
	out := []json.RawMessage{}
	size, left := 0, 0
	for _, n := range a.srv.Namespaces() {
		for _, id := range n.Sockets() {
			s := n.Socket(id)
			if s == nil {
				continue
			}
			if size >= a.o.SocketsListBytes {
				left++
				continue
			}
			b, err := json.Marshal(a.serialize(s))
			if err != nil {
				continue
			}
			size += len(b)
			out = append(out, b)
		}
	}
	if left > 0 {
		a.log.Warn("admin: sockets left out of the list sent to an admin client (Options.SocketsListBytes)",
			"listed", len(out), "left", left, "bytes", size)
	}
	return out
}
