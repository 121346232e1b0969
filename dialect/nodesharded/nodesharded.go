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
	"fmt"
	"unicode/utf16"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/internal/clustermsg"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

const socketIDLength = 20 // what the adapter's looksLikeASocketId tests

// EmitterUID is the uid ClusterAdapter reserves for emitters.
const EmitterUID = clustermsg.EmitterUID

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

// channels is the embedded name of the channel naming.
type channels = clustermsg.Channels

// Dialect is the node-sharded dialect. It is safe for concurrent use.
type Dialect struct {
	channels // Key, MainChannel, ResponseChannel
	uid      string
	mode     Mode
}

// New returns a node-sharded dialect; an unknown Mode is an error.
func New(o Options) (*Dialect, error) {
	d := &Dialect{channels: channels{Prefix: o.Key}, uid: o.UID, mode: o.Mode}
	if d.Prefix == "" {
		d.Prefix = "socket.io"
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

// Mode returns the subscription mode.
func (d *Dialect) Mode() Mode { return d.mode }

// NewAckID returns a random request id (16 hex characters, as
// randomBytes(8).toString("hex")).
func (d *Dialect) NewAckID() string { return clustermsg.NewID() }

// ShardedServerCountChannel returns the main channel of ns: its sharded
// subscriber count (PUBSUB SHARDNUMSUB, summed over the masters) is the
// number of servers.
func (d *Dialect) ShardedServerCountChannel(ns string) string { return d.MainChannel(ns) }

// NewMember returns a dialect with the same key and mode and a fresh
// random uid (16 hex characters, as the adapter's), for a server node
// (dialect.Member).
func (d *Dialect) NewMember() dialect.Dialect {
	return &Dialect{channels: d.channels, uid: clustermsg.NewID(), mode: d.mode}
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

// Encode turns o into the message Node's sharded adapter expects.
func (d *Dialect) Encode(o op.Op) ([]queue.Message, error) {
	m, err := clustermsg.FromOp(o, d.uid)
	if err != nil {
		return nil, fmt.Errorf("node-sharded: %w", err)
	}
	channel := d.MainChannel(m.Nsp)
	switch {
	case m.IsResponse():
		channel = d.ReplyChannel(m.Nsp, m.To)
	case m.Type == clustermsg.TypeBroadcast && !m.WithAck():
		// with an acknowledgement: always the main channel (serverCount
		// counts every server, not the room's)
		channel = d.BroadcastChannel(m.Nsp, o.(*op.Emit).Rooms)
	}
	var b []byte
	if m.MayContainBinary() && clustermsg.HasBinary(m.Data) {
		b, err = node.AppendMsgpack(nil, m.Object())
	} else {
		b, err = node.AppendJSON(nil, m.Object())
	}
	if err != nil {
		return nil, fmt.Errorf("node-sharded: encode message type %d: %w", m.Type, err)
	}
	return []queue.Message{{Channel: channel, Data: b, Sharded: true}}, nil
}

// Decode turns one message of a node-sharded channel into an op.
func (d *Dialect) Decode(m queue.Message) (op.Op, error) {
	if !d.Owns(m.Channel) {
		return nil, unsupported("channel %q is not a %q channel", m.Channel, d.Prefix)
	}
	msg, err := node.DecodeObject(m.Data)
	if err != nil {
		return nil, malformed("%v", err)
	}
	ns, _ := msg["nsp"].(string)
	o, err := clustermsg.Decode(msg, d.Addressee(m.Channel, op.NamespaceOrRoot(ns)))
	if err != nil {
		return nil, fmt.Errorf("node-sharded: %w", err)
	}
	return o, nil
}
