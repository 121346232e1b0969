package server_test

import (
	"fmt"
	"net/http"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/parser"
)

// A server for clients using socket.io-msgpack-parser (socket.io-client's
// `parser: require("socket.io-msgpack-parser")`) or python-socketio's
// serializer='msgpack'. Handlers are written as under JSON.
func ExampleWithParser() {
	srv := server.New(server.WithParser(parser.MsgPack))
	srv.On("/", "upload", func(s *server.Socket, name string, content []byte) int {
		return len(content) // the ack
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv) // then serve mux (server.NewHTTPServer)
	fmt.Println(srv.Parser().Name())
	// Output: msgpack
}
