package server

import "sort"

// NamespaceNames returns the names of srv's namespaces, for tests.
func NamespaceNames(srv *Server) []string {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	out := make([]string, 0, len(srv.nsps))
	for name := range srv.nsps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
