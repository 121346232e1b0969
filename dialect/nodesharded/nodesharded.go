// Package nodesharded implements the "node-sharded" dialect: the
// ClusterAdapter protocol of @socket.io/redis-adapter's sharded adapter
// (createShardedAdapter, Redis >= 7 sharded Pub/Sub) as socket.io-adapter
// 2.5 defines it.
//
// Channels, with the default key "socket.io" (every message is published
// and subscribed Sharded: SPUBLISH / SSUBSCRIBE):
//
//	socket.io#<nsp>#          the main channel: every request
//	socket.io#<nsp>#<room>#   broadcasts to exactly one room, in the
//	                          dynamic modes (see Mode)
//	socket.io#<nsp>#<uid>#    the responses addressed to the node uid
//
// A message is the object {type, data, uid, nsp} in that key order, written
// as JSON, or as a msgpack map (notepack.io) when a broadcast, an
// acknowledgement, a server-side emit or a fetch-sockets answer carries
// binary data. Decoding takes either: a first byte '{' means JSON.
//
// Servers are counted with PUBSUB SHARDNUMSUB on the main channel, summed
// over the masters of a cluster (ShardedServerCountChannel; the Redis bus's
// NumShardSub).
//
// The ClusterAdapter protocol has no request for socket ids only nor for
// the rooms of a namespace: those ops are refused (dialect.ErrUnsupported).
// Answers (ClientCount, SocketsReply, ServerSideEmitReply, AckReply) go to
// the response channel of their Host, the requester, as the adapter's
// publishResponse does; those that do not say whom they answer go to the
// main channel, where Node peers pass them to the waiting request as well.
//
// A server node (NewMember, for server.WithAdapter) subscribes to the main
// channel and its response channel (ServerSubscription), and in the
// dynamic modes to the channel of each room it holds (RoomSubscription).
package nodesharded

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// Message types of socket.io-adapter's ClusterAdapter.
const (
	typeInitialHeartbeat       = 1
	typeHeartbeat              = 2
	typeBroadcast              = 3
	typeSocketsJoin            = 4
	typeSocketsLeave           = 5
	typeDisconnectSockets      = 6
	typeFetchSockets           = 7
	typeFetchSocketsResponse   = 8
	typeServerSideEmit         = 9
	typeServerSideEmitResponse = 10
	typeBroadcastClientCount   = 11
	typeBroadcastAck           = 12
	typeAdapterClose           = 13
)

const (
	eventPacket          = 2    // socket.io EVENT packet type
	binaryEventPacket    = 5    // BINARY_EVENT
	socketIDLength       = 20   // what the adapter's looksLikeASocketId tests
	maxBinarySearchDepth = 1000 // as the encoders' nesting limit
	idBytes              = 8    // randomBytes(8) of uids and request ids
)

// EmitterUID is the uid ClusterAdapter reserves for emitters.
const EmitterUID = "emitter"

// Mode is the sharded adapter's subscriptionMode.
type Mode string

// The subscription modes of createShardedAdapter.
const (
	// Dynamic (the default): a broadcast to exactly one room that does
	// not look like a socket id (20 characters) goes to that room's
	// channel, which the servers holding the room subscribe to.
	Dynamic Mode = "dynamic"
	// Static: everything goes to the main channel.
	Static Mode = "static"
	// DynamicPrivate: as Dynamic, socket ids included.
	DynamicPrivate Mode = "dynamic-private"
)

// Options configure the dialect.
type Options struct {
	// Key is the channel prefix (the adapter's channelPrefix); default
	// "socket.io".
	Key string
	// UID identifies this process; default "emitter", the uid that
	// ClusterAdapter reserves for emitters (it never counts it as a node).
	// Node servers ignore the messages that carry their own uid only.
	UID string
	// Mode is the servers' subscriptionMode; default Dynamic. It must be
	// the servers' mode: it decides the channel of a broadcast to one room.
	Mode Mode
}

// Dialect is the node-sharded dialect. It is safe for concurrent use.
type Dialect struct {
	key, uid string
	mode     Mode
}

// New returns a node-sharded dialect; an unknown Mode is an error.
func New(o Options) (*Dialect, error) {
	d := &Dialect{key: o.Key, uid: o.UID, mode: o.Mode}
	if d.key == "" {
		d.key = "socket.io"
	}
	if d.uid == "" {
		d.uid = EmitterUID
	}
	switch d.mode {
	case "":
		d.mode = Dynamic
	case Dynamic, Static, DynamicPrivate:
	default:
		return nil, fmt.Errorf("node-sharded: unknown subscription mode %q (want dynamic, static or dynamic-private)", o.Mode)
	}
	return d, nil
}

// Name returns "node-sharded".
func (d *Dialect) Name() string { return "node-sharded" }

// Origin returns the uid.
func (d *Dialect) Origin() string { return d.uid }

// Key returns the channel prefix.
func (d *Dialect) Key() string { return d.key }

// Mode returns the subscription mode.
func (d *Dialect) Mode() Mode { return d.mode }

// NewAckID returns a random request id (16 hex characters, as
// randomBytes(8).toString("hex")).
func (d *Dialect) NewAckID() string { return randomID() }

func randomID() string {
	var b [idBytes]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MainChannel returns the main channel of namespace ns.
func (d *Dialect) MainChannel(ns string) string {
	return d.key + "#" + op.NamespaceOrRoot(ns) + "#"
}

// ResponseChannel returns the channel of the responses addressed to the
// node uid in namespace ns.
func (d *Dialect) ResponseChannel(ns, uid string) string { return d.MainChannel(ns) + uid + "#" }

// ShardedServerCountChannel returns the main channel of ns: its sharded
// subscriber count (PUBSUB SHARDNUMSUB, summed over the masters) is the
// number of servers.
func (d *Dialect) ShardedServerCountChannel(ns string) string { return d.MainChannel(ns) }

// NewMember returns a dialect with the same key and mode and a fresh
// random uid (16 hex characters, as the adapter's), for a server node
// (dialect.Member).
func (d *Dialect) NewMember() dialect.Dialect {
	return &Dialect{key: d.key, uid: randomID(), mode: d.mode}
}

// ServerSubscription is what a server node of namespace ns always
// subscribes to (sharded): the main channel, which counts it as a server,
// and its own response channel. In the dynamic modes it also subscribes
// to the channel of each room it holds (RoomSubscription).
func (d *Dialect) ServerSubscription(ns string) queue.Subscription {
	return queue.Subscription{Channels: []string{d.MainChannel(ns), d.ResponseChannel(ns, d.uid)}, Sharded: true}
}

// RoomSubscription returns the channel a server node holding room in ns
// subscribes to (sharded), and false when it needs none: in Static mode,
// and in Dynamic mode for a room that is the id of one of the node's own
// sockets (private, as the adapter's sids.has(room) test). Node peers
// subscribe on create-room and unsubscribe on delete-room.
func (d *Dialect) RoomSubscription(ns, room string, private bool) (queue.Subscription, bool) {
	if d.mode == Static || d.mode == Dynamic && private {
		return queue.Subscription{}, false
	}
	return queue.Subscription{Channels: []string{d.MainChannel(ns) + room + "#"}, Sharded: true}, true
}

// ReplySubscription returns this process's response channel in ns
// (sharded).
func (d *Dialect) ReplySubscription(ns string) queue.Subscription {
	return queue.Subscription{Channels: []string{d.ResponseChannel(ns, d.uid)}, Sharded: true}
}

// BroadcastChannel returns the channel of a broadcast without
// acknowledgement to rooms in ns, as computeChannel chooses it.
func (d *Dialect) BroadcastChannel(ns string, rooms []string) string {
	if len(rooms) == 1 && (d.mode == DynamicPrivate || d.mode == Dynamic && !looksLikeASocketID(rooms[0])) {
		return d.MainChannel(ns) + rooms[0] + "#"
	}
	return d.MainChannel(ns)
}

// looksLikeASocketID is the adapter's test: a room of 20 characters
// (JavaScript counts UTF-16 code units).
func looksLikeASocketID(room string) bool {
	if len(room) < socketIDLength || len(room) > 3*socketIDLength { // 1 to 3 bytes per UTF-16 unit

		return false
	}
	n := 0
	for _, r := range room {
		n += max(1, utf16.RuneLen(r))
	}
	return n == socketIDLength
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("node-sharded: %s: %w", fmt.Sprintf(format, a...), dialect.ErrUnsupported)
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("node-sharded: %s: %w", fmt.Sprintf(format, a...), dialect.ErrMalformed)
}

func (d *Dialect) origin(o string) string {
	if o == "" {
		return d.uid
	}
	return o
}

func opts(t op.Target, flags node.Map) node.Map {
	if flags == nil {
		flags = node.Map{}
	}
	return node.Map{{Key: "rooms", Value: node.RoomList(t.Rooms)}, {Key: "except", Value: node.RoomList(t.Except)}, {Key: "flags", Value: flags}}
}

// Encode turns o into the message Node's sharded adapter expects.
func (d *Dialect) Encode(o op.Op) ([]queue.Message, error) {
	switch x := o.(type) {
	case *op.Emit:
		return d.encodeEmit(x)
	case *op.Join:
		return d.message(d.MainChannel(x.Target.Namespace), typeSocketsJoin, x.Target.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "rooms", Value: node.RoomList(x.Rooms)}})
	case *op.Leave:
		return d.message(d.MainChannel(x.Target.Namespace), typeSocketsLeave, x.Target.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "rooms", Value: node.RoomList(x.Rooms)}})
	case *op.CloseRoom:
		// what io.in(room).socketsLeave(room) sends
		t := op.Target{Namespace: x.Namespace, Rooms: []string{x.Room}}
		return d.message(d.MainChannel(x.Namespace), typeSocketsLeave, x.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(t, nil)}, {Key: "rooms", Value: []any{x.Room}}})
	case *op.Disconnect:
		return d.message(d.MainChannel(x.Namespace), typeDisconnectSockets, x.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "close", Value: x.Close}})
	case *op.FetchSockets:
		if x.IDsOnly {
			return nil, unsupported("the ClusterAdapter protocol has no request for socket ids only (use a full fetch)")
		}
		return d.message(d.MainChannel(x.Namespace), typeFetchSockets, x.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "requestId", Value: x.RequestID}})
	case *op.ServerSideEmit:
		data := node.Map{}
		if x.RequestID != "" {
			data = append(data, node.Field{Key: "requestId", Value: x.RequestID})
		}
		data = append(data, node.Field{Key: "packet", Value: append([]any{x.Event}, x.Args...)})
		return d.message(d.MainChannel(x.Namespace), typeServerSideEmit, x.Namespace, x.Origin, data)
	case *op.ClientCount:
		return d.message(d.replyChannel(x.Namespace, x.Host), typeBroadcastClientCount, x.Namespace, x.Origin,
			node.Map{{Key: "requestId", Value: x.ID}, {Key: "clientCount", Value: x.Count}})
	case *op.AckReply:
		return d.message(d.replyChannel(x.Namespace, x.Host), typeBroadcastAck, x.Namespace, "",
			node.Map{{Key: "requestId", Value: x.ID}, {Key: "packet", Value: first(x.Args)}})
	case *op.ServerSideEmitReply:
		return d.message(d.replyChannel(x.Namespace, x.Host), typeServerSideEmitResponse, x.Namespace, x.Origin,
			node.Map{{Key: "requestId", Value: x.RequestID}, {Key: "packet", Value: first(x.Args)}})
	case *op.SocketsReply:
		if x.IDsOnly {
			return nil, unsupported("the ClusterAdapter protocol has no answer of socket ids only")
		}
		list := make([]any, len(x.Sockets))
		for i, s := range x.Sockets {
			hs := any(s.Handshake)
			if s.Handshake == nil {
				hs = map[string]any{}
			}
			data := s.Data
			if data == nil {
				data = map[string]any{}
			}
			list[i] = node.Map{{Key: "id", Value: s.ID}, {Key: "handshake", Value: hs}, {Key: "rooms", Value: node.RoomList(s.Rooms)}, {Key: "data", Value: data}}
		}
		return d.message(d.replyChannel(x.Namespace, x.Host), typeFetchSocketsResponse, x.Namespace, x.Origin,
			node.Map{{Key: "requestId", Value: x.RequestID}, {Key: "sockets", Value: list}})
	}
	return nil, unsupported("%s ops have no ClusterAdapter equivalent", o.Kind())
}

// replyChannel is the response channel of the requester host, or the
// main channel when the answer does not say whom it answers.
func (d *Dialect) replyChannel(ns, host string) string {
	if host == "" {
		return d.MainChannel(ns)
	}
	return d.ResponseChannel(ns, host)
}

// first is the one acknowledgement value the adapter forwards.
func first(args []any) any {
	if len(args) > 0 {
		return args[0]
	}
	return nil
}

func (d *Dialect) encodeEmit(x *op.Emit) ([]queue.Message, error) {
	if err := op.ValidateEvent(x.Event); err != nil {
		return nil, err
	}
	flags := node.Map{}
	if x.Volatile {
		flags = append(flags, node.Field{Key: "volatile", Value: true})
	}
	if x.Compress != nil {
		flags = append(flags, node.Field{Key: "compress", Value: *x.Compress})
	}
	packet := node.Map{{Key: "type", Value: eventPacket}, {Key: "data", Value: append([]any{x.Event}, x.Args...)}}
	if x.Ack == nil {
		return d.message(d.BroadcastChannel(x.Namespace, x.Rooms), typeBroadcast, x.Namespace, x.Origin,
			node.Map{{Key: "packet", Value: packet}, {Key: "opts", Value: opts(x.Target, flags)}})
	}
	// with an acknowledgement: always the main channel (serverCount
	// counts every server, not the room's)
	flags = append(flags, node.Field{Key: "timeout", Value: x.Ack.Timeout.Milliseconds()})
	return d.message(d.MainChannel(x.Namespace), typeBroadcast, x.Namespace, x.Origin,
		node.Map{{Key: "packet", Value: packet}, {Key: "requestId", Value: x.Ack.ID}, {Key: "opts", Value: opts(x.Target, flags)}})
}

// message writes {type, data, uid, nsp}: msgpack when data has binary
// (the adapter's rule, for the types that may carry it), JSON otherwise.
func (d *Dialect) message(channel string, typ int, ns, origin string, data node.Map) ([]queue.Message, error) {
	m := node.Map{{Key: "type", Value: typ}, {Key: "data", Value: data}, {Key: "uid", Value: d.origin(origin)}, {Key: "nsp", Value: op.NamespaceOrRoot(ns)}}
	var b []byte
	var err error
	if mayContainBinary(typ) && hasBinary(data, 0) {
		b, err = node.AppendMsgpack(nil, m)
	} else {
		b, err = node.AppendJSON(nil, m)
	}
	if err != nil {
		return nil, fmt.Errorf("node-sharded: encode message type %d: %w", typ, err)
	}
	return []queue.Message{{Channel: channel, Data: b, Sharded: true}}, nil
}

func mayContainBinary(typ int) bool {
	switch typ {
	case typeBroadcast, typeBroadcastAck, typeFetchSocketsResponse, typeServerSideEmit, typeServerSideEmitResponse:
		return true
	}
	return false
}

// hasBinary reports whether v holds a []byte (too deep a value counts as
// binary: the msgpack encoder then refuses it with a clear error).
func hasBinary(v any, depth int) bool {
	if depth > maxBinarySearchDepth {
		return true
	}
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	case node.Map:
		for _, e := range x {
			if hasBinary(e.Value, depth+1) {
				return true
			}
		}
	}
	return false
}

// Decode turns one message of a node-sharded channel into an op.
func (d *Dialect) Decode(m queue.Message) (op.Op, error) {
	if !strings.HasPrefix(m.Channel, d.key+"#") {
		return nil, unsupported("channel %q is not a %q channel", m.Channel, d.key)
	}
	msg, err := node.DecodeObject(m.Data)
	if err != nil {
		return nil, malformed("%v", err)
	}
	typ, ok := msg["type"].(int64)
	if !ok {
		return nil, malformed("message without a numeric type")
	}
	uid, _ := msg["uid"].(string)
	ns, ok := msg["nsp"].(string)
	if !ok {
		return nil, malformed("message without nsp")
	}
	ns = op.NamespaceOrRoot(ns)
	data, _ := msg["data"].(map[string]any)
	if data == nil && typ != typeInitialHeartbeat && typ != typeHeartbeat && typ != typeAdapterClose {
		return nil, malformed("message type %d without data", typ)
	}
	reqID, _ := data["requestId"].(string)
	needID := func() error {
		if reqID == "" {
			return malformed("message type %d without requestId", typ)
		}
		return nil
	}
	switch typ {
	case typeBroadcast:
		return decodeBroadcast(data, ns, uid, reqID)
	case typeSocketsJoin, typeSocketsLeave:
		t, err := target(data, ns)
		if err != nil {
			return nil, err
		}
		rooms, err := node.RoomNames(data["rooms"])
		if err != nil {
			return nil, malformed("rooms: %v", err)
		}
		if typ == typeSocketsJoin {
			return &op.Join{Target: t, Rooms: rooms, Origin: uid}, nil
		}
		return &op.Leave{Target: t, Rooms: rooms, Origin: uid}, nil
	case typeDisconnectSockets:
		t, err := target(data, ns)
		if err != nil {
			return nil, err
		}
		c, _ := data["close"].(bool)
		return &op.Disconnect{Target: t, Close: c, Origin: uid}, nil
	case typeFetchSockets:
		if err := needID(); err != nil {
			return nil, err
		}
		t, err := target(data, ns)
		if err != nil {
			return nil, err
		}
		return &op.FetchSockets{Target: t, RequestID: reqID, Origin: uid}, nil
	case typeServerSideEmit:
		packet, ok := data["packet"].([]any)
		if !ok || len(packet) == 0 {
			return nil, malformed("server-side emit without packet")
		}
		ev, ok := packet[0].(string)
		if !ok {
			return nil, malformed("server-side emit event is a %T", packet[0])
		}
		return &op.ServerSideEmit{Namespace: ns, Event: ev, Args: packet[1:], RequestID: reqID, Origin: uid}, nil
	case typeFetchSocketsResponse:
		if err := needID(); err != nil {
			return nil, err
		}
		return decodeSockets(data, ns, uid, reqID)
	case typeServerSideEmitResponse:
		if err := needID(); err != nil {
			return nil, err
		}
		return &op.ServerSideEmitReply{Namespace: ns, RequestID: reqID, Args: []any{data["packet"]}, Origin: uid}, nil
	case typeBroadcastClientCount:
		if err := needID(); err != nil {
			return nil, err
		}
		n, ok := node.Number(data["clientCount"])
		if !ok || n < 0 || n > 1<<53 {
			return nil, malformed("client count response without a clientCount")
		}
		return &op.ClientCount{Namespace: ns, ID: reqID, Count: int(n), Origin: uid}, nil
	case typeBroadcastAck:
		if err := needID(); err != nil {
			return nil, err
		}
		return &op.AckReply{Namespace: ns, Host: d.addressee(m.Channel, ns), ID: reqID, Args: []any{data["packet"]}}, nil
	}
	return nil, unsupported("message type %d", typ)
}

// addressee returns the uid of a response channel key#ns#uid#, or "".
func (d *Dialect) addressee(channel, ns string) string {
	rest, ok := strings.CutPrefix(channel, d.MainChannel(ns))
	if !ok || !strings.HasSuffix(rest, "#") {
		return ""
	}
	return strings.TrimSuffix(rest, "#")
}

func decodeBroadcast(data map[string]any, ns, uid, reqID string) (op.Op, error) {
	p, ok := data["packet"].(map[string]any)
	if !ok {
		return nil, malformed("broadcast without packet")
	}
	if t, ok := p["type"].(int64); !ok || (t != eventPacket && t != binaryEventPacket) {
		return nil, unsupported("packet type %v", p["type"])
	}
	args, ok := p["data"].([]any)
	if !ok || len(args) == 0 {
		return nil, malformed("packet data is not [event, ...]")
	}
	ev, ok := args[0].(string)
	if !ok {
		return nil, malformed("event name is a %T", args[0])
	}
	t, err := target(data, ns)
	if err != nil {
		return nil, err
	}
	e := &op.Emit{Target: t, Event: ev, Origin: uid}
	if len(args) > 1 {
		e.Args = args[1:]
	}
	o, _ := data["opts"].(map[string]any)
	f, _ := o["flags"].(map[string]any)
	e.Volatile, _ = f["volatile"].(bool)
	if c, ok := f["compress"].(bool); ok {
		e.Compress = &c
	}
	if reqID != "" {
		e.Ack = &op.AckRequest{ID: reqID}
		if ms, ok := node.Number(f["timeout"]); ok && ms >= 0 && ms < float64(1<<62/time.Millisecond) {
			e.Ack.Timeout = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return e, nil
}

func decodeSockets(data map[string]any, ns, uid, reqID string) (op.Op, error) {
	list, ok := data["sockets"].([]any)
	if !ok {
		return nil, malformed("fetch-sockets response without sockets")
	}
	rep := &op.SocketsReply{Namespace: ns, RequestID: reqID, Origin: uid, Sockets: make([]op.SocketInfo, 0, min(len(list), 64))}
	for _, e := range list {
		s, ok := e.(map[string]any)
		if !ok {
			return nil, malformed("a %T in sockets", e)
		}
		info, err := node.DecodeSocket(s)
		if err != nil {
			return nil, err
		}
		rep.Sockets = append(rep.Sockets, info)
	}
	return rep, nil
}

// target reads data.opts {rooms, except}.
func target(data map[string]any, ns string) (op.Target, error) {
	o, ok := data["opts"].(map[string]any)
	if !ok {
		return op.Target{Namespace: ns}, malformed("message without opts")
	}
	return node.DecodeTarget(o, ns)
}
