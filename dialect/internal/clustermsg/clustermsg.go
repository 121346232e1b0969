// Package clustermsg is the message layer of socket.io-adapter 2.5's
// ClusterAdapter, which Node's sharded Redis adapter (dialect/nodesharded)
// and Redis Streams adapter (dialect/nodestreams) share: the message
// types, the ops written as {type, data, uid, nsp}, and such a message,
// once decoded into plain data, read back as an op. Channels, streams and
// byte encodings are the dialects'.
//
// Errors wrap dialect.ErrUnsupported (ops and messages the protocol has
// no room for) or dialect.ErrMalformed (messages that are not what the
// protocol writes); they carry no dialect name: the dialects add it.
package clustermsg

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
)

// Message types of socket.io-adapter's ClusterAdapter.
const (
	TypeInitialHeartbeat       = 1
	TypeHeartbeat              = 2
	TypeBroadcast              = 3
	TypeSocketsJoin            = 4
	TypeSocketsLeave           = 5
	TypeDisconnectSockets      = 6
	TypeFetchSockets           = 7
	TypeFetchSocketsResponse   = 8
	TypeServerSideEmit         = 9
	TypeServerSideEmitResponse = 10
	TypeBroadcastClientCount   = 11
	TypeBroadcastAck           = 12
	TypeAdapterClose           = 13
)

const (
	eventPacket       = 2 // socket.io EVENT packet type
	binaryEventPacket = 5 // BINARY_EVENT
	idBytes           = 8 // randomBytes(8) of uids and request ids
)

// EmitterUID is the uid ClusterAdapter reserves for emitters.
const EmitterUID = "emitter"

// NewID returns a random uid or request id: 16 hex characters, as
// randomBytes(8).toString("hex").
func NewID() string {
	var b [idBytes]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Channels names the Pub/Sub channels of the adapters whose channel prefix
// is Prefix (channelPrefix). The dialects embed it.
type Channels struct{ Prefix string }

// Key returns the channel prefix.
func (c Channels) Key() string { return c.Prefix }

// MainChannel returns the main channel of namespace ns: Prefix#ns#.
func (c Channels) MainChannel(ns string) string {
	return c.Prefix + "#" + op.NamespaceOrRoot(ns) + "#"
}

// ResponseChannel returns the channel of the responses addressed to the
// node uid in namespace ns: Prefix#ns#uid#.
func (c Channels) ResponseChannel(ns, uid string) string { return c.MainChannel(ns) + uid + "#" }

// ReplyChannel returns the response channel of the requester host, or
// the main channel when the answer does not say whom it answers.
func (c Channels) ReplyChannel(ns, host string) string {
	if host == "" {
		return c.MainChannel(ns)
	}
	return c.ResponseChannel(ns, host)
}

// Addressee returns the uid a response channel Prefix#ns#uid# addresses,
// or "".
func (c Channels) Addressee(channel, ns string) string {
	rest, ok := strings.CutPrefix(channel, c.MainChannel(ns))
	if !ok || !strings.HasSuffix(rest, "#") {
		return ""
	}
	return strings.TrimSuffix(rest, "#")
}

// Owns reports whether channel has the prefix's form (Prefix#...).
func (c Channels) Owns(channel string) bool { return strings.HasPrefix(channel, c.Prefix+"#") }

// Message is one ClusterAdapter message before its encoding.
type Message struct {
	Type int
	Data node.Map
	UID  string
	Nsp  string
	// To is the requester an answer is addressed to (its uid), for the
	// response types; "" when the answer does not say (Node peers then
	// read it from the main channel).
	To string
}

// Object is the message as the adapter writes it: {type, data, uid, nsp}.
func (m *Message) Object() node.Map {
	return node.Map{{Key: "type", Value: m.Type}, {Key: "data", Value: m.Data}, {Key: "uid", Value: m.UID}, {Key: "nsp", Value: m.Nsp}}
}

// IsResponse reports whether m answers a request (types 8, 10, 11, 12).
func (m *Message) IsResponse() bool {
	switch m.Type {
	case TypeFetchSocketsResponse, TypeServerSideEmitResponse, TypeBroadcastClientCount, TypeBroadcastAck:
		return true
	}
	return false
}

// WithAck reports whether m is a broadcast that asks for acknowledgements.
func (m *Message) WithAck() bool {
	if m.Type != TypeBroadcast {
		return false
	}
	for _, f := range m.Data {
		if f.Key == "requestId" {
			return true
		}
	}
	return false
}

// MayContainBinary reports whether the adapters write m as msgpack when
// its data holds binary (the types whose data may carry it).
func (m *Message) MayContainBinary() bool {
	switch m.Type {
	case TypeBroadcast, TypeBroadcastAck, TypeFetchSocketsResponse, TypeServerSideEmit, TypeServerSideEmitResponse:
		return true
	}
	return false
}

// HasBinary reports whether v (plain data and node.Maps) holds a []byte
// (too deep a value counts as binary: the msgpack encoder then refuses it
// with a clear error).
func HasBinary(v any) bool {
	return op.HasBinaryIn(v, func(x any) ([]any, bool) {
		m, ok := x.(node.Map)
		if !ok {
			return nil, false
		}
		values := make([]any, len(m))
		for i, f := range m {
			values[i] = f.Value
		}
		return values, true
	})
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), dialect.ErrUnsupported)
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), dialect.ErrMalformed)
}

func opts(t op.Target, flags node.Map) node.Map {
	if flags == nil {
		flags = node.Map{}
	}
	return node.Map{{Key: "rooms", Value: node.RoomList(t.Rooms)}, {Key: "except", Value: node.RoomList(t.Except)}, {Key: "flags", Value: flags}}
}

// FromOp writes o as the ClusterAdapter message that does it, with uid as
// its uid when o has no Origin. Ops the protocol cannot express (AllRooms,
// the ids-only fetch, CloseRoom is written as the leave of the room)
// are refused.
func FromOp(o op.Op, uid string) (Message, error) {
	msg := func(typ int, ns, origin string, data node.Map) (Message, error) {
		if origin == "" {
			origin = uid
		}
		return Message{Type: typ, Data: data, UID: origin, Nsp: op.NamespaceOrRoot(ns)}, nil
	}
	answer := func(typ int, ns, origin, to string, data node.Map) (Message, error) {
		m, err := msg(typ, ns, origin, data)
		m.To = to
		return m, err
	}
	switch x := o.(type) {
	case *op.Emit:
		return fromEmit(x, msg)
	case *op.Join:
		return msg(TypeSocketsJoin, x.Target.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "rooms", Value: node.RoomList(x.Rooms)}})
	case *op.Leave:
		return msg(TypeSocketsLeave, x.Target.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "rooms", Value: node.RoomList(x.Rooms)}})
	case *op.CloseRoom:
		// what io.in(room).socketsLeave(room) sends
		t := op.Target{Namespace: x.Namespace, Rooms: []string{x.Room}}
		return msg(TypeSocketsLeave, x.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(t, nil)}, {Key: "rooms", Value: []any{x.Room}}})
	case *op.Disconnect:
		return msg(TypeDisconnectSockets, x.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "close", Value: x.Close}})
	case *op.FetchSockets:
		if x.IDsOnly {
			return Message{}, unsupported("the ClusterAdapter protocol has no request for socket ids only (use a full fetch)")
		}
		return msg(TypeFetchSockets, x.Namespace, x.Origin,
			node.Map{{Key: "opts", Value: opts(x.Target, nil)}, {Key: "requestId", Value: x.RequestID}})
	case *op.ServerSideEmit:
		data := node.Map{}
		if x.RequestID != "" {
			data = append(data, node.Field{Key: "requestId", Value: x.RequestID})
		}
		data = append(data, node.Field{Key: "packet", Value: append([]any{x.Event}, x.Args...)})
		return msg(TypeServerSideEmit, x.Namespace, x.Origin, data)
	case *op.ClientCount:
		return answer(TypeBroadcastClientCount, x.Namespace, x.Origin, x.Host,
			node.Map{{Key: "requestId", Value: x.ID}, {Key: "clientCount", Value: x.Count}})
	case *op.AckReply:
		return answer(TypeBroadcastAck, x.Namespace, "", x.Host,
			node.Map{{Key: "requestId", Value: x.ID}, {Key: "packet", Value: first(x.Args)}})
	case *op.ServerSideEmitReply:
		return answer(TypeServerSideEmitResponse, x.Namespace, x.Origin, x.Host,
			node.Map{{Key: "requestId", Value: x.RequestID}, {Key: "packet", Value: first(x.Args)}})
	case *op.SocketsReply:
		if x.IDsOnly {
			return Message{}, unsupported("the ClusterAdapter protocol has no answer of socket ids only")
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
		return answer(TypeFetchSocketsResponse, x.Namespace, x.Origin, x.Host,
			node.Map{{Key: "requestId", Value: x.RequestID}, {Key: "sockets", Value: list}})
	}
	return Message{}, unsupported("%s ops have no ClusterAdapter equivalent", o.Kind())
}

// first is the one acknowledgement value the adapter forwards.
func first(args []any) any {
	if len(args) > 0 {
		return args[0]
	}
	return nil
}

func fromEmit(x *op.Emit, msg func(int, string, string, node.Map) (Message, error)) (Message, error) {
	if err := op.ValidateEvent(x.Event); err != nil {
		return Message{}, err
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
		return msg(TypeBroadcast, x.Namespace, x.Origin, node.Map{{Key: "packet", Value: packet}, {Key: "opts", Value: opts(x.Target, flags)}})
	}
	flags = append(flags, node.Field{Key: "timeout", Value: x.Ack.Timeout.Milliseconds()})
	return msg(TypeBroadcast, x.Namespace, x.Origin,
		node.Map{{Key: "packet", Value: packet}, {Key: "requestId", Value: x.Ack.ID}, {Key: "opts", Value: opts(x.Target, flags)}})
}

// Decode reads a received message {type, data, uid, nsp}, decoded into
// plain data, as an op; to is the uid its channel addresses (a response
// channel), "" otherwise: the Host of the answers. Heartbeats and ADAPTER_CLOSE, which these
// adapters do not send, are refused as unsupported.
func Decode(msg map[string]any, to string) (op.Op, error) {
	typ, ok := msg["type"].(int64)
	if !ok {
		return nil, malformed("message without a numeric type")
	}
	uid, _ := msg["uid"].(string)
	ns, ok := msg["nsp"].(string)
	if !ok {
		return nil, malformed("message without nsp")
	}
	data, _ := msg["data"].(map[string]any)
	return DecodeData(typ, data, uid, ns, to)
}

// DecodeData is Decode for a message whose parts were read apart (the
// fields of a stream entry).
func DecodeData(typ int64, data map[string]any, uid, ns, to string) (op.Op, error) {
	ns = op.NamespaceOrRoot(ns)
	if data == nil && typ != TypeInitialHeartbeat && typ != TypeHeartbeat && typ != TypeAdapterClose {
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
	case TypeBroadcast:
		return decodeBroadcast(data, ns, uid, reqID)
	case TypeSocketsJoin, TypeSocketsLeave:
		t, err := target(data, ns)
		if err != nil {
			return nil, err
		}
		rooms, err := node.RoomNames(data["rooms"])
		if err != nil {
			return nil, malformed("rooms: %v", err)
		}
		if typ == TypeSocketsJoin {
			return &op.Join{Target: t, Rooms: rooms, Origin: uid}, nil
		}
		return &op.Leave{Target: t, Rooms: rooms, Origin: uid}, nil
	case TypeDisconnectSockets:
		t, err := target(data, ns)
		if err != nil {
			return nil, err
		}
		c, _ := data["close"].(bool)
		return &op.Disconnect{Target: t, Close: c, Origin: uid}, nil
	case TypeFetchSockets:
		if err := needID(); err != nil {
			return nil, err
		}
		t, err := target(data, ns)
		if err != nil {
			return nil, err
		}
		return &op.FetchSockets{Target: t, RequestID: reqID, Origin: uid}, nil
	case TypeServerSideEmit:
		packet, ok := data["packet"].([]any)
		if !ok || len(packet) == 0 {
			return nil, malformed("server-side emit without packet")
		}
		ev, ok := packet[0].(string)
		if !ok {
			return nil, malformed("server-side emit event is a %T", packet[0])
		}
		return &op.ServerSideEmit{Namespace: ns, Event: ev, Args: packet[1:], RequestID: reqID, Origin: uid}, nil
	case TypeFetchSocketsResponse:
		if err := needID(); err != nil {
			return nil, err
		}
		return decodeSockets(data, ns, uid, reqID, to)
	case TypeServerSideEmitResponse:
		if err := needID(); err != nil {
			return nil, err
		}
		return &op.ServerSideEmitReply{Namespace: ns, RequestID: reqID, Args: []any{data["packet"]}, Origin: uid, Host: to}, nil
	case TypeBroadcastClientCount:
		if err := needID(); err != nil {
			return nil, err
		}
		n, ok := node.Number(data["clientCount"])
		if !ok || n < 0 || n > 1<<53 {
			return nil, malformed("client count response without a clientCount")
		}
		return &op.ClientCount{Namespace: ns, ID: reqID, Count: int(n), Origin: uid, Host: to}, nil
	case TypeBroadcastAck:
		if err := needID(); err != nil {
			return nil, err
		}
		return &op.AckReply{Namespace: ns, Host: to, ID: reqID, Args: []any{data["packet"]}}, nil
	}
	return nil, unsupported("message type %d", typ)
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

func decodeSockets(data map[string]any, ns, uid, reqID, to string) (op.Op, error) {
	list, ok := data["sockets"].([]any)
	if !ok {
		return nil, malformed("fetch-sockets response without sockets")
	}
	rep := &op.SocketsReply{Namespace: ns, RequestID: reqID, Origin: uid, Host: to, Sockets: make([]op.SocketInfo, 0, min(len(list), 64))}
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
