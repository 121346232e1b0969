// Command conformance serves the reference behaviour of the official
// Engine.IO and Socket.IO protocol test suites on one dual-stack listener:
// /engine.io/ (echo) and /socket.io/ (namespaces "/" and "/custom").
//
//	go run ./examples/conformance -addr :3000
//
// then run the suites (socketio/engine.io-protocol and
// socketio/socket.io-protocol, test-suite/) with npx mocha.
package main

import (
	"flag"
	"log"

	"github.com/siobridge/siobridge/internal/conformance"
	"github.com/siobridge/siobridge/server"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	flag.Parse()
	h := conformance.Handler()
	log.Printf("conformance server on %s (/engine.io/, /socket.io/)", *addr)
	log.Fatal(server.NewHTTPServer(*addr, h).ListenAndServe())
}
