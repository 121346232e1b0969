package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/metrics"
	"github.com/siobridge/siobridge/server/servertest"
)

// Serving /metrics next to Socket.IO. With a bus (WithAdapter or
// ConsumeQueue), pass it in Options.Bus for the siobridge_bus_ metrics.
func ExampleHandler() {
	srv := server.New()
	defer srv.Shutdown(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/metrics", metrics.Handler(srv, metrics.Options{}))
	hs := httptest.NewServer(mux)
	defer hs.Close()

	c, _ := servertest.Dial(hs.URL, servertest.Options{})
	defer c.Close()
	c.Connect("/", nil)
	srv.Emit("hello")

	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range []string{"siobridge_clients{", "siobridge_sockets ", "siobridge_broadcast_deliveries_total "} {
			if strings.HasPrefix(line, name) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// siobridge_broadcast_deliveries_total 1
	// siobridge_clients{transport="polling"} 0
	// siobridge_clients{transport="websocket"} 1
	// siobridge_sockets 1
}
