package engineio

import (
	"maps"
	"net/http"
	"slices"
)

// maxSessionHeaderBytes bounds the headers that a session keeps of its
// handshake request (Conn.Request): 16 KB in all, Node's limit for a whole
// request header.
const maxSessionHeaderBytes = 16 << 10

// sessionRequest is the part of the handshake request r that a session
// keeps for its life (Conn.Request): method, URL, protocol, Host,
// RemoteAddr, TLS state, and the headers (cookies included) up to
// maxSessionHeaderBytes in all, taken in the order of their names; a
// header that does not fit in what is left is not kept. Not kept: the
// body, the context (the copy's is context.Background), forms, trailers.
// The rest of r, however large its headers were, is not referenced by the
// session.
func sessionRequest(r *http.Request) *http.Request {
	u := *r.URL
	c := &http.Request{Method: r.Method, URL: &u, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, TLS: r.TLS, Pattern: r.Pattern,
		Body: http.NoBody, Header: make(http.Header, len(r.Header))}
	left := maxSessionHeaderBytes
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		n := 0
		for _, v := range r.Header[k] {
			n += len(k) + len(v) + 4 // "k: v\r\n"
		}
		if n > left {
			continue
		}
		left -= n
		c.Header[k] = slices.Clone(r.Header[k])
	}
	return c
}
