package engineio

import (
	"net/http"
	"strings"
)

// originRefusal is python-engineio's answer to a request from an origin it
// does not accept (400, text/plain).
const originRefusal = "Not an accepted origin."

// originAllowed reports whether r may use the endpoint, as python-engineio
// decides it (cors_allowed_origins):
//
//   - a request without an Origin header (not sent by a browser page) is
//     allowed;
//   - with Options.CheckOrigin set, it decides;
//   - with Options.CORS listing origins, the Origin must be one of them
//     ("*" accepts every origin);
//   - otherwise the Origin must be the request's own origin: "http://" or,
//     over TLS, "https://" followed by the Host header. Behind a proxy that
//     sets X-Forwarded-Proto or X-Forwarded-Host, the origin they describe
//     (their first values) is accepted too.
//
// A browser cannot set Host or X-Forwarded-* on a WebSocket handshake nor
// on a simple cross-origin request, so a page of another site is refused.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if s.o.CheckOrigin != nil {
		return s.o.CheckOrigin(origin, r)
	}
	if c := s.o.CORS; c != nil && len(c.Origins) > 0 {
		for _, o := range c.Origins {
			if o == "*" || o == origin {
				return true
			}
		}
		return false
	}
	return sameOrigin(origin, r)
}

// sameOrigin reports whether origin is r's own origin.
func sameOrigin(origin string, r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if origin == scheme+"://"+r.Host {
		return true
	}
	fproto, fhost := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host")
	if fproto == "" && fhost == "" {
		return false
	}
	if fproto != "" {
		scheme = firstValue(fproto)
	}
	host := r.Host
	if fhost != "" {
		host = firstValue(fhost)
	}
	return origin == scheme+"://"+host
}

// firstValue is the first of a header's comma-separated values.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// refuseOrigin answers a request whose origin is not accepted.
func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request) {
	s.log.Info("engineio: refusing a request from an origin that is not accepted",
		"origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusBadRequest)
	w.Write([]byte(originRefusal))
}
