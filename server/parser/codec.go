package parser

import "github.com/siobridge/siobridge/server/engineio"

// Parser is the wire format of a server's Socket.IO packets: how a Packet
// becomes Engine.IO messages and back. A server has one (as in Node's
// socket.io and python-socketio), and its clients must use the same:
// JSON (socket.io-parser, the default of every Socket.IO client) or
// MsgPack (socket.io-msgpack-parser, python-socketio's
// serializer='msgpack').
//
// Whatever the wire format, a Packet holds its payload as JSON with
// binary values as attachments behind placeholders (see Packet), so that
// handlers decode their arguments the same way under every parser.
type Parser interface {
	// Encode returns the Engine.IO messages that carry p, in order. The
	// messages may be shared by many connections (a broadcast is encoded
	// once): they are only read afterwards.
	Encode(p *Packet) ([]engineio.Message, error)
	// NewDecoder returns the decoder of one connection's messages.
	NewDecoder() PacketDecoder
	// Name is the parser's name: "json" or "msgpack".
	Name() string
}

// PacketDecoder reassembles the packets of one connection from its
// Engine.IO messages. It is used by one goroutine at a time.
type PacketDecoder interface {
	// Add takes one Engine.IO message; it returns a packet once one is
	// complete, nil while more messages are expected (a JSON packet's
	// attachments). An error wraps ErrInvalid: the connection should be
	// closed.
	Add(data []byte, binary bool) (*Packet, error)
}

// JSON is socket.io-parser's format (Socket.IO v5), the default: a packet
// is one text message, followed by its binary attachments as binary
// messages.
var JSON Parser = jsonParser{}

type jsonParser struct{}

func (jsonParser) Name() string { return "json" }

func (jsonParser) NewDecoder() PacketDecoder { return new(Decoder) }

func (jsonParser) Encode(p *Packet) ([]engineio.Message, error) {
	msgs := make([]engineio.Message, 0, 1+len(p.Attachments))
	msgs = append(msgs, engineio.Message{Data: Encode(p)})
	for _, a := range p.Attachments {
		msgs = append(msgs, engineio.Message{Data: a, Binary: true})
	}
	return msgs, nil
}

// ByName returns the parser called name ("json" or "msgpack"), or nil.
func ByName(name string) Parser {
	switch name {
	case JSON.Name():
		return JSON
	case MsgPack.Name():
		return MsgPack
	}
	return nil
}
