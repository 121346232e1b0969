// Command chat is a chat room in the browser on siobridge's server and the
// official socket.io JavaScript client.
//
//	(cd examples/chat && npm ci)   # the socket.io client; scripts/setup.sh does it
//	go run ./examples/chat -addr :8000
//
// then open http://localhost:8000 in two browsers.
package main

import (
	"flag"
	"log"

	"github.com/siobridge/siobridge/examples/chat/chatapp"
	"github.com/siobridge/siobridge/server"
)

func main() {
	addr := flag.String("addr", ":8000", "listen address")
	client := flag.String("client", "examples/chat/node_modules/socket.io-client/dist/socket.io.min.js", "socket.io client bundle installed by npm")
	flag.Parse()
	_, h := chatapp.New(*client)
	log.Printf("chat on http://localhost%s", *addr)
	log.Fatal(server.NewHTTPServer(*addr, h).ListenAndServe())
}
