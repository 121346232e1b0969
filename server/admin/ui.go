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
// ui/dist without source maps (1.3 MB), with the package's LICENSE (MIT);
// vendor-ui.sh copies it.
//
//go:embed ui
var ui embed.FS

// UI returns an http.Handler serving the Socket.IO Admin UI (its index
// page at "/"), for a mux under a prefix with http.StripPrefix:
//
//	mux.Handle("/admin/", http.StripPrefix("/admin", admin.UI()))
//
// The files are embedded in the program: nothing is fetched from npm or a
// CDN at run time, except the UI's web fonts and icons, which its page
// links from fonts.googleapis.com and cdn.jsdelivr.net (without them, the
// UI works with the browser's fonts and without icons). Its script and
// style files have content-hashed names and are served as immutable.
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
		if strings.HasPrefix(name, "js/") || strings.HasPrefix(name, "css/") || strings.HasPrefix(name, "img/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, time.Time{}, rs)
	})
}
