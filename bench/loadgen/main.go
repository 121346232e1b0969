//go:build linux

// Command loadgen is the load generator of the fan-out benchmark: it
// connects N WebSocket clients to a Socket.IO server, has them join room
// "bench", then one more client emits "fanout" R times a second for D; the
// server broadcasts "tick" to the room. It reports delivered messages per
// second and the fanout-to-receive latency (p50, p99), and the server's
// RSS per idle connection when given its pid. One JSON line on stdout.
// With -storm it measures a connection storm instead (see runStorm).
//
// It speaks WebSocket, Engine.IO v4 and Socket.IO v5 itself over plain TCP
// and, once the clients are connected, reads them with one epoll loop per
// core (no goroutine wake-up per message, no allocation per message), so
// that its own cost stays small next to the server's: on a shared machine
// the load generator must not be what saturates.
//
//	go run ./bench/loadgen -url ws://127.0.0.1:3000 -clients 5000 -rate 20 -duration 10s -pid PID
//	go run ./bench/loadgen -url ws://127.0.0.1:3000 -storm -clients 18000 -concurrency 512 -pid PID
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/siobridge/siobridge/internal/ws"
)

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// client is one WebSocket connection with a frame reader over buf.
type client struct {
	last   int64 // unix ns of the last tick received
	sample bool  // its latencies are recorded
	fd     int
	conn   net.Conn
	buf    []byte
	r, w   int // unread bytes are buf[r:w]
}

// writeText sends one masked text frame.
func (c *client) writeText(p []byte) error {
	var buf [64]byte
	_, err := c.conn.Write(ws.AppendClientFrame(buf[:0], 0x81, p, [4]byte{})) // zero key: no masking cost
	return err
}

// next returns the payload of the next data frame (valid until the next
// call); it answers WebSocket pings itself.
func (c *client) next() (op byte, p []byte, err error) {
	for {
		if op, p, ok := c.parse(); ok {
			switch op {
			case 0x9:
				continue
			case 0x8:
				return 0, nil, errors.New("closed by server")
			}
			return op, p, nil
		}
		if c.r > 0 { // compact
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		if c.w == len(c.buf) {
			c.buf = append(c.buf, make([]byte, len(c.buf))...)
		}
		n, err := c.conn.Read(c.buf[c.w:])
		if err != nil {
			return 0, nil, err
		}
		c.w += n
	}
}

func (c *client) parse() (byte, []byte, bool) {
	b := c.buf[c.r:c.w]
	if len(b) < 2 {
		return 0, nil, false
	}
	n, pos := int(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil, false
		}
		n, pos = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, false
		}
		n, pos = int(binary.BigEndian.Uint64(b[2:])), 10
	}
	if len(b) < pos+n {
		return 0, nil, false
	}
	c.r += pos + n
	return b[0] & 0x0f, b[pos : pos+n], true
}

// dialer opens clients: WebSocket handshake, Socket.IO CONNECT to "/",
// and "join" of room "bench" with an acknowledgement, so that a client is
// in the room when dial returns.
type dialer struct {
	host    string
	timeout time.Duration // for the whole set-up of one client
	local   []net.Addr    // source addresses, used in turn; none: the kernel's choice
	next    atomic.Uint32
}

func (d *dialer) dial() (*client, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: -1} // no keep-alive: four system calls fewer per client
	if len(d.local) > 0 {
		nd.LocalAddr = d.local[int(d.next.Add(1))%len(d.local)]
	}
	conn, err := nd.Dial("tcp", d.host)
	if err != nil {
		return nil, err
	}
	c, err := setUp(conn, d.host, time.Now().Add(d.timeout))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// setUp runs the handshakes on conn and joins room "bench".
func setUp(conn net.Conn, host string, deadline time.Time) (*client, error) {
	conn.SetDeadline(deadline)
	var key [16]byte
	rand.Read(key[:])
	fmt.Fprintf(conn, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		host, base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReaderSize(conn, 4096)
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.Contains(status, " 101 ") {
		return nil, fmt.Errorf("handshake: %s", strings.TrimSpace(status))
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if l == "\r\n" {
			break
		}
	}
	c := &client{conn: conn, buf: make([]byte, 4096)}
	c.w = copy(c.buf, func() []byte { b, _ := br.Peek(br.Buffered()); return b }())
	if _, _, err := c.next(); err != nil { // open
		return nil, err
	}
	if err := c.writeText([]byte("40")); err != nil {
		return nil, err
	}
	if err := c.await("40"); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := c.writeText([]byte(`421["join","bench"]`)); err != nil {
		return nil, err
	}
	if err := c.await("431"); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// await reads messages until one starts with prefix, answering pings.
func (c *client) await(prefix string) error {
	for {
		_, p, err := c.next()
		if err != nil {
			return err
		}
		if bytes.HasPrefix(p, []byte(prefix)) {
			return nil
		}
		if len(p) == 1 && p[0] == '2' {
			c.writeText([]byte("3"))
		}
	}
}

var tickPrefix = []byte(`42["tick",`)

func main() {
	rawURL := flag.String("url", "ws://127.0.0.1:3000", "server URL")
	n := flag.Int("clients", 5000, "clients in the room")
	rate := flag.Int("rate", 20, "fanout events per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "send at the same rate this long first, not measured (JIT, TCP quick-ack mode, caches)")
	pid := flag.Int("pid", 0, "server pid, for RSS (and CPU time in -storm)")
	storm := flag.Bool("storm", false, "connection storm: open -clients at once, report accepted connections per second (see storm.go)")
	concurrency := flag.Int("concurrency", 512, "connections being set up at once, at most")
	timeout := flag.Duration("timeout", 30*time.Second, "set-up time allowed to one client")
	local := flag.String("local", "", "comma-separated source IPs used in turn (e.g. 127.0.0.2,127.0.0.3: more ephemeral ports)")
	cpuprofile := flag.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}

	d := &dialer{host: u.Host, timeout: *timeout}
	for _, ip := range strings.Split(*local, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(ip, "0"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "loadgen: -local:", err)
				os.Exit(2)
			}
			d.local = append(d.local, a)
		}
	}

	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if *storm {
		runStorm(d, *n, *concurrency, *pid)
		return
	}
	rssBefore := rss(*pid)

	o := openAll(d, *n, *concurrency)
	conns, failed, firstErr := o.conns, o.failed, o.firstErr
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "loadgen: first failed connect:", firstErr)
	}
	time.Sleep(time.Second) // let joins land and the server settle
	rssIdle := rss(*pid)

	var delivered atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	for i, c := range conns {
		c.sample = i%50 == 0 // latency from every 50th client
	}
	// handle runs for every message a client receives
	handle := func(c *client, p []byte) {
		if len(p) == 1 && p[0] == '2' {
			c.writeText([]byte("3"))
			return
		}
		if !bytes.HasPrefix(p, tickPrefix) || p[len(tickPrefix)] == '-' { // warm-up ticks carry -1
			return
		}
		delivered.Add(1)
		now := time.Now().UnixNano()
		c.last = now
		if c.sample {
			ts, err := strconv.ParseInt(string(bytes.TrimSuffix(p[len(tickPrefix):], []byte("]"))), 10, 64)
			if err == nil {
				mu.Lock()
				lat = append(lat, time.Duration(now-ts))
				mu.Unlock()
			}
		}
	}
	readers, err := startReaders(conns, handle)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	sender, err := d.dial()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
	go func() {
		for {
			_, p, err := sender.next()
			if err != nil {
				return
			}
			if len(p) == 1 && p[0] == '2' {
				sender.writeText([]byte("3"))
			}
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	for t0 := time.Now(); time.Since(t0) < *warmup; {
		<-tick.C
		sender.writeText([]byte(`42["fanout",-1]`))
	}
	tick.Stop()
	if *warmup > 0 {
		time.Sleep(time.Second) // let the warm-up drain
	}
	tick = time.NewTicker(time.Second / time.Duration(*rate))
	start := time.Now()
	sent := 0
	for time.Since(start) < *dur {
		<-tick.C
		sender.writeText(fmt.Appendf(nil, `42["fanout",%d]`, time.Now().UnixNano()))
		sent++
	}
	tick.Stop()
	time.Sleep(2 * time.Second) // drain
	got := delivered.Load()
	readers.stop()
	for _, c := range conns {
		c.conn.Close()
	}
	sender.conn.Close()
	// the rate is over the time from the first fanout to the last tick
	var last int64
	for _, c := range conns {
		last = max(last, c.last)
	}
	elapsed := time.Duration(last - start.UnixNano())

	mu.Lock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	res := map[string]any{
		"clients": len(conns), "failed_connects": failed, "events_sent": sent,
		"expected": sent * len(conns), "delivered": got,
		"delivered_per_s": float64(got) / elapsed.Seconds(),
		"p50_ms":          pct(0.50), "p99_ms": pct(0.99),
	}
	if *pid > 0 && len(conns) > 0 {
		res["rss_before"] = rssBefore
		res["rss_idle"] = rssIdle
		res["rss_per_conn"] = float64(rssIdle-rssBefore) / float64(len(conns))
	}
	mu.Unlock()
	json.NewEncoder(os.Stdout).Encode(res)
}
