package server

import (
	"github.com/siobridge/siobridge/server/engineio"
	"github.com/siobridge/siobridge/server/parser"
)

// WithParser sets the wire format of the server's packets: parser.JSON
// (socket.io-parser, the default) or parser.MsgPack
// (socket.io-msgpack-parser 3 for socket.io-client, serializer='msgpack'
// for python-socketio and Flask-SocketIO clients). As with Node's and
// python-socketio's servers, a server has one parser and every client
// must use the same; handlers, acknowledgements and broadcasts (those
// arriving from a message queue included) work alike under both, binary
// data traveling as msgpack bin under MsgPack. A nil parser keeps JSON.
func WithParser(p parser.Parser) Option {
	return func(c *config) {
		if p != nil {
			c.parser = p
		}
	}
}

// Parser returns the server's parser (WithParser).
func (s *Server) Parser() parser.Parser { return s.parser }

// encode is the server's parser's encoding of p.
func (s *Server) encode(p *parser.Packet) ([]engineio.Message, error) { return s.parser.Encode(p) }
