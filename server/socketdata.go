package server

// Data returns the value that SetData attached to the socket (nil
// before), like Node's socket.data: per connection to a namespace, kept in
// memory for the socket's life and never sent anywhere. Package
// server/jwtauth keeps a verified token's claims there.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData attaches v to the socket, replacing what was attached; see Data.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}
