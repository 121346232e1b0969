// Package op is the neutral model of the operations that Socket.IO processes
// exchange through a message queue: emits, acknowledgements, room changes,
// disconnects and server-to-server requests.
//
// An op says what should happen, never how it is written on the wire: dialects
// (package dialect and its children) turn ops into queue messages and back.
// Ops carry no JSON, no msgpack and no broker details.
//
// Argument values (Emit.Args, AckReply.Args, ...) are plain data trees:
// nil, bool, int64, uint64, *big.Int, float64, string, []byte (binary),
// []any and map[string]any. Values produced by decoders are always of these
// types; values given to encoders may be any Go value that Normalize accepts
// (Normalize keeps plain data, and int, as it is, so encoders also take int).
package op

import (
	"fmt"
	"time"
)

// Op is one cross-process operation. The concrete types are Emit, AckReply,
// ClientCount, Join, Leave, Disconnect, CloseRoom and ServerSideEmit.
type Op interface {
	// Kind names the operation, e.g. "emit" or "join".
	Kind() string
}

// Target selects sockets of one namespace: every socket that is in at least
// one of Rooms (all sockets of the namespace when Rooms is empty) and in none
// of Except. A socket id is also the name of a room holding only that socket,
// so Rooms and Except may name sids.
type Target struct {
	Namespace string
	Rooms     []string
	Except    []string
}

// Emit delivers an event to the sockets selected by Target.
type Emit struct {
	Target
	Event string
	Args  []any
	// Volatile marks the event as droppable when a client cannot receive it now.
	Volatile bool
	// Compress is the per-message compression flag; nil leaves it unset.
	Compress *bool
	// Ack, when not nil, asks the receiving clients to acknowledge the event;
	// their replies come back as AckReply (and, for some dialects,
	// ClientCount) ops carrying Ack.ID.
	Ack *AckRequest
	// Origin identifies the publishing process (python host_id, node uid).
	Origin string
	// Offset is the emit's place in a log that the dialect's peers use as
	// connection-state-recovery offset: set by decoders of such dialects
	// (node-streams: the stream entry id, "1700000000000-0"), empty
	// otherwise. Encoders ignore it (the log gives it).
	Offset string
}

// AckRequest asks for acknowledgements of an Emit.
type AckRequest struct {
	// ID correlates the replies with the request. Dialects decide its form
	// (python: a decimal integer, node: a request id string).
	ID string
	// Timeout is how long the requester waits; some dialects put it on the wire.
	Timeout time.Duration
}

// AckReply carries the acknowledgement arguments of one client.
type AckReply struct {
	Namespace string
	// Host is the process the reply is addressed to (python host_id); empty
	// when the dialect addresses replies by ID only.
	Host string
	// Sid is the socket that acknowledged, when the dialect says so.
	Sid string
	// ID is the AckRequest.ID this reply answers.
	ID   string
	Args []any
}

// ClientCount tells a requester how many clients one server asked for an
// acknowledgement (node BROADCAST_CLIENT_COUNT).
type ClientCount struct {
	Namespace string
	ID        string
	Count     int
	Origin    string
	// Host is the requester the count is addressed to (node-sharded
	// response channels); empty when the dialect addresses it by ID only.
	Host string
}

// Join makes the sockets selected by Target join Rooms. (Target is a named
// field here, not embedded, so that Rooms and Target.Rooms stay distinct.)
type Join struct {
	Target Target
	Rooms  []string
	Origin string
}

// Leave makes the sockets selected by Target leave Rooms.
type Leave struct {
	Target Target
	Rooms  []string
	Origin string
}

// Disconnect disconnects the sockets selected by Target from their namespace;
// with Close the underlying connection is closed as well.
type Disconnect struct {
	Target
	Close  bool
	Origin string
}

// CloseRoom removes every socket from Room.
type CloseRoom struct {
	Namespace string
	Room      string
	Origin    string
}

// ServerSideEmit is an event for the servers themselves, not their clients.
type ServerSideEmit struct {
	Namespace string
	Event     string
	Args      []any
	// RequestID is set when the sender waits for replies.
	RequestID string
	Origin    string
}

func (*Emit) Kind() string           { return "emit" }
func (*AckReply) Kind() string       { return "ack" }
func (*ClientCount) Kind() string    { return "client-count" }
func (*Join) Kind() string           { return "join" }
func (*Leave) Kind() string          { return "leave" }
func (*Disconnect) Kind() string     { return "disconnect" }
func (*CloseRoom) Kind() string      { return "close-room" }
func (*ServerSideEmit) Kind() string { return "server-side-emit" }

// ReservedEvents are event names a client cannot receive as events: they are
// used by the Socket.IO protocol itself.
var ReservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// ValidateEvent reports whether name may be emitted to clients.
func ValidateEvent(name string) error {
	if name == "" {
		return fmt.Errorf("op: empty event name")
	}
	switch name { // ReservedEvents, without hashing on every emit
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return fmt.Errorf("op: %q is a reserved event name", name)
	}
	return nil
}

// NamespaceOrRoot returns ns, or "/" when ns is empty; a name without a
// leading slash gets one.
func NamespaceOrRoot(ns string) string {
	if ns == "" {
		return "/"
	}
	if ns[0] != '/' {
		return "/" + ns
	}
	return ns
}
