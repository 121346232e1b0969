// Command worker is the "Celery worker" of the Flask-SocketIO docs written
// in Go: a process that is not a Socket.IO server emits to the clients of
// one through the message queue.
//
//	go run ./examples/worker -url redis://127.0.0.1:6379/0 -room news
//
// It emits a "news" event to the room every second until interrupted (or
// -count times). Start a Flask-SocketIO server with
// message_queue='redis://127.0.0.1:6379/0' (or a Node socket.io server with
// @socket.io/redis-adapter and -dialect node) to see the events arrive.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/siobridge/siobridge/adapter/redis"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/queue"
)

func main() {
	url := flag.String("url", "redis://127.0.0.1:6379/0", "broker URL")
	dialectName := flag.String("dialect", "python-pickle", "python | python-pickle | node")
	channel := flag.String("channel", "", "channel (default flask-socketio), or key prefix for node (default socket.io)")
	ns := flag.String("namespace", "/", "namespace")
	room := flag.String("room", "news", "room to emit to (empty: everybody)")
	count := flag.Int("count", 0, "stop after this many emits (0: until interrupted)")
	every := flag.Duration("every", time.Second, "interval between emits")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var d dialect.Dialect
	switch *dialectName {
	case "python":
		d = python.New(python.Options{Channel: *channel})
	case "python-pickle":
		d = python.NewPickle(python.Options{Channel: *channel})
	case "node":
		d = node.New(node.Options{Key: *channel})
	default:
		fmt.Fprintf(os.Stderr, "worker: unknown dialect %q\n", *dialectName)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	bus, err := queue.Open(openCtx, *url)
	cancel()
	if err != nil {
		log.Error("cannot reach the broker", "err", err)
		os.Exit(1)
	}
	defer bus.Close()
	em := emitter.New(bus, d, emitter.WithLogger(log))
	defer em.Close()

	target := em.Of(*ns)
	if *room != "" {
		target = target.To(*room)
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	for i := 1; *count == 0 || i <= *count; i++ {
		emitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := target.Emit(emitCtx, "news", map[string]any{"n": i, "at": time.Now().UTC().Format(time.RFC3339)})
		cancel()
		if err != nil {
			log.Warn("emit failed", "n", i, "err", err)
		} else {
			log.Info("emitted", "event", "news", "n", i, "namespace", *ns, "room", *room)
		}
		if *count != 0 && i == *count {
			break
		}
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return
		case <-t.C:
		}
	}
}
