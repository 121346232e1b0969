// Package python implements the message-queue dialects of python-socketio
// and Flask-SocketIO (their "pubsub managers": RedisManager, KombuManager,
// AsyncRedisManager, AsyncAioPikaManager ...).
//
//   - "python" (New): python-socketio >= 5.15.1 / Flask-SocketIO >= 5.5. JSON
//     messages, "data" always a list of arguments, bytes as base64
//     attachments behind Socket.IO placeholders, host_id on every message.
//   - "python-pickle" (NewPickle): python-socketio < 5.14, which includes
//     Debian bookworm's python3-socketio 5.7.2 / python3-flask-socketio
//     5.3.2. Pickled dicts; a tuple carries several arguments.
//
// Both dialects decode everything either era publishes: the three JSON
// variants (5.14.0-5.14.1, 5.14.2-5.15.0, >= 5.15.1), Kombu bodies of every
// content type, and pickles of protocols 0-5 (plain data only; see package
// pickle).
//
// All messages of a cluster travel on one channel (Options.Channel, default
// "flask-socketio"; plain python-socketio servers default to "socketio").
//
// Peer limits the dialects enforce: python servers exclude socket ids only
// (skip_sid), so Target.Except must name sids; acknowledgements are
// possible only for an emit to a single sid; enter_room/leave_room exist
// only since python-socketio 5.10, so the pickle dialect refuses Join and
// Leave.
package python

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync/atomic"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/python/pickle"
	"github.com/siobridge/siobridge/internal/bufpool"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// DefaultChannel is Flask-SocketIO's default channel.
const DefaultChannel = "flask-socketio"

// Options configure a python dialect.
type Options struct {
	// Channel is the pub/sub channel (Redis) or fanout exchange (AMQP)
	// of the cluster; default "flask-socketio".
	Channel string
	// HostID identifies this process (default: 32 random hex digits).
	HostID string
}

// Dialect is a python-socketio dialect. It is safe for concurrent use.
type Dialect struct {
	pickle  bool
	channel string
	hostID  string
	ackSeq  atomic.Uint64
}

// New returns the JSON dialect of python-socketio >= 5.15.1.
func New(o Options) *Dialect { return newDialect(o, false) }

// NewPickle returns the pickle dialect of python-socketio < 5.14.
func NewPickle(o Options) *Dialect { return newDialect(o, true) }

func newDialect(o Options, pickled bool) *Dialect {
	d := &Dialect{pickle: pickled, channel: o.Channel, hostID: o.HostID}
	if d.channel == "" {
		d.channel = DefaultChannel
	}
	if d.hostID == "" {
		var b [16]byte
		rand.Read(b[:])
		d.hostID = hex.EncodeToString(b[:])
	}
	return d
}

// Name returns "python" or "python-pickle".
func (d *Dialect) Name() string {
	if d.pickle {
		return "python-pickle"
	}
	return "python"
}

// Origin returns the host id.
func (d *Dialect) Origin() string { return d.hostID }

// NewMember returns a dialect of the same kind and channel with a fresh
// random host id, for a server node (dialect.Member).
func (d *Dialect) NewMember() dialect.Dialect {
	return newDialect(Options{Channel: d.channel}, d.pickle)
}

// Channel returns the channel name.
func (d *Dialect) Channel() string { return d.channel }

// NewAckID returns the next callback id (python keeps integer ids).
func (d *Dialect) NewAckID() string { return strconv.FormatUint(d.ackSeq.Add(1), 10) }

// ReplySubscription returns the cluster channel: callbacks come back on it.
func (d *Dialect) ReplySubscription(ns string) queue.Subscription {
	return queue.Subscription{Channels: []string{d.channel}}
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("python: %s: %w", fmt.Sprintf(format, a...), dialect.ErrUnsupported)
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("python: %s: %w", fmt.Sprintf(format, a...), dialect.ErrMalformed)
}

func (d *Dialect) origin(o string) string {
	if o == "" {
		return d.hostID
	}
	return o
}

// roomValue is python's room / skip_sid value: None, a str or a list.
func roomValue(rooms []string) any {
	switch len(rooms) {
	case 0:
		return nil
	case 1:
		return rooms[0]
	}
	l := make([]any, len(rooms))
	for i, r := range rooms {
		l[i] = r
	}
	return l
}

// Encode turns o into one or more messages on the cluster channel.
func (d *Dialect) Encode(o op.Op) ([]queue.Message, error) {
	if e, ok := o.(*op.Emit); ok && !d.pickle && e.Ack == nil && !op.HasBinary(e.Args) {
		return d.encodeJSONEmit(e)
	}
	var msgs []odict
	switch x := o.(type) {
	case *op.Emit:
		m, err := d.emitDict(x)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	case *op.AckReply:
		id, err := strconv.ParseInt(x.ID, 10, 64)
		if err != nil {
			return nil, unsupported("callback id %q is not an integer", x.ID)
		}
		msgs = append(msgs, odict{{"method", "callback"}, {"host_id", x.Host}, {"sid", x.Sid},
			{"namespace", op.NamespaceOrRoot(x.Namespace)}, {"id", id}, {"args", d.tuple(x.Args)}})
	case *op.Disconnect:
		if len(x.Except) > 0 {
			return nil, unsupported("python peers disconnect socket ids only; Except is not possible")
		}
		if len(x.Target.Rooms) == 0 {
			return nil, unsupported("python peers disconnect socket ids only; name at least one sid")
		}
		for _, sid := range x.Target.Rooms {
			m := odict{{"method", "disconnect"}, {"sid", sid}, {"namespace", op.NamespaceOrRoot(x.Namespace)}}
			if !d.pickle {
				m = append(m, kv{"host_id", d.origin(x.Origin)})
			}
			msgs = append(msgs, m)
		}
	case *op.CloseRoom:
		m := odict{{"method", "close_room"}, {"room", x.Room}, {"namespace", op.NamespaceOrRoot(x.Namespace)}}
		if !d.pickle {
			m = append(m, kv{"host_id", d.origin(x.Origin)})
		}
		msgs = append(msgs, m)
	case *op.Join, *op.Leave:
		var t op.Target
		var rooms []string
		var origin, method string
		if j, ok := x.(*op.Join); ok {
			t, rooms, origin, method = j.Target, j.Rooms, j.Origin, "enter_room"
		} else {
			l := x.(*op.Leave)
			t, rooms, origin, method = l.Target, l.Rooms, l.Origin, "leave_room"
		}
		if d.pickle {
			return nil, unsupported("python-socketio < 5.10 has no enter_room/leave_room: sockets can join or leave rooms only inside their server")
		}
		if len(t.Except) > 0 || len(t.Rooms) == 0 {
			return nil, unsupported("python peers change the rooms of named socket ids only")
		}
		if len(rooms) == 0 {
			return nil, unsupported("no room to %s", method)
		}
		for _, sid := range t.Rooms {
			for _, r := range rooms {
				msgs = append(msgs, odict{{"method", method}, {"sid", sid}, {"room", r},
					{"namespace", op.NamespaceOrRoot(t.Namespace)}, {"host_id", d.origin(origin)}})
			}
		}
	default:
		return nil, unsupported("%s ops have no python equivalent", o.Kind())
	}
	out := make([]queue.Message, len(msgs))
	for i, m := range msgs {
		data, err := d.marshal(m)
		if err != nil {
			return nil, err
		}
		out[i] = queue.Message{Channel: d.channel, Data: data}
		if d.pickle {
			out[i].ContentType, out[i].ContentEncoding = "application/data", "binary"
		} else {
			out[i].ContentType, out[i].ContentEncoding = "text/plain", "utf-8"
		}
	}
	return out, nil
}

// encodeJSONEmit writes the most common message directly: a JSON emit
// without binary data or callback (the same bytes the odict path writes).
func (d *Dialect) encodeJSONEmit(x *op.Emit) ([]queue.Message, error) {
	if err := op.ValidateEvent(x.Event); err != nil {
		return nil, err
	}
	b := bufpool.Get(160 + len(x.Event) + len(d.hostID) + 32*len(x.Args))
	b = append(b, `{"method": "emit", "event": `...)
	b = appendPyString(b, x.Event)
	b = append(b, `, "data": [`...)
	var err error
	for i, a := range x.Args {
		if i > 0 {
			b = append(b, ", "...)
		}
		if b, err = appendPyJSON(b, a, 1); err != nil {
			return nil, err
		}
	}
	b = append(b, `], "binary": false, "namespace": `...)
	b = appendPyString(b, op.NamespaceOrRoot(x.Namespace))
	b = append(b, `, "room": `...)
	b = appendRoomValue(b, x.Rooms)
	b = append(b, `, "skip_sid": `...)
	b = appendRoomValue(b, x.Except)
	b = append(b, `, "callback": null, "host_id": `...)
	b = appendPyString(b, d.origin(x.Origin))
	b = append(b, '}')
	return []queue.Message{{Channel: d.channel, Data: b, ContentType: "text/plain", ContentEncoding: "utf-8"}}, nil
}

func appendRoomValue(b []byte, rooms []string) []byte {
	switch len(rooms) {
	case 0:
		return append(b, "null"...)
	case 1:
		return appendPyString(b, rooms[0])
	}
	b = append(b, '[')
	for i, r := range rooms {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendPyString(b, r)
	}
	return append(b, ']')
}

func (d *Dialect) tuple(args []any) any {
	if d.pickle {
		return pickle.Tuple(args)
	}
	if args == nil {
		return []any{}
	}
	return args
}

func (d *Dialect) emitDict(x *op.Emit) (odict, error) {
	var callback any
	if x.Ack != nil {
		if len(x.Rooms) != 1 || len(x.Except) > 0 {
			return nil, unsupported("python peers acknowledge only single-sid emits (got rooms %q, except %q)", x.Rooms, x.Except)
		}
		id, err := strconv.ParseInt(x.Ack.ID, 10, 64)
		if err != nil {
			return nil, unsupported("ack id %q is not an integer", x.Ack.ID)
		}
		if d.pickle {
			callback = pickle.Tuple{x.Rooms[0], op.NamespaceOrRoot(x.Namespace), id}
		} else {
			callback = []any{x.Rooms[0], op.NamespaceOrRoot(x.Namespace), id}
		}
	}
	if err := op.ValidateEvent(x.Event); err != nil {
		return nil, err
	}
	m := odict{{"method", "emit"}, {"event", x.Event}}
	if d.pickle {
		var data any
		switch len(x.Args) {
		case 0:
			data = nil
		case 1:
			data = x.Args[0]
		default:
			data = pickle.Tuple(x.Args)
		}
		m = append(m, kv{"data", data})
	} else {
		args := x.Args
		if args == nil {
			args = []any{}
		}
		var atts []any
		withPlaceholders := deconstruct(args, &atts)
		if len(atts) > 0 {
			m = append(m, kv{"data", append([]any{withPlaceholders}, atts...)}, kv{"binary", true})
		} else {
			m = append(m, kv{"data", args}, kv{"binary", false})
		}
	}
	m = append(m, kv{"namespace", op.NamespaceOrRoot(x.Namespace)}, kv{"room", roomValue(x.Rooms)},
		kv{"skip_sid", roomValue(x.Except)}, kv{"callback", callback}, kv{"host_id", d.origin(x.Origin)})
	return m, nil
}

func (d *Dialect) marshal(m odict) ([]byte, error) {
	if d.pickle {
		pd := make(pickle.Dict, len(m))
		for i, e := range m {
			pd[i] = pickle.KV{Key: e.k, Value: e.v}
		}
		b, err := pickle.Marshal(pd)
		if err != nil {
			return nil, fmt.Errorf("python-pickle: %w", err)
		}
		return b, nil
	}
	return appendPyJSON(nil, m, 0)
}

// deconstruct replaces every []byte of v (depth first: list items, then
// map values in key order) by a Socket.IO placeholder and collects the
// base64 attachments.
func deconstruct(v any, atts *[]any) any {
	switch x := v.(type) {
	case []byte:
		n := len(*atts)
		*atts = append(*atts, base64.StdEncoding.EncodeToString(x))
		return odict{{"_placeholder", true}, {"num", int64(n)}}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deconstruct(e, atts)
		}
		return out
	case map[string]any:
		keys := sortedKeys(x)
		out := make(odict, len(keys))
		for i, k := range keys {
			out[i] = kv{k, deconstruct(x[k], atts)}
		}
		return out
	}
	return v
}

// reconstruct puts the attachments back in place of the placeholders.
func reconstruct(v any, atts [][]byte, depth int) (any, error) {
	if depth > 1000 {
		return nil, errors.New("nested too deeply")
	}
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			r, err := reconstruct(e, atts, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
		return x, nil
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph && len(x) == 2 {
			n, ok := x["num"].(int64)
			if !ok || n < 0 || n >= int64(len(atts)) {
				return nil, fmt.Errorf("placeholder %v has no attachment", x["num"])
			}
			return atts[n], nil
		}
		for k, e := range x {
			r, err := reconstruct(e, atts, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	}
	return v, nil
}

// Decode turns one queue message into an op.
func (d *Dialect) Decode(m queue.Message) (op.Op, error) {
	raw, pickled, err := decodeBody(m)
	if err != nil {
		return nil, err
	}
	msg, ok := raw.(map[string]any)
	if !ok {
		return nil, malformed("message is a %T, not a dict", raw)
	}
	method, ok := msg["method"].(string)
	if !ok {
		return nil, malformed("message has no method")
	}
	ns := "/"
	if v, ok := msg["namespace"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, malformed("namespace is a %T", v)
		}
		ns = op.NamespaceOrRoot(s)
	}
	host, _ := msg["host_id"].(string)
	switch method {
	case "emit":
		return decodeEmit(msg, ns, host, pickled)
	case "callback":
		sid, ok1 := msg["sid"].(string)
		id, ok2 := intString(msg["id"])
		if !ok1 || !ok2 {
			return nil, malformed("callback without sid or integer id")
		}
		args, ok := asList(msg["args"])
		if !ok {
			return nil, malformed("callback args are a %T", msg["args"])
		}
		return &op.AckReply{Namespace: ns, Host: host, Sid: sid, ID: id, Args: args}, nil
	case "disconnect":
		sid, ok := msg["sid"].(string)
		if !ok {
			return nil, malformed("disconnect without sid")
		}
		return &op.Disconnect{Target: op.Target{Namespace: ns, Rooms: []string{sid}}, Origin: host}, nil
	case "close_room":
		room, ok := msg["room"].(string)
		if !ok {
			return nil, malformed("close_room without room")
		}
		return &op.CloseRoom{Namespace: ns, Room: room, Origin: host}, nil
	case "enter_room", "leave_room":
		sid, ok1 := msg["sid"].(string)
		room, ok2 := msg["room"].(string)
		if !ok1 || !ok2 {
			return nil, malformed("%s without sid or room", method)
		}
		t := op.Target{Namespace: ns, Rooms: []string{sid}}
		if method == "enter_room" {
			return &op.Join{Target: t, Rooms: []string{room}, Origin: host}, nil
		}
		return &op.Leave{Target: t, Rooms: []string{room}, Origin: host}, nil
	}
	return nil, unsupported("unknown method %q", method)
}

func decodeEmit(msg map[string]any, ns, host string, pickled bool) (op.Op, error) {
	event, ok := msg["event"].(string)
	if !ok {
		return nil, malformed("emit without event")
	}
	data, ok := msg["data"]
	if !ok {
		return nil, malformed("emit without data")
	}
	if bin, _ := msg["binary"].(bool); bin {
		l, ok := data.([]any)
		if !ok || len(l) < 1 {
			return nil, malformed("binary emit data is not [payload, attachments...]")
		}
		atts := make([][]byte, len(l)-1)
		for i, a := range l[1:] {
			s, ok := a.(string)
			if !ok {
				return nil, malformed("attachment %d is a %T", i, a)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, malformed("attachment %d: %v", i, err)
			}
			atts[i] = b
		}
		var err error
		if data, err = reconstruct(l[0], atts, 0); err != nil {
			return nil, malformed("binary emit: %v", err)
		}
	}
	// python's receiver: a JSON list is the argument list, where one
	// element stands for itself; then a tuple is several arguments, None
	// none, anything else one.
	if l, ok := data.([]any); ok && !pickled {
		if len(l) == 1 {
			data = l[0]
		} else {
			data = pickle.Tuple(l)
		}
	}
	var args []any
	switch x := data.(type) {
	case nil:
	case pickle.Tuple:
		if len(x) > 0 {
			args = []any(x)
		}
	default:
		args = []any{x}
	}
	for i := range args {
		args[i] = pickle.Plain(args[i])
	}
	rooms, err := roomList(msg["room"])
	if err != nil {
		return nil, malformed("room: %v", err)
	}
	except, err := roomList(msg["skip_sid"])
	if err != nil {
		return nil, malformed("skip_sid: %v", err)
	}
	e := &op.Emit{Target: op.Target{Namespace: ns, Rooms: rooms, Except: except}, Event: event, Args: args, Origin: host}
	if cb := msg["callback"]; cb != nil {
		l, ok := asList(cb)
		if ok && len(l) == 3 {
			if id, ok := intString(l[2]); ok {
				e.Ack = &op.AckRequest{ID: id}
				if sid, ok := l[0].(string); ok && len(rooms) == 0 {
					e.Rooms = []string{sid}
				}
			}
		}
	}
	return e, nil
}

// decodeBody parses a message body: JSON (any era, or a Kombu body) or
// pickle; pickled tells which, since a list in emit data means different
// things in the two.
func decodeBody(m queue.Message) (v any, pickled bool, err error) {
	b := m.Data
	if len(b) == 0 {
		return nil, false, malformed("empty message")
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i < len(b) && b[i] == '{' {
		v, err := parsePyJSON(b)
		if err != nil {
			return nil, false, malformed("%v", err)
		}
		return v, false, nil
	}
	v, err = pickle.Unmarshal(b)
	if err != nil {
		return nil, true, malformed("neither JSON nor an acceptable pickle: %v", err)
	}
	return v, true, nil
}

func roomList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any, pickle.Tuple:
		l, _ := asList(x)
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("a %T in the list", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T", v)
}

func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = pickle.Plain(x[i])
		}
		return x, true
	case pickle.Tuple:
		return asList([]any(x))
	}
	return nil, false
}

func intString(v any) (string, bool) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case *big.Int:
		return x.String(), true
	}
	return "", false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}
