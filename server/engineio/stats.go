package engineio

// CountByTransport returns the number of open sessions on each transport.
// A session being upgraded counts as polling until its upgrade completes.
// It walks the sessions (O(sessions)): meant for monitoring, not for a hot
// path.
func (s *Server) CountByTransport() (polling, websocket int) {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		if c.transportName() == "websocket" {
			websocket++
		} else {
			polling++
		}
	}
	return polling, websocket
}
