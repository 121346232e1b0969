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
// For a cluster, -url takes several servers (clients connect round-robin)
// and -publish has the ticks published to room "bench" through the broker
// with the Go emitter (-dialect, -channel) instead of a client's event; each
// tick carries (timestamp, number).
//
//	go run ./bench/loadgen -url ws://127.0.0.1:3000 -clients 5000 -rate 20 -duration 10s -pid PID
//	go run ./bench/loadgen -url ws://127.0.0.1:3101,ws://127.0.0.1:3102 -publish redis://127.0.0.1:6379 -dialect node -channel KEY
//	go run ./bench/loadgen -url ws://127.0.0.1:3000 -storm -clients 18000 -concurrency 512 -pid PID
package main

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/siobridge/siobridge/emitter"
	"github.com/siobridge/siobridge/internal/brokerflags"
	"github.com/siobridge/siobridge/internal/dialectname"
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
	got    int   // ticks received (measured ones)
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
	hosts   []string // servers, used in turn
	nextH   atomic.Uint32
	timeout time.Duration // for the whole set-up of one client
	local   []net.Addr    // source addresses, used in turn; none: the kernel's choice
	next    atomic.Uint32
}

func (d *dialer) dial() (*client, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: -1} // no keep-alive: four system calls fewer per client
	if len(d.local) > 0 {
		nd.LocalAddr = d.local[int(d.next.Add(1))%len(d.local)]
	}
	host := d.hosts[int(d.nextH.Add(1)-1)%len(d.hosts)]
	conn, err := nd.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	c, err := setUp(conn, host, time.Now().Add(d.timeout))
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

// tickSource sends one tick: ts is its timestamp (unix ns; -1 for the
// warm-up), seq its number.
type tickSource func(ts, seq int64) error

// clientTicks has one more client emit "fanout" with the timestamp; the
// server broadcasts it to room "bench" (examples/bench, sio-bench-server.js).
func clientTicks(d *dialer) (tickSource, func(), error) {
	sender, err := d.dial()
	if err != nil {
		return nil, nil, fmt.Errorf("sender: %w", err)
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
	send := func(ts, _ int64) error { return sender.writeText(fmt.Appendf(nil, `42["fanout",%d]`, ts)) }
	return send, func() { sender.conn.Close() }, nil
}

// publishedTicks publishes "tick" (timestamp, number) to room "bench"
// through the broker with the Go emitter, as an external process would:
// every node of the cluster delivers it to its clients in the room.
func publishedTicks(rawURL, dialectName, channel string) (tickSource, func(), error) {
	d, err := dialectname.New(dialectName, channel)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bus, err := brokerflags.Open(ctx, rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("publisher: %w", err)
	}
	em := emitter.New(bus, d)
	room := em.To("bench")
	send := func(ts, seq int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return room.Emit(ctx, "tick", ts, seq)
	}
	return send, func() { em.Close(); bus.Close() }, nil
}

// tickTime is the timestamp of a tick payload (the first argument; a float
// too, should a peer re-encode the integer as one).
func tickTime(p []byte) (int64, bool) {
	p = p[len(tickPrefix):]
	if i := bytes.IndexAny(p, ",]"); i >= 0 {
		p = p[:i]
	}
	if ts, err := strconv.ParseInt(string(p), 10, 64); err == nil {
		return ts, true
	}
	f, err := strconv.ParseFloat(string(p), 64)
	return int64(f), err == nil
}

func main() {
	rawURL := flag.String("url", "ws://127.0.0.1:3000", "server URL; several comma-separated: clients connect to them round-robin")
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
	drain := flag.Duration("drain", 10*time.Second, "wait at most this long after the last tick for the rest to arrive")
	publish := flag.String("publish", "", "broker URL: publish the ticks to room \"bench\" with the Go emitter instead of a client's \"fanout\" event")
	dialectName := flag.String("dialect", "node", "dialect of -publish: python | python-pickle | node")
	channel := flag.String("channel", "", "python channel / node key prefix of -publish (default: the dialect's)")
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
	d := &dialer{timeout: *timeout}
	for _, s := range strings.Split(*rawURL, ",") {
		u, err := url.Parse(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		d.hosts = append(d.hosts, u.Host)
	}
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
		c.got++
		now := time.Now().UnixNano()
		c.last = now
		if c.sample {
			if ts, ok := tickTime(p); ok {
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
	var send tickSource
	var closeSource func()
	if *publish != "" {
		send, closeSource, err = publishedTicks(*publish, *dialectName, *channel)
	} else {
		send, closeSource, err = clientTicks(&dialer{hosts: d.hosts[:1], timeout: *timeout, local: d.local})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	sendErrs := 0
	var firstSendErr error
	// Tick i is due at i/rate after the start; a late one is sent at once,
	// so every run offers rate*duration ticks however busy the machine.
	interval := time.Second / time.Duration(*rate)
	schedule := func(d time.Duration, f func(i int)) time.Time {
		t0 := time.Now()
		for i := 0; i < int(d/interval); i++ {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * interval)))
			f(i)
		}
		return t0
	}
	schedule(*warmup, func(int) { send(-1, -1) })
	if *warmup > 0 {
		time.Sleep(time.Second) // let the warm-up drain
	}
	sent := 0
	start := schedule(*dur, func(i int) {
		if err := send(time.Now().UnixNano(), int64(i)); err != nil {
			sendErrs++
			if firstSendErr == nil {
				firstSendErr = err
			}
			return
		}
		sent++
	})
	if firstSendErr != nil {
		fmt.Fprintln(os.Stderr, "loadgen: first failed send:", firstSendErr)
	}
	// drain: until everything arrived, nothing more for 2 s, or -drain (a
	// server that fell behind delivers its backlog late: what arrives by
	// then counts in the rate; "undelivered" is the backlog left and lost)
	expected := int64(sent * len(conns))
	for prev, idle, t0 := int64(-1), 0, time.Now(); idle < 20 && time.Since(t0) < *drain; {
		time.Sleep(100 * time.Millisecond)
		got := delivered.Load()
		if got >= expected {
			break
		}
		if got == prev {
			idle++
		} else {
			idle = 0
		}
		prev = got
	}
	got := delivered.Load()
	readers.stop()
	for _, c := range conns {
		c.conn.Close()
	}
	closeSource()
	// the rate is over the time from the first fanout to the last tick
	var last int64
	undelivered, dups := 0, 0
	for _, c := range conns {
		last = max(last, c.last)
		undelivered += max(0, sent-c.got)
		dups += max(0, c.got-sent)
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
		"expected": expected, "delivered": got, "undelivered": undelivered, "duplicates": dups,
		"delivered_per_s": float64(got) / elapsed.Seconds(),
		"p50_ms":          pct(0.50), "p99_ms": pct(0.99),
	}
	if sendErrs > 0 {
		res["send_errors"] = sendErrs
	}
	if *pid > 0 && len(conns) > 0 {
		res["rss_before"] = rssBefore
		res["rss_idle"] = rssIdle
		res["rss_per_conn"] = float64(rssIdle-rssBefore) / float64(len(conns))
	}
	mu.Unlock()
	json.NewEncoder(os.Stdout).Encode(res)
}
