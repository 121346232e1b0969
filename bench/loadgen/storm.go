//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runStorm is the connection storm (-storm): when a node dies its clients
// reconnect to the others at once. It sets up n clients (WebSocket
// handshake, Socket.IO CONNECT, "join" acknowledged) with at most
// concurrency of them in progress, every client kept open until the end,
// and prints one JSON line: accepted connections per second over the time
// from the first dial to the last join acknowledgement, the set-up latency
// of one client (p50, p99, max), the failures (and settled_s, when the
// last client was set up or had failed), and, given the server's pid,
// the CPU time the server spent (a figure less sensitive than the rate to
// other load on a shared machine).
func runStorm(d *dialer, n, concurrency, pid int) {
	cpu0, self0 := cpuTime(pid), selfCPU()
	start := time.Now()
	o := openAll(d, n, concurrency)
	cpu1, self1 := cpuTime(pid), selfCPU()
	conns, lat := o.conns, o.lat
	elapsed := o.last.Sub(start)
	for _, c := range conns { // a reset each: no TIME_WAIT left to the next run
		if tc, ok := c.conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.conn.Close()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	res := map[string]any{
		"clients": n, "accepted": len(conns), "failed": o.failed, "concurrency": concurrency,
		"elapsed_s": elapsed.Seconds(), "settled_s": o.settled.Sub(start).Seconds(), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1),
		"loadgen_cpu_s": (self1 - self0).Seconds(),
	}
	if elapsed > 0 {
		res["accepted_per_s"] = float64(len(conns)) / elapsed.Seconds()
	}
	if o.firstErr != nil {
		res["first_error"] = o.firstErr.Error()
	}
	if pid > 0 && cpu0 >= 0 && cpu1 >= 0 {
		res["server_cpu_s"] = (cpu1 - cpu0).Seconds()
		res["server_rss"] = rss(pid)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// cpuTime returns the user+system CPU time of process pid so far, or -1.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	// the fields after the command name (which may hold spaces): state is
	// field 3, utime 14 and stime 15, in clock ticks (USER_HZ, 100 on Linux)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(u+k) * 10 * time.Millisecond
}

// selfCPU returns the load generator's own CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// opened is the outcome of openAll.
type opened struct {
	conns    []*client
	lat      []time.Duration // set-up time of each client in conns
	last     time.Time       // when the last one was set up
	settled  time.Time       // when the last one was set up or failed
	failed   int
	firstErr error
}

// openAll sets up n clients with at most concurrency in progress at once.
func openAll(d *dialer, n, concurrency int) *opened {
	o := &opened{conns: make([]*client, 0, n), lat: make([]time.Duration, 0, n)}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	sem := make(chan struct{}, max(concurrency, 1))
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			c, err := d.dial()
			t1 := time.Now()
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if t1.After(o.settled) {
				o.settled = t1
			}
			if err != nil {
				o.failed++
				if o.firstErr == nil {
					o.firstErr = err
				}
				return
			}
			o.conns = append(o.conns, c)
			o.lat = append(o.lat, t1.Sub(t0))
			if t1.After(o.last) {
				o.last = t1
			}
		}()
	}
	wg.Wait()
	return o
}
