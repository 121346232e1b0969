// Command bench is the server side of the fan-out benchmark (identical to
// bench/node/sio-bench-server.js on socket.io 4.8): on "join" the socket
// joins the room named by the argument (acknowledged, with no arguments,
// when the client asks); on "fanout" the server emits
// "tick" with the same argument to room "bench". WebSocket transport.
//
//	go run ./examples/bench -addr :3000 [-cpuprofile cpu.out]
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/siobridge/siobridge/server"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	memprofile := flag.String("memprofile", "", "write a heap profile to this file at SIGINT/SIGTERM")
	flag.Parse()
	srv := server.New(server.WithTransports("websocket"))
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	bench := srv.Of("/").To("bench")
	srv.On("/", "fanout", func(s *server.Socket, arg any) { bench.Emit("tick", arg) })
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	if *cpuprofile != "" || *memprofile != "" {
		var cpu *os.File
		if *cpuprofile != "" {
			var err error
			if cpu, err = os.Create(*cpuprofile); err != nil {
				log.Fatal(err)
			}
			pprof.StartCPUProfile(cpu)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-sig
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			if *memprofile != "" {
				if f, err := os.Create(*memprofile); err == nil {
					runtime.GC()
					pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
			os.Exit(0)
		}()
	}
	ln, err := srv.Listen(*addr) // refuses clients beyond the descriptor limit at once
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("bench server on %s", *addr)
	log.Fatal(server.NewHTTPServer(*addr, mux).Serve(ln))
}
