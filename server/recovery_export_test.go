package server

import "time"

// SetRecoveryClock makes srv's connection state recovery read the time
// from now, for tests of expiry.
func SetRecoveryClock(srv *Server, now func() time.Time) { srv.recovery.now = now }
