package main

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

// web holds the page and the socket.io browser client, vendored from the
// npm package socket.io-client 4.8.1 (MIT, web/socket.io-client.LICENSE;
// web/README.md says how to update it).
//
//go:embed web/index.html web/app.js web/style.css web/socket.io.min.js web/socket.io-client.LICENSE
var web embed.FS

var pageTemplate = template.Must(template.ParseFS(web, "web/index.html"))

// pageData fills the page's template.
type pageData struct {
	Namespace string // the namespace the page connects to unless ?ns= says
	Room      string // the room it joins unless ?rooms= says
	Hint      string // the sioemit command to try, "" without a broker
}

// securityHeaders are sent with the page and its files: everything from
// this origin only (the socket.io connection included), no framing.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// pageRoutes adds the page at / and its script and style.
func (g *gateway) pageRoutes(mux *http.ServeMux) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, pageData{Namespace: g.o.namespaces[0], Room: PageRoom, Hint: g.hint}); err != nil {
		panic(err) // a fixed template over plain strings
	}
	page := b.Bytes()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(page)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // no icon, and no 404 in the browser's console
	})
	for _, name := range []string{"app.js", "style.css", "socket.io-client.LICENSE"} {
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			securityHeaders(w)
			if name == "socket.io-client.LICENSE" {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			}
			http.ServeFileFS(w, r, web, "web/"+name)
		})
	}
}

// serveClient serves the socket.io browser client.
func serveClient(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	http.ServeFileFS(w, r, web, "web/socket.io.min.js")
}
