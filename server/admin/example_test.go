package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/admin"
	"github.com/siobridge/siobridge/server/servertest"
)

// Instrument a server for the Socket.IO Admin UI and serve the UI at
// /admin/. Here a Go client plays the UI: it logs in to the namespace
// /admin and receives the server's features.
func ExampleInstrument() {
	srv := server.New()
	a, err := admin.Instrument(srv, admin.Options{Auth: admin.Basic("admin", "secret"), ReadOnly: true})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI())) // open http://host:port/admin/
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ui, err := servertest.Dial(hs.URL, servertest.Options{})
	if err != nil {
		panic(err)
	}
	defer ui.Close()
	fmt.Println(ui.Connect("/admin", map[string]string{"username": "admin", "password": "wrong"}))
	if err := ui.Connect("/admin", map[string]string{"username": "admin", "password": "secret"}); err != nil {
		panic(err)
	}
	got, _ := ui.WaitFor("/admin", "config", 5*time.Second)
	for _, e := range got {
		if e.Event == "config" {
			fmt.Println(e.Args[0])
		}
	}
	// Output:
	// connection refused: invalid credentials
	// map[supportedFeatures:[AGGREGATED_EVENTS ALL_EVENTS]]
}
