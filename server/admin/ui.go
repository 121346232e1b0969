package admin

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// ui is the Admin UI's static build: npm package @socket.io/admin-ui's
// ui/dist without source maps (1.3 MB), with the package's LICENSE (MIT),
// and in fonts/ the web fonts its page links (woff2, 486 KB with their
// licences: Roboto from @fontsource-variable/roboto, OFL 1.1; Material
// Design Icons from @mdi/font, Apache 2.0), its index.html pointing at
// them instead of fonts.googleapis.com and cdn.jsdelivr.net.
// vendor-ui.sh copies it all.
//
//go:embed ui
var ui embed.FS

// UI returns an http.Handler serving the Socket.IO Admin UI (its index
// page at "/"), for a mux under a prefix with http.StripPrefix:
//
//	mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI()))
//
// The files are embedded in the program, its web fonts and icons
// included: the page loads nothing from npm, a CDN or any host but the
// server's. Its script, style and font files have content-hashed names
// and are served as immutable.
func UI() http.Handler {
	files, err := fs.Sub(ui, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		f, err := files.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		rs, seekable := f.(io.ReadSeeker)
		if err != nil || st.IsDir() || !seekable {
			http.NotFound(w, r)
			return
		}
		if hashed(name) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if strings.HasSuffix(name, ".woff2") { // not in Go's table of types
			w.Header().Set("Content-Type", "font/woff2")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, time.Time{}, rs)
	})
}

// hashed reports whether the file name carries a hash of its content (the
// UI's scripts, styles and images, the fonts and their style sheet), so
// that it can be cached for good; licences and the index page cannot.
func hashed(name string) bool {
	for _, dir := range []string{"js/", "css/", "img/", "fonts/"} {
		if strings.HasPrefix(name, dir) && !strings.HasPrefix(name, "fonts/LICENSE") {
			return true
		}
	}
	return false
}
