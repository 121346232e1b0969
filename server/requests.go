package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
)

// Answers to the requests of other servers (node dialect: SOCKETS,
// ALL_ROOMS, REMOTE_FETCH, SERVER_SIDE_EMIT). A server subscribed to the
// request channel is counted by its Node peers (PUBSUB NUMSUB) and must
// answer, or their fetchSockets(), allRooms() and serverSideEmit with
// acknowledgement wait until their timeout.

// OnServerSideEmit registers the handler of event when another server of
// the cluster emits it to this namespace with serverSideEmit (socket.io's
// io.serverSideEmit(event, ...args) and namespace.on(event, ...)). When the
// sender waits for acknowledgements, the handler's result is this
// server's answer (Node peers receive it as one value). As in socket.io,
// a server without a handler for the event does not answer. Works with
// the node dialect; python peers have no server-side events.
func (n *Namespace) OnServerSideEmit(event string, fn func(args []any) any) {
	n.s.serverEvents.Store(n.name+"\x00"+event, fn)
}

func (s *Server) serverEventHandler(ns, event string) func([]any) any {
	if v, ok := s.serverEvents.Load(ns + "\x00" + event); ok {
		return v.(func([]any) any)
	}
	return nil
}

// respond handles a request op of another server; false when o is none.
func (m *member) respond(o op.Op) bool {
	var answer func() op.Op
	switch x := o.(type) {
	case *op.FetchSockets:
		answer = func() op.Op {
			r := m.s.socketsReply(x)
			r.Host = x.Origin
			return r
		}
	case *op.AllRooms:
		answer = func() op.Op {
			return &op.RoomsReply{Namespace: x.Namespace, RequestID: x.RequestID, Rooms: m.s.allRooms(x.Namespace), Origin: m.self}
		}
	case *op.ServerSideEmit:
		h := m.s.serverEventHandler(op.NamespaceOrRoot(x.Namespace), x.Event)
		if h == nil {
			return true
		}
		answer = func() op.Op {
			r := h(x.Args)
			if x.RequestID == "" {
				return nil
			}
			return &op.ServerSideEmitReply{Namespace: x.Namespace, RequestID: x.RequestID, Args: []any{r}, Origin: m.self, Host: x.Origin}
		}
	default:
		return false
	}
	if m.inFlight.Add(1) > maxRemoteAckWaits {
		m.inFlight.Add(-1)
		m.s.log.Warn("server: too many requests of other servers in progress; dropped one", "kind", o.Kind(), "limit", maxRemoteAckWaits)
		return true
	}
	if !m.spawn(func() { // off the subscription's goroutine: handlers and publishing may wait
		defer m.inFlight.Add(-1)
		r := answer()
		if r == nil {
			return
		}
		msgs, err := m.d.Encode(r)
		if err != nil {
			m.s.log.Warn("server: cannot encode an answer to another server", "kind", r.Kind(), "err", err)
			return
		}
		m.publish(msgs)
	}) {
		m.inFlight.Add(-1)
	}
	return true
}

// socketsReply lists this server's sockets that r selects.
func (s *Server) socketsReply(r *op.FetchSockets) *op.SocketsReply {
	rep := &op.SocketsReply{Namespace: r.Namespace, RequestID: r.RequestID, IDsOnly: r.IDsOnly, Sockets: []op.SocketInfo{}}
	b := s.selection(r.Target)
	if b == nil {
		return rep
	}
	for _, sock := range b.targets() {
		info := op.SocketInfo{ID: sock.id}
		if !r.IDsOnly {
			info.Rooms = sock.Rooms()
			sort.Strings(info.Rooms)
			info.Data = map[string]any{}
			info.Handshake = sock.handshake()
		}
		rep.Sockets = append(rep.Sockets, info)
	}
	return rep
}

// allRooms lists the rooms of namespace ns on this server, socket ids
// included (as socket.io's adapter.rooms).
func (s *Server) allRooms(ns string) []string {
	out := []string{}
	n := s.existing(op.NamespaceOrRoot(ns))
	if n == nil {
		return out
	}
	n.mu.RLock()
	for r := range n.rooms {
		out = append(out, r)
	}
	for id := range n.sockets {
		if n.rooms[id] == nil {
			out = append(out, id)
		}
	}
	n.mu.RUnlock()
	sort.Strings(out)
	return out
}

// handshake is socket.io's socket.handshake for this socket, as plain
// data: headers (lower-case names), address, xdomain, secure, url, query
// and auth. (time and issued are not kept by this server.)
func (s *Socket) handshake() map[string]any {
	var auth any = map[string]any{}
	if len(s.auth) > 0 {
		var v any
		if json.Unmarshal(s.auth, &v) == nil && v != nil {
			auth = v
		}
	}
	hs := map[string]any{"auth": auth}
	r := s.Request()
	if r == nil {
		return hs
	}
	headers := map[string]any{}
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	query := map[string]any{}
	for k, v := range r.URL.Query() {
		if len(v) == 1 {
			query[k] = v[0]
		} else {
			l := make([]any, len(v))
			for i, e := range v {
				l[i] = e
			}
			query[k] = l
		}
	}
	addr := r.RemoteAddr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	hs["headers"] = headers
	hs["address"] = addr
	hs["xdomain"] = r.Header.Get("Origin") != ""
	hs["secure"] = r.TLS != nil
	hs["url"] = r.URL.RequestURI()
	hs["query"] = query
	return hs
}

func answerID(o op.Op) string {
	switch x := o.(type) {
	case *op.SocketsReply:
		return x.RequestID
	case *op.RoomsReply:
		return x.RequestID
	case *op.ServerSideEmitReply:
		return x.RequestID
	}
	return ""
}

// ask publishes request o, whose id is id, to the other servers of
// namespace ns and returns their answers: all of them, or those that
// arrived when ctx ended (with an error wrapping ErrAckTimeout when the
// number of servers is known).
func (m *member) ask(ctx context.Context, ns, id string, o op.Op) ([]op.Op, error) {
	msgs, err := m.d.Encode(o)
	if err != nil {
		return nil, fmt.Errorf("server: %s across the cluster (%s dialect): %w", o.Kind(), m.d.Name(), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultAckTimeout)
		defer cancel()
	}
	expected := m.remoteServers(ctx, ns)
	w := &ackWait{notify: make(chan struct{}, 1)}
	m.mu.Lock()
	m.waits[id] = w
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.waits, id)
		m.mu.Unlock()
	}()
	if err := m.pub.sync(ctx, msgs); err != nil {
		return nil, err
	}
	for {
		w.mu.Lock()
		answers := w.answers
		w.mu.Unlock()
		if expected >= 0 && len(answers) >= expected {
			return answers, nil
		}
		select {
		case <-w.notify:
		case <-ctx.Done():
			if expected < 0 {
				return answers, nil
			}
			return answers, fmt.Errorf("server: %d of %d servers answered: %w: %v", len(answers), expected, ErrAckTimeout, ctx.Err())
		case <-m.ctx.Done():
			return answers, errors.New("server: shut down")
		}
	}
}

// SocketInfo describes a socket of any server of the cluster: its id,
// rooms, data and handshake (socket.io's RemoteSocket).
type SocketInfo = op.SocketInfo

// FetchSockets returns the selected sockets of every server of the
// cluster (socket.io's fetchSockets), this server's first. Without
// adapter it lists this server's sockets. With the python dialects it
// returns an error wrapping dialect.ErrUnsupported: python peers cannot
// be asked. When ctx ends before every server answered, the sockets known
// so far come with an error wrapping ErrAckTimeout.
func (b *Broadcast) FetchSockets(ctx context.Context) ([]SocketInfo, error) {
	local := b.n.s.socketsReply(&op.FetchSockets{Target: b.target()}).Sockets
	m := b.n.s.member
	if m == nil || !m.publishing || b.local {
		return local, nil
	}
	id := m.d.NewAckID()
	answers, err := m.ask(ctx, b.n.name, id, &op.FetchSockets{Target: b.target(), RequestID: id})
	if answers == nil && err != nil {
		return nil, err
	}
	for _, a := range answers {
		if r, ok := a.(*op.SocketsReply); ok {
			local = append(local, r.Sockets...)
		}
	}
	return local, err
}

// FetchSockets returns the sockets of the namespace on every server; see
// Broadcast.FetchSockets.
func (n *Namespace) FetchSockets(ctx context.Context) ([]SocketInfo, error) {
	return (&Broadcast{n: n}).FetchSockets(ctx)
}

// AllRooms returns the rooms of the namespace on every server of the
// cluster (socket ids included, as socket.io's adapter.allRooms), sorted
// and without duplicates. Errors as for FetchSockets.
func (n *Namespace) AllRooms(ctx context.Context) ([]string, error) {
	rooms := n.s.allRooms(n.name)
	var err error
	if m := n.s.member; m != nil && m.publishing {
		id := m.d.NewAckID()
		var answers []op.Op
		answers, err = m.ask(ctx, n.name, id, &op.AllRooms{Namespace: n.name, RequestID: id})
		if answers == nil && err != nil {
			return nil, err
		}
		for _, a := range answers {
			if r, ok := a.(*op.RoomsReply); ok {
				rooms = append(rooms, r.Rooms...)
			}
		}
	}
	sort.Strings(rooms)
	return slices.Compact(rooms), err
}

// ServerSideEmit emits event to the other servers of the cluster
// (socket.io's serverSideEmit); their OnServerSideEmit handlers receive
// args. Without adapter there is nobody to tell and it returns nil; with
// the python dialects, an error wrapping dialect.ErrUnsupported.
func (n *Namespace) ServerSideEmit(event string, args ...any) error {
	m := n.s.member
	if m == nil || !m.publishing {
		return nil
	}
	plain, err := op.NormalizeArgs(args)
	if err != nil {
		return fmt.Errorf("server: server-side emit %q: %w", event, err)
	}
	return m.send(&op.ServerSideEmit{Namespace: n.name, Event: event, Args: plain}, nil, true)
}

// ServerSideEmitWithAck emits event to the other servers and returns the
// answer of each server whose handler answered (socket.io's
// serverSideEmitWithAck). As there, every other server is expected to
// answer; when ctx ends first, the answers so far come with an error
// wrapping ErrAckTimeout.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	m := n.s.member
	if m == nil || !m.publishing {
		return nil, nil
	}
	plain, err := op.NormalizeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("server: server-side emit %q: %w", event, err)
	}
	id := m.d.NewAckID()
	answers, err := m.ask(ctx, n.name, id, &op.ServerSideEmit{Namespace: n.name, Event: event, Args: plain, RequestID: id})
	var out []any
	for _, a := range answers {
		if r, ok := a.(*op.ServerSideEmitReply); ok && len(r.Args) > 0 {
			out = append(out, r.Args[0])
		}
	}
	return out, err
}

// ServerCount returns how many servers the cluster has (socket.io's
// serverCount): 1 without adapter; with the node dialect, the subscribers
// of the request channel (Redis PUBSUB NUMSUB); with node-sharded, the
// sharded subscribers of the main channel (PUBSUB SHARDNUMSUB, summed
// over the masters of a cluster). Other dialects and buses cannot count:
// an error wrapping dialect.ErrUnsupported.
func (s *Server) ServerCount(ctx context.Context) (int, error) {
	m := s.member
	if m == nil {
		return 1, nil
	}
	n, ok, err := m.countServers(ctx, "/")
	if !ok {
		return 0, fmt.Errorf("server: server count with the %s dialect on this bus: %w", m.d.Name(), dialect.ErrUnsupported)
	}
	if err != nil {
		return 0, fmt.Errorf("server: server count: %w", err)
	}
	return n, nil
}
