// Package nodestreams implements the "node-streams" dialect: the
// ClusterAdapter protocol (socket.io-adapter 2.5) as
// @socket.io/redis-streams-adapter 0.3 carries it on Redis.
//
// Broadcasts without acknowledgement and room operations (message types
// BROADCAST 3, SOCKETS_JOIN 4, SOCKETS_LEAVE 5, DISCONNECT_SOCKETS 6) are
// entries of a Redis stream (queue.Message.Stream), appended with
//
//	XADD socket.io MAXLEN ~ 10000 * uid <uid> nsp <nsp> type <decimal> data <data>
//
// where data is JSON.stringify of the message's data, or, when a
// broadcast carries binary, the base64 of its msgpack encoding. Every
// server reads the stream (XREAD from the entries appended after it
// started), so these messages reach the servers in one order, and each
// entry id is the offset of connection state recovery: decoded
// broadcasts carry it in op.Emit.Offset.
//
// The other messages are ephemeral, on Redis Pub/Sub, each the msgpack
// map of the whole message {type, data, uid, nsp}:
//
//	socket.io#<nsp>#          requests: broadcasts with acknowledgement,
//	                          SERVER_SIDE_EMIT, FETCH_SOCKETS
//	socket.io#<nsp>#<uid>#    the answers addressed to the node uid
//
// Servers are counted with PUBSUB NUMSUB on socket.io#<nsp>#
// (ServerCountChannel). A server node (NewMember, for server.WithAdapter)
// subscribes to both channels and reads the stream in one subscription
// (ServerSubscription).
//
// The adapter's useShardedPubSub option is not supported (Pub/Sub is the
// classic one), nor its onlyPlaintext option (binary is written as
// msgpack, the default). The ClusterAdapter protocol has no request for
// socket ids only nor for the rooms of a namespace: those ops are refused
// (dialect.ErrUnsupported).
package nodestreams

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/internal/clustermsg"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// Defaults of Options, the adapter's.
const (
	DefaultKey        = "socket.io"
	DefaultStreamName = "socket.io"
	DefaultMaxLen     = 10000
)

// EmitterUID is the uid ClusterAdapter reserves for emitters.
const EmitterUID = clustermsg.EmitterUID

// maxType bounds the digits of an entry's type field.
const maxType = 3

// Options configure the dialect; they must be the Node servers' options.
type Options struct {
	// Key is the prefix of the Pub/Sub channels (channelPrefix); default
	// DefaultKey.
	Key string
	// StreamName names the stream (streamName); default
	// DefaultStreamName.
	StreamName string
	// StreamCount spreads the namespaces over that many streams,
	// StreamName-<i> (streamCount; default 1: one stream, StreamName).
	StreamCount int
	// MaxLen trims the stream to about MaxLen entries as entries are
	// appended (maxLen, XADD MAXLEN ~); default DefaultMaxLen. Entries
	// trimmed before a server reads them are lost to it, and offsets older
	// than the stream's first entry cannot be recovered.
	MaxLen int64
	// UID identifies this process; default "emitter", the uid that
	// ClusterAdapter reserves for emitters. Node servers ignore the
	// messages that carry their own uid only.
	UID string
}

// channels is the embedded name of the channel naming.
type channels = clustermsg.Channels

// Dialect is the node-streams dialect. It is safe for concurrent use.
type Dialect struct {
	channels    // Key, MainChannel, ResponseChannel
	stream, uid string
	count       int
	maxLen      int64
}

// New returns a node-streams dialect; negative counts are an error.
func New(o Options) (*Dialect, error) {
	d := &Dialect{channels: channels{Prefix: o.Key}, stream: o.StreamName, uid: o.UID, count: o.StreamCount, maxLen: o.MaxLen}
	if d.Prefix == "" {
		d.Prefix = DefaultKey
	}
	if d.stream == "" {
		d.stream = DefaultStreamName
	}
	if d.uid == "" {
		d.uid = EmitterUID
	}
	switch {
	case d.count == 0:
		d.count = 1
	case d.count < 0:
		return nil, fmt.Errorf("node-streams: stream count %d", o.StreamCount)
	}
	switch {
	case d.maxLen == 0:
		d.maxLen = DefaultMaxLen
	case d.maxLen < 0:
		return nil, fmt.Errorf("node-streams: max length %d", o.MaxLen)
	}
	return d, nil
}

// Name returns "node-streams".
func (d *Dialect) Name() string { return "node-streams" }

// Origin returns the uid.
func (d *Dialect) Origin() string { return d.uid }

// MaxLen returns the stream's trimming length.
func (d *Dialect) MaxLen() int64 { return d.maxLen }

// NewAckID returns a random request id (16 hex characters).
func (d *Dialect) NewAckID() string { return clustermsg.NewID() }

// NewMember returns a dialect with the same options and a fresh random
// uid (16 hex characters, as the adapter's), for a server node
// (dialect.Member).
func (d *Dialect) NewMember() dialect.Dialect {
	c := *d
	c.uid = clustermsg.NewID()
	return &c
}

// ServerCountChannel returns the main channel of ns: its subscriber count
// (PUBSUB NUMSUB) is the number of servers.
func (d *Dialect) ServerCountChannel(ns string) string { return d.MainChannel(ns) }

// Stream returns the name of the stream of namespace ns: StreamName, or
// with several streams StreamName-<i>, i = hashCode(ns) % StreamCount as
// JavaScript computes it (a Java-style string hash on UTF-16 code units
// in 32-bit arithmetic; the remainder keeps the hash's sign).
func (d *Dialect) Stream(ns string) string {
	if d.count == 1 {
		return d.stream
	}
	var h int32
	for _, u := range utf16.Encode([]rune(op.NamespaceOrRoot(ns))) {
		h = h*31 + int32(u)
	}
	return d.stream + "-" + strconv.Itoa(int(h)%d.count)
}

// ServerSubscription is what a server node of namespace ns subscribes to:
// the main channel (which counts it as a server), its own response
// channel, and the namespace's stream.
func (d *Dialect) ServerSubscription(ns string) queue.Subscription {
	return queue.Subscription{Channels: []string{d.MainChannel(ns), d.ResponseChannel(ns, d.uid)}, Streams: []string{d.Stream(ns)}}
}

// ReplySubscription returns this process's response channel in ns.
func (d *Dialect) ReplySubscription(ns string) queue.Subscription {
	return queue.Subscription{Channels: []string{d.ResponseChannel(ns, d.uid)}}
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("node-streams: %s: %w", fmt.Sprintf(format, a...), dialect.ErrUnsupported)
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("node-streams: %s: %w", fmt.Sprintf(format, a...), dialect.ErrMalformed)
}

// inStream reports whether the adapter appends m to the stream (the
// others are ephemeral: isEphemeral).
func inStream(m *clustermsg.Message) bool {
	switch m.Type {
	case clustermsg.TypeBroadcast:
		return !m.WithAck()
	case clustermsg.TypeSocketsJoin, clustermsg.TypeSocketsLeave, clustermsg.TypeDisconnectSockets:
		return true
	}
	return false
}

// Encode turns o into the stream entry or the Pub/Sub message that Node's
// streams adapter writes for it.
func (d *Dialect) Encode(o op.Op) ([]queue.Message, error) {
	m, err := clustermsg.FromOp(o, d.uid)
	if err != nil {
		return nil, fmt.Errorf("node-streams: %w", err)
	}
	if inStream(&m) {
		return d.entry(&m)
	}
	channel := d.MainChannel(m.Nsp)
	if m.IsResponse() {
		channel = d.ReplyChannel(m.Nsp, m.To)
	}
	b, err := node.AppendMsgpack(nil, m.Object())
	if err != nil {
		return nil, fmt.Errorf("node-streams: encode message type %d: %w", m.Type, err)
	}
	return []queue.Message{{Channel: channel, Data: b}}, nil
}

// entry writes m as the adapter's stream entry {uid, nsp, type, data}.
func (d *Dialect) entry(m *clustermsg.Message) ([]queue.Message, error) {
	var data []byte
	var err error
	if m.MayContainBinary() && clustermsg.HasBinary(m.Data) {
		var mp []byte
		if mp, err = node.AppendMsgpack(nil, m.Data); err == nil {
			data = base64.StdEncoding.AppendEncode(nil, mp)
		}
	} else {
		data, err = node.AppendJSON(nil, m.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("node-streams: encode message type %d: %w", m.Type, err)
	}
	f := queue.AppendStreamField(nil, "uid", m.UID)
	f = queue.AppendStreamField(f, "nsp", m.Nsp)
	f = queue.AppendStreamField(f, "type", strconv.Itoa(m.Type))
	f = queue.AppendStreamField(f, "data", string(data))
	return []queue.Message{{Channel: d.Stream(m.Nsp), Stream: true, MaxLen: d.maxLen, Data: f}}, nil
}

// Decode turns a stream entry (m.Stream) or a message of a node-streams
// Pub/Sub channel into an op. A broadcast read from the stream carries
// its entry id in Offset.
func (d *Dialect) Decode(m queue.Message) (op.Op, error) {
	if m.Stream {
		return d.decodeEntry(m)
	}
	if !d.Owns(m.Channel) {
		return nil, unsupported("channel %q is not a %q channel", m.Channel, d.Prefix)
	}
	v, err := node.DecodeMsgpack(m.Data)
	if err != nil {
		return nil, malformed("%v", err)
	}
	msg, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("a %T, not a map", v)
	}
	ns, _ := msg["nsp"].(string)
	o, err := clustermsg.Decode(msg, d.Addressee(m.Channel, op.NamespaceOrRoot(ns)))
	if err != nil {
		return nil, fmt.Errorf("node-streams: %w", err)
	}
	return o, nil
}

// decodeEntry reads a stream entry {uid, nsp, type, data}.
func (d *Dialect) decodeEntry(m queue.Message) (op.Op, error) {
	var uid, ns, typ, raw []byte
	var hasNsp bool
	err := queue.StreamFields(m.Data, func(f, v []byte) bool {
		switch string(f) {
		case "uid":
			uid = v
		case "nsp":
			ns, hasNsp = v, true
		case "type":
			typ = v
		case "data":
			raw = v
		}
		return true
	})
	if err != nil {
		return nil, malformed("stream entry %s: %v", m.ID, err)
	}
	if !hasNsp || len(ns) == 0 { // the adapter skips entries without nsp
		return nil, unsupported("stream entry %s has no nsp", m.ID)
	}
	if len(typ) == 0 || len(typ) > maxType {
		return nil, malformed("stream entry %s: type %q", m.ID, typ)
	}
	t, err := strconv.ParseInt(string(typ), 10, 64)
	if err != nil || t < 0 {
		return nil, malformed("stream entry %s: type %q", m.ID, typ)
	}
	data, err := entryData(raw)
	if err != nil {
		return nil, malformed("stream entry %s: data: %v", m.ID, err)
	}
	o, err := clustermsg.DecodeData(t, data, string(uid), string(ns), "")
	if err != nil {
		return nil, fmt.Errorf("node-streams: stream entry %s: %w", m.ID, err)
	}
	if e, ok := o.(*op.Emit); ok && e.Ack == nil {
		e.Offset = m.ID
	}
	return o, nil
}

// entryData decodes an entry's data field: JSON when it starts with '{',
// else base64 of msgpack (as the adapter reads it); nil when empty.
func entryData(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if raw[0] == '{' {
		return node.DecodeObject(raw)
	}
	b, err := decodeBase64(raw)
	if err != nil {
		return nil, err
	}
	v, err := node.DecodeMsgpack(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a %T, not a map", v)
	}
	return m, nil
}

// decodeBase64 reads standard base64, padded or not (Node's
// Buffer.from(s, "base64") also takes the URL alphabet).
func decodeBase64(raw []byte) ([]byte, error) {
	s := strings.TrimRight(string(raw), "=")
	if strings.ContainsAny(s, "-_") {
		s = strings.NewReplacer("-", "+", "_", "/").Replace(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
