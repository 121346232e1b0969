// Command bench is the server side of the fan-out benchmark (identical to
// bench/node/sio-bench-server.js on socket.io 4.8): on "join" the socket
// joins the room named by the argument (acknowledged, with no arguments,
// when the client asks); on "fanout" the server emits
// "tick" with the same argument to room "bench". WebSocket transport.
//
// With -url it is one node of a cluster (server.WithAdapter on that broker,
// -dialect and -channel as sioserver's flags): the "fanout" broadcast then
// also reaches the other nodes' clients, and what an emitter publishes to
// room "bench" reaches this node's clients (bench/run-cluster.sh).
//
//	go run ./examples/bench -addr :3000 [-url redis://127.0.0.1:6379 -dialect node -channel KEY] [-cpuprofile cpu.out]
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/siobridge/siobridge/internal/brokerflags"
	"github.com/siobridge/siobridge/internal/dialectname"
	"github.com/siobridge/siobridge/server"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	memprofile := flag.String("memprofile", "", "write a heap profile to this file at SIGINT/SIGTERM")
	busURL := flag.String("url", "", "broker URL: join the cluster on it (default: single process)")
	dialectName := flag.String("dialect", "node", "cluster dialect with -url: python | python-pickle | node")
	channel := flag.String("channel", "", "python channel / node key prefix with -url (default: the dialect's)")
	detach := flag.Bool("detach", false, "broadcast each fanout on a goroutine of its own: the handler does not wait for the cluster publish (the sender's next event is not held up by it)")
	flag.Parse()
	opts := []server.Option{server.WithTransports("websocket")}
	if *busURL != "" {
		d, err := dialectname.New(*dialectName, *channel)
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		bus, err := brokerflags.Open(ctx, *busURL)
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, server.WithAdapter(bus, d))
	}
	srv := server.New(opts...)
	srv.On("/", "join", func(s *server.Socket, room string) { s.Join(room) })
	bench := srv.Of("/").To("bench")
	if *detach {
		srv.On("/", "fanout", func(s *server.Socket, arg any) { go bench.Emit("tick", arg) })
	} else {
		srv.On("/", "fanout", func(s *server.Socket, arg any) { bench.Emit("tick", arg) })
	}
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
	if *busURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		srv.Of("/") // the namespace's subscription
		if err := srv.AdapterReady(ctx); err != nil {
			log.Fatal(err)
		}
		cancel()
	}
	ln, err := srv.Listen(*addr) // refuses clients beyond the descriptor limit at once
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("bench server on %s", *addr)
	log.Fatal(server.NewHTTPServer(*addr, mux).Serve(ln))
}
