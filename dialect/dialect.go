// Package dialect defines how ops are written on a message queue for one
// family of Socket.IO peers. The implementations are dialect/python (the
// "python" JSON dialect of python-socketio >= 5.15.1 and the "python-pickle"
// dialect of python-socketio < 5.14), dialect/node (@socket.io/redis-adapter
// 8 and @socket.io/redis-emitter 5), dialect/nodesharded (its sharded
// adapter) and dialect/nodestreams (@socket.io/redis-streams-adapter 0.3).
//
// A dialect is pure code: it owns channel names, host ids and uids, the
// payload encoding and version quirks, and never touches the network.
package dialect

import (
	"errors"

	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// Dialect encodes ops into queue messages and decodes queue messages into
// ops. Implementations are safe for concurrent use.
type Dialect interface {
	// Name is the dialect's name: "python", "python-pickle" or "node".
	Name() string
	// Origin is this process's identity on the wire (python host_id,
	// node uid); it is put on every op this dialect encodes without one.
	Origin() string
	// Encode returns the messages that carry o, in publishing order.
	// An op the dialect's peers cannot perform is refused with an error
	// wrapping ErrUnsupported, never published half-way.
	Encode(o op.Op) ([]queue.Message, error)
	// Decode turns one received message into an op. Bytes it does not
	// understand give an error wrapping ErrMalformed (or ErrUnsupported for
	// well-formed messages of kinds it does not handle); Decode never panics
	// and bounds the memory it allocates by the message size.
	Decode(m queue.Message) (op.Op, error)
	// NewAckID returns a fresh AckRequest.ID in the form the dialect needs.
	NewAckID() string
	// ReplySubscription is what a requester (an emitter waiting for acks)
	// must subscribe to in order to receive the replies to its requests in
	// namespace ns.
	ReplySubscription(ns string) queue.Subscription
}

// ErrUnsupported is wrapped by errors for ops, or messages, that a dialect
// or its peers cannot handle.
var ErrUnsupported = errors.New("not supported by this dialect")

// ErrMalformed is wrapped by decoding errors for invalid bytes.
var ErrMalformed = errors.New("malformed queue message")

// Member is implemented by dialects that can speak for a server node of a
// cluster. A server must never share its identity (python host_id, node
// uid) with another process: peers drop the messages that carry their own
// identity, so a server that took, say, @socket.io/redis-emitter's uid
// "emitter" would ignore every emitter message.
type Member interface {
	Dialect
	// NewMember returns a copy of the dialect with the same settings
	// (channel, key prefix) and a fresh random origin.
	NewMember() Dialect
}

// EmitAppender is implemented by dialects that carry an emit without
// acknowledgement in one message and can append its payload to a buffer
// the caller owns: emitter.Batch then keeps a whole batch in one buffer
// instead of one buffer per emit, and takes arguments given as JSON text
// (sioemit --batch lines) straight into the dialect's encoding, without
// decoding them into Go values first.
type EmitAppender interface {
	// AppendEmit appends the payload of the message that carries e
	// (e.Ack must be nil) to dst, sets *m to the message with its Data
	// unset, and returns the extended buffer: the payload is
	// out[len(dst):]. (The message is written in place, where the caller
	// keeps it: returning it would copy its many fields at every emit.)
	// e.Args need not be normalized (op.NormalizeArgs): arguments the
	// dialect does not write as they are give ErrNoFastPath, with dst
	// unchanged; the caller normalizes them and calls again.
	//
	// When argsJSON is not nil it holds the emit's arguments as the JSON
	// text of an array (or null), and e.Args is ignored. A dialect that
	// cannot write those arguments straight from the text (values its
	// fast path does not take) returns ErrNoFastPath, with dst unchanged:
	// the caller decodes them and calls again with argsJSON nil. Invalid
	// JSON is an error.
	AppendEmit(dst []byte, m *queue.Message, e *op.Emit, argsJSON []byte) (out []byte, err error)
}

// ErrNoFastPath is returned by EmitAppender.AppendEmit for arguments in
// JSON text that the dialect does not write straight from the text.
var ErrNoFastPath = errors.New("dialect: no fast path for these arguments")
