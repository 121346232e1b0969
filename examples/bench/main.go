// Command bench is the server side of the fan-out benchmark (identical to
// bench/node/sio-bench-server.js on socket.io 4.8): on "join" the socket
// joins the room named by the argument; on "fanout" the server emits
// "tick" with the same argument to room "bench". WebSocket transport.
//
//	go run ./examples/bench -addr :3000
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/siobridge/siobridge/server"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	flag.Parse()
	srv := server.New(server.WithTransports("websocket"))
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	bench := srv.Of("/").To("bench")
	srv.On("/", "fanout", func(s *server.Socket, arg any) { bench.Emit("tick", arg) })
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	log.Printf("bench server on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
