//go:build unix

package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siobridge/siobridge/server"
)

// pollingSession opens an Engine.IO polling session on srv through
// ServeHTTP (no network), connects it to "/" and reads the answer; it
// returns a function that reads (and discards) what the session queued.
func pollingSession(b *testing.B, srv *server.Server) (drain func()) {
	b.Helper()
	do := func(method, query, body string) string {
		req := httptest.NewRequest(method, "/socket.io/?EIO=4&transport=polling"+query, strings.NewReader(body))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s %s: %d %s", method, query, w.Code, w.Body)
		}
		out, _ := io.ReadAll(w.Body)
		return string(out)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(do("GET", "", ""), "0")), &open); err != nil {
		b.Fatal(err)
	}
	q := "&sid=" + open.Sid
	do("POST", q, "40")
	if got := do("GET", q, ""); !strings.HasPrefix(got, "40") {
		b.Fatalf("connect answered %q", got)
	}
	return func() { do("GET", q, "") }
}

// BenchmarkBroadcast measures the server's side of a broadcast to a room
// of n sockets: encoding once, selecting the room's sockets and queuing
// the packet to each (Engine.IO polling sessions, read outside the timed
// part so that no network cost hides the server's). It is the hot path
// that Stats counts on; compare it with the code before the counters to
// see their cost (docs/metrics.md).
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			srv := server.New()
			defer srv.Shutdown(b.Context())
			srv.OnConnect("/", func(s *server.Socket, _ json.RawMessage) error {
				s.Join("room")
				return nil
			})
			drains := make([]func(), n)
			for i := range drains {
				drains[i] = pollingSession(b, srv)
			}
			ns := srv.Of("/")
			b.ReportAllocs()
			b.ResetTimer()
			var cpu time.Duration // CPU time of the timed part: less sensitive than wall time to other load
			start := cpuTime()
			for i := range b.N {
				ns.To("room").Emit("headline", "hello")
				if i%256 == 255 { // well within the sessions' send queues
					b.StopTimer()
					cpu += cpuTime() - start
					for _, d := range drains {
						d()
					}
					start = cpuTime()
					b.StartTimer()
				}
			}
			cpu += cpuTime() - start
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
