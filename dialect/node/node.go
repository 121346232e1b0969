// Package node implements the message-queue dialect of Node.js socket.io
// clusters: @socket.io/redis-adapter 8 (the classic adapter: PUBLISH and
// PSUBSCRIBE) and @socket.io/redis-emitter 5.
//
// Channels, with the default key "socket.io":
//
//	socket.io#<nsp>#               broadcasts to a namespace (msgpack)
//	socket.io#<nsp>#<room>#        broadcasts to exactly one room (msgpack)
//	socket.io-request#<nsp>#       requests: join, leave, disconnect,
//	                               server-side emit (JSON), broadcast with ack (msgpack)
//	socket.io-response#<nsp>#      responses: client counts (JSON), acks (msgpack)
//
// Node servers count each other with PUBSUB NUMSUB on the request channel
// (ServerCountChannel); the emitter uses it to know how many servers answer
// a broadcast with acknowledgements.
//
// Limits of the peers: numbers are JavaScript numbers (integers beyond 64
// bits are refused); a client acknowledgement carries its first argument
// only (socket.io forwards one value per client through the adapter).
package node

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/bufpool"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// Request and response types of @socket.io/redis-adapter.
const (
	reqSockets          = 0
	reqAllRooms         = 1
	reqRemoteJoin       = 2
	reqRemoteLeave      = 3
	reqRemoteDisconnect = 4
	reqRemoteFetch      = 5
	reqServerSideEmit   = 6
	reqBroadcast        = 7
	resClientCount      = 8
	resBroadcastAck     = 9
)

// EmitterUID is the uid @socket.io/redis-emitter puts on its messages.
const EmitterUID = "emitter"

// Options configure the node dialect.
type Options struct {
	// Key is the channel prefix (the adapter's and emitter's "key"
	// option); default "socket.io".
	Key string
	// UID identifies this process; default "emitter", as
	// @socket.io/redis-emitter does. Node servers ignore broadcasts that
	// carry their own uid only.
	UID string
}

// Dialect is the node dialect. It is safe for concurrent use.
type Dialect struct {
	key      string
	uid      string
	chans    sync.Map // chanKey -> *chanEntry
	nchans   atomic.Int64
	lastChan atomic.Pointer[chanEntry] // the channel of the last BroadcastChannel call
}

// New returns a node dialect.
func New(o Options) *Dialect {
	d := &Dialect{key: o.Key, uid: o.UID}
	if d.key == "" {
		d.key = "socket.io"
	}
	if d.uid == "" {
		d.uid = EmitterUID
	}
	return d
}

// Name returns "node".
func (d *Dialect) Name() string { return "node" }

// Origin returns the uid.
func (d *Dialect) Origin() string { return d.uid }

// NewMember returns a node dialect with the same key and a fresh random
// uid, for a server node (dialect.Member).
func (d *Dialect) NewMember() dialect.Dialect { return New(Options{Key: d.key, UID: uid2(12)}) }

// Key returns the channel prefix.
func (d *Dialect) Key() string { return d.key }

// NewAckID returns a random request id.
func (d *Dialect) NewAckID() string { return uid2(12) }

// BroadcastChannel returns the channel of a broadcast to rooms in ns.
func (d *Dialect) BroadcastChannel(ns string, rooms []string) string {
	room, one := "", len(rooms) == 1
	if one {
		room = rooms[0]
	}
	key := chanKey{ns, room, one}
	// consecutive emits mostly go to one channel: check the last first,
	// which costs string comparisons instead of hashing the key
	if last := d.lastChan.Load(); last != nil && last.chanKey == key {
		return last.channel
	}
	var e *chanEntry
	if v, ok := d.chans.Load(key); ok {
		e = v.(*chanEntry)
	} else {
		c := d.key + "#" + ns + "#"
		if one {
			c += room + "#"
		}
		e = &chanEntry{key, c}
		if d.nchans.Add(1) <= maxCachedChannels { // bounded: sids make endless room names
			d.chans.Store(key, e)
		}
	}
	d.lastChan.Store(e)
	return e.channel
}

type chanKey struct {
	ns, room string
	one      bool
}

type chanEntry struct {
	chanKey
	channel string
}

// maxCachedChannels bounds the broadcast channel names kept per dialect.
const maxCachedChannels = 4096

func (d *Dialect) requestChannel(ns string) string  { return d.key + "-request#" + ns + "#" }
func (d *Dialect) responseChannel(ns string) string { return d.key + "-response#" + ns + "#" }

// ServerCountChannel returns the request channel of ns: its subscriber
// count (PUBSUB NUMSUB) is the number of servers.
func (d *Dialect) ServerCountChannel(ns string) string { return d.requestChannel(ns) }

// ReplySubscription returns the response channels of ns: the shared one
// and the one servers use with publishOnSpecificResponseChannel.
func (d *Dialect) ReplySubscription(ns string) queue.Subscription {
	ns = op.NamespaceOrRoot(ns)
	return queue.Subscription{Channels: []string{d.responseChannel(ns), d.responseChannel(ns) + d.uid + "#"}}
}

// ServerSubscription is what a server node of namespace ns subscribes to,
// as @socket.io/redis-adapter does.
func (d *Dialect) ServerSubscription(ns string) queue.Subscription {
	ns = op.NamespaceOrRoot(ns)
	return queue.Subscription{
		Patterns: []string{queue.EscapeGlob(d.key+"#"+ns+"#") + "*"},
		Channels: []string{d.requestChannel(ns), d.responseChannel(ns), d.responseChannel(ns) + d.uid + "#"},
	}
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("node: %s: %w", fmt.Sprintf(format, a...), dialect.ErrUnsupported)
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("node: %s: %w", fmt.Sprintf(format, a...), dialect.ErrMalformed)
}

func strList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (d *Dialect) origin(o string) string {
	if o == "" {
		return d.uid
	}
	return o
}

// Encode turns o into the message Node peers expect.
func (d *Dialect) Encode(o op.Op) ([]queue.Message, error) {
	switch x := o.(type) {
	case *op.Emit:
		return d.encodeEmit(x)
	case *op.Join:
		return d.request(x.Target.Namespace, omap{{"type", reqRemoteJoin}, {"opts", opts(x.Target)}, {"rooms", strList(x.Rooms)}}, x.Origin)
	case *op.Leave:
		return d.request(x.Target.Namespace, omap{{"type", reqRemoteLeave}, {"opts", opts(x.Target)}, {"rooms", strList(x.Rooms)}}, x.Origin)
	case *op.Disconnect:
		return d.request(x.Namespace, omap{{"type", reqRemoteDisconnect}, {"opts", opts(x.Target)}, {"close", x.Close}}, x.Origin)
	case *op.CloseRoom:
		// what io.in(room).socketsLeave(room) sends
		t := op.Target{Namespace: x.Namespace, Rooms: []string{x.Room}}
		return d.request(x.Namespace, omap{{"type", reqRemoteLeave}, {"opts", opts(t)}, {"rooms", []any{x.Room}}}, x.Origin)
	case *op.ServerSideEmit:
		data := append([]any{x.Event}, x.Args...)
		m := omap{{"uid", d.origin(x.Origin)}}
		if x.RequestID != "" {
			m = append(m, kv{"requestId", x.RequestID})
		}
		m = append(m, kv{"type", reqServerSideEmit}, kv{"data", data})
		return d.jsonMessage(d.requestChannel(op.NamespaceOrRoot(x.Namespace)), m)
	case *op.ClientCount:
		return d.jsonMessage(d.responseChannel(op.NamespaceOrRoot(x.Namespace)),
			omap{{"type", resClientCount}, {"requestId", x.ID}, {"clientCount", x.Count}})
	case *op.AckReply:
		var packet any
		if len(x.Args) > 0 {
			packet = x.Args[0]
		}
		b, err := appendMsgpack(nil, omap{{"type", resBroadcastAck}, {"requestId", x.ID}, {"packet", packet}}, 0)
		if err != nil {
			return nil, err
		}
		return []queue.Message{{Channel: d.responseChannel(op.NamespaceOrRoot(x.Namespace)), Data: b}}, nil
	}
	if msgs, ok, err := d.encodeExchange(o); ok {
		return msgs, err
	}
	return nil, unsupported("%s ops have no node equivalent", o.Kind())
}

func opts(t op.Target) omap {
	return omap{{"rooms", strList(t.Rooms)}, {"except", strList(t.Except)}}
}

// request encodes a JSON request; @socket.io/redis-emitter writes no uid on
// join/leave/disconnect, a server node does.
func (d *Dialect) request(ns string, m omap, origin string) ([]queue.Message, error) {
	if u := d.origin(origin); u != EmitterUID {
		m = append(omap{{"uid", u}}, m...)
	}
	return d.jsonMessage(d.requestChannel(op.NamespaceOrRoot(ns)), m)
}

func (d *Dialect) jsonMessage(channel string, m omap) ([]queue.Message, error) {
	b, err := appendJSON(nil, m, 0)
	if err != nil {
		return nil, err
	}
	return []queue.Message{{Channel: channel, Data: b, ContentType: "application/json"}}, nil
}

func (d *Dialect) encodeEmit(x *op.Emit) ([]queue.Message, error) {
	if err := op.ValidateEvent(x.Event); err != nil {
		return nil, err
	}
	ns := op.NamespaceOrRoot(x.Namespace)
	if x.Ack != nil {
		flags := omap{}
		if x.Volatile {
			flags = append(flags, kv{"volatile", true})
		}
		if x.Compress != nil {
			flags = append(flags, kv{"compress", *x.Compress})
		}
		flags = append(flags, kv{"timeout", x.Ack.Timeout.Milliseconds()})
		packet := omap{{"type", 2}, {"data", append([]any{x.Event}, x.Args...)}, {"nsp", ns}}
		m := omap{{"uid", d.origin(x.Origin)}, {"requestId", x.Ack.ID}, {"type", reqBroadcast}, {"packet", packet},
			{"opts", omap{{"rooms", strList(x.Rooms)}, {"except", strList(x.Except)}, {"flags", flags}}}}
		b, err := appendMsgpack(nil, m, 0)
		if err != nil {
			return nil, err
		}
		return []queue.Message{{Channel: d.requestChannel(ns), Data: b}}, nil
	}
	b, err := d.appendEmit(bufpool.Get(64+len(x.Event)+len(ns)+16*len(x.Args)), x, ns, nil)
	if err != nil {
		return nil, err
	}
	return []queue.Message{{Channel: d.BroadcastChannel(ns, x.Rooms), Data: b}}, nil
}

// AppendEmit appends the payload of an emit without acknowledgement to
// dst (dialect.EmitAppender); arguments in JSON text are transcoded to
// msgpack as they are read.
func (d *Dialect) AppendEmit(dst []byte, m *queue.Message, x *op.Emit, argsJSON []byte) ([]byte, error) {
	if x.Ack != nil {
		return dst, errors.New("node: AppendEmit of an emit with acknowledgement")
	}
	if err := op.ValidateEvent(x.Event); err != nil {
		return dst, err
	}
	start := len(dst)
	ns := op.NamespaceOrRoot(x.Namespace)
	out, err := d.appendEmit(dst, x, ns, argsJSON)
	if err != nil {
		return dst[:start], err
	}
	*m = queue.Message{Channel: d.BroadcastChannel(ns, x.Rooms)}
	return out, nil
}

// appendEmit writes [uid, {type, data, nsp}, {rooms, flags, except}] (the
// emitter's key order) directly: this is the hot path of every emit.
func (d *Dialect) appendEmit(b []byte, x *op.Emit, ns string, argsJSON []byte) ([]byte, error) {
	b = append(b, 0x93)
	b = appendStr(b, d.origin(x.Origin))
	b = append(b, 0x83, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa4, 'd', 'a', 't', 'a')
	var err error
	if argsJSON != nil {
		if b, err = appendJSONArgs(b, x.Event, argsJSON); err != nil {
			return b, err
		}
	} else {
		b = appendLen(b, 1+len(x.Args), 0x90, 0xdc, 0xdd)
		b = appendStr(b, x.Event)
		for _, a := range x.Args {
			if b, err = appendMsgpack(b, a, 1); err != nil {
				if errors.Is(err, errNotPlain) {
					err = dialect.ErrNoFastPath // normalize them first
				}
				return b, err
			}
		}
	}
	b = append(b, 0xa3, 'n', 's', 'p')
	b = appendStr(b, ns)
	b = append(b, 0x83, 0xa5, 'r', 'o', 'o', 'm', 's')
	b = appendStrings(b, x.Rooms)
	b = append(b, 0xa5, 'f', 'l', 'a', 'g', 's')
	nflags := 0
	if x.Volatile {
		nflags++
	}
	if x.Compress != nil {
		nflags++
	}
	b = append(b, 0x80|byte(nflags))
	if x.Volatile {
		b = append(b, 0xa8, 'v', 'o', 'l', 'a', 't', 'i', 'l', 'e', 0xc3)
	}
	if x.Compress != nil {
		b = append(b, 0xa8, 'c', 'o', 'm', 'p', 'r', 'e', 's', 's', 0xc2)
		if *x.Compress {
			b[len(b)-1] = 0xc3
		}
	}
	b = append(b, 0xa6, 'e', 'x', 'c', 'e', 'p', 't')
	b = appendStrings(b, x.Except)
	return b, nil
}

func appendStrings(b []byte, s []string) []byte {
	b = appendLen(b, len(s), 0x90, 0xdc, 0xdd)
	for _, e := range s {
		b = appendStr(b, e)
	}
	return b
}

// Decode turns a message of any node channel into an op.
func (d *Dialect) Decode(m queue.Message) (op.Op, error) {
	switch {
	case strings.HasPrefix(m.Channel, d.key+"-request#"):
		return d.decodeRequest(m)
	case strings.HasPrefix(m.Channel, d.key+"-response#"):
		return d.decodeResponse(m)
	case strings.HasPrefix(m.Channel, d.key+"#"):
		return d.decodeBroadcast(m)
	}
	return nil, unsupported("channel %q is not a %q channel", m.Channel, d.key)
}

// channelNamespace extracts <nsp> from prefix<nsp>#...
func channelNamespace(channel, prefix string) string {
	rest := strings.TrimPrefix(channel, prefix)
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return rest[:i]
	}
	return "/"
}

func (d *Dialect) decodeBroadcast(m queue.Message) (op.Op, error) {
	v, err := decodeMsgpack(m.Data)
	if err != nil {
		return nil, malformed("broadcast: %v", err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 3 {
		return nil, malformed("broadcast is not [uid, packet, opts]")
	}
	uid, _ := arr[0].(string)
	packet, ok := arr[1].(map[string]any)
	if !ok {
		return nil, malformed("broadcast packet is a %T", arr[1])
	}
	o, ok := arr[2].(map[string]any)
	if !ok {
		return nil, malformed("broadcast opts are a %T", arr[2])
	}
	e, err := packetEmit(packet, channelNamespace(m.Channel, d.key+"#"))
	if err != nil {
		return nil, err
	}
	if err := applyOpts(e, o); err != nil {
		return nil, err
	}
	e.Origin = uid
	return e, nil
}

// packetEmit reads {type: 2, data: [event, ...args], nsp}.
func packetEmit(p map[string]any, channelNS string) (*op.Emit, error) {
	if t, ok := p["type"].(int64); !ok || (t != 2 && t != 5) {
		return nil, unsupported("packet type %v", p["type"])
	}
	data, ok := p["data"].([]any)
	if !ok || len(data) == 0 {
		return nil, malformed("packet data is not [event, ...]")
	}
	event, ok := data[0].(string)
	if !ok {
		return nil, malformed("event name is a %T", data[0])
	}
	ns := channelNS
	if s, ok := p["nsp"].(string); ok {
		ns = s
	}
	var args []any
	if len(data) > 1 {
		args = data[1:]
	}
	return &op.Emit{Target: op.Target{Namespace: op.NamespaceOrRoot(ns)}, Event: event, Args: args}, nil
}

func applyOpts(e *op.Emit, o map[string]any) error {
	var err error
	if e.Rooms, err = strs(o["rooms"]); err != nil {
		return malformed("opts.rooms: %v", err)
	}
	if e.Except, err = strs(o["except"]); err != nil {
		return malformed("opts.except: %v", err)
	}
	if f, ok := o["flags"].(map[string]any); ok {
		e.Volatile, _ = f["volatile"].(bool)
		if c, ok := f["compress"].(bool); ok {
			e.Compress = &c
		}
		if e.Ack != nil {
			if ms, ok := number(f["timeout"]); ok {
				e.Ack.Timeout = time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	return nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func strs(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("a %T", v)
	}
	if len(l) == 0 {
		return nil, nil
	}
	out := make([]string, len(l))
	for i, e := range l {
		switch s := e.(type) {
		case string:
			out[i] = s
		case int64:
			out[i] = fmt.Sprint(s) // numeric room names
		default:
			return nil, fmt.Errorf("a %T in the list", e)
		}
	}
	return out, nil
}

// decodeAny parses a request/response body: JSON when it starts with '{',
// msgpack otherwise (what the adapter does).
func decodeAny(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, errors.New("empty message")
	}
	var v any
	if b[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if dec.More() {
			return nil, errors.New("trailing data after the JSON object")
		}
		var err error
		if v, err = op.FromJSON(v); err != nil {
			return nil, err
		}
	} else {
		var err error
		if v, err = decodeMsgpack(b); err != nil {
			return nil, err
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a %T, not an object", v)
	}
	return m, nil
}

func (d *Dialect) decodeRequest(m queue.Message) (op.Op, error) {
	r, err := decodeAny(m.Data)
	if err != nil {
		return nil, malformed("request: %v", err)
	}
	ns := op.NamespaceOrRoot(channelNamespace(m.Channel, d.key+"-request#"))
	uid, _ := r["uid"].(string)
	if uid == "" {
		uid = EmitterUID
	}
	typ, ok := r["type"].(int64)
	if !ok {
		return nil, malformed("request without a type")
	}
	target := func() (op.Target, error) {
		o, ok := r["opts"].(map[string]any)
		if !ok {
			return op.Target{Namespace: ns}, malformed("request type %d without opts (the legacy sid form is not supported)", typ)
		}
		return DecodeTarget(o, ns)
	}
	switch typ {
	case reqRemoteJoin, reqRemoteLeave:
		t, err := target()
		if err != nil {
			return nil, err
		}
		rooms, err := strs(r["rooms"])
		if err != nil {
			return nil, malformed("rooms: %v", err)
		}
		if typ == reqRemoteJoin {
			return &op.Join{Target: t, Rooms: rooms, Origin: uid}, nil
		}
		return &op.Leave{Target: t, Rooms: rooms, Origin: uid}, nil
	case reqRemoteDisconnect:
		t, err := target()
		if err != nil {
			return nil, err
		}
		c, _ := r["close"].(bool)
		return &op.Disconnect{Target: t, Close: c, Origin: uid}, nil
	case reqServerSideEmit:
		data, ok := r["data"].([]any)
		if !ok || len(data) == 0 {
			return nil, malformed("server-side emit without data")
		}
		ev, ok := data[0].(string)
		if !ok {
			return nil, malformed("server-side emit event is a %T", data[0])
		}
		reqID, _ := r["requestId"].(string)
		return &op.ServerSideEmit{Namespace: ns, Event: ev, Args: data[1:], RequestID: reqID, Origin: uid}, nil
	case reqBroadcast:
		packet, ok := r["packet"].(map[string]any)
		if !ok {
			return nil, malformed("broadcast request without packet")
		}
		e, err := packetEmit(packet, ns)
		if err != nil {
			return nil, err
		}
		reqID, _ := r["requestId"].(string)
		e.Ack = &op.AckRequest{ID: reqID}
		if o, ok := r["opts"].(map[string]any); ok {
			if err := applyOpts(e, o); err != nil {
				return nil, err
			}
		}
		e.Origin = uid
		return e, nil
	case reqSockets, reqAllRooms, reqRemoteFetch:
		return decodeExchangeRequest(r, typ, ns, uid, target)
	}
	return nil, unsupported("unknown request type %d", typ)
}

func (d *Dialect) decodeResponse(m queue.Message) (op.Op, error) {
	r, err := decodeAny(m.Data)
	if err != nil {
		return nil, malformed("response: %v", err)
	}
	ns := op.NamespaceOrRoot(channelNamespace(m.Channel, d.key+"-response#"))
	typ, _ := r["type"].(int64)
	reqID, _ := r["requestId"].(string)
	switch typ {
	case resClientCount:
		n, ok := number(r["clientCount"])
		if !ok || reqID == "" {
			return nil, malformed("client count response without requestId or clientCount")
		}
		return &op.ClientCount{Namespace: ns, ID: reqID, Count: int(n)}, nil
	case resBroadcastAck:
		if reqID == "" {
			return nil, malformed("ack response without requestId")
		}
		return &op.AckReply{Namespace: ns, ID: reqID, Args: []any{r["packet"]}}, nil
	}
	if o, ok, err := decodeExchangeResponse(r, ns, reqID); ok {
		return o, err
	}
	return nil, unsupported("response type %v", r["type"])
}

const uidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// uid2 returns n random characters of the alphabet Node's uid2 uses.
func uid2(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = uidAlphabet[b[i]&63]
	}
	return string(b)
}

// appendJSON writes compact JSON like JSON.stringify: keys in order, no
// HTML escaping. Binary has no JSON form for node peers.
func appendJSON(b []byte, v any, depth int) ([]byte, error) {
	if depth > 1000 {
		return nil, errors.New("node: value nested too deeply")
	}
	switch x := v.(type) {
	case omap:
		b = append(b, '{')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e.Key, depth+1); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendJSON(b, e.Value, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case map[string]any:
		keys := jsKeyOrder(x)
		m := make(omap, len(keys))
		for i, k := range keys {
			m[i] = kv{k, x[k]}
		}
		return appendJSON(b, m, depth)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []byte:
		return nil, unsupported("binary arguments cannot travel in a JSON request")
	case *big.Int:
		return nil, unsupported("integer %s does not fit JavaScript numbers", x)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...), nil
}
