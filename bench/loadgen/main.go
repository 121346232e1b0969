// Command loadgen is the load generator of the fan-out benchmark: it
// connects N WebSocket clients to a Socket.IO server (speaking Engine.IO v4
// / Socket.IO v5 directly, to keep its own cost low), has them join room
// "bench", then one more client emits "fanout" R times a second for D; the
// server broadcasts "tick" to the room. It reports delivered messages per
// second and the fanout-to-receive latency (p50, p99), and the server's
// RSS per idle connection when given its pid. One JSON line on stdout.
//
//	go run ./bench/loadgen -url ws://127.0.0.1:3000 -clients 5000 -rate 20 -duration 10s -pid PID
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
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

type client struct {
	c *websocket.Conn
}

func dial(ctx context.Context, url string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, url+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	if _, _, err := c.Read(ctx); err != nil { // open
		return nil, err
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("40")); err != nil {
		return nil, err
	}
	for {
		_, p, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		if bytes.HasPrefix(p, []byte("40")) {
			break
		}
	}
	return c, c.Write(ctx, websocket.MessageText, []byte(`42["join","bench"]`))
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:3000", "server URL")
	n := flag.Int("clients", 5000, "clients in the room")
	rate := flag.Int("rate", 20, "fanout events per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	pid := flag.Int("pid", 0, "server pid, for RSS")
	flag.Parse()

	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rssBefore := rss(*pid)

	var delivered atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, 0, *n)
	sem := make(chan struct{}, 100)
	var cmu sync.Mutex
	failed := 0
	for i := 0; i < *n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			c, err := dial(dctx, *url)
			dcancel()
			cmu.Lock()
			defer cmu.Unlock()
			if err != nil {
				failed++
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	time.Sleep(time.Second) // let joins land and the server settle
	rssIdle := rss(*pid)

	var readers sync.WaitGroup
	for i, c := range conns {
		sample := i%50 == 0 // latency from every 50th client
		readers.Add(1)
		go func(c *websocket.Conn) {
			defer readers.Done()
			for {
				_, p, err := c.Read(ctx)
				if err != nil {
					return
				}
				if len(p) == 1 && p[0] == '2' {
					c.Write(ctx, websocket.MessageText, []byte("3"))
					continue
				}
				if !bytes.HasPrefix(p, []byte(`42["tick",`)) {
					continue
				}
				delivered.Add(1)
				if sample {
					ts, err := strconv.ParseInt(string(bytes.TrimSuffix(p[len(`42["tick",`):], []byte("]"))), 10, 64)
					if err == nil {
						d := time.Duration(time.Now().UnixNano() - ts)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}
			}
		}(c)
	}
	sender, err := dial(ctx, *url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
	go func() {
		for {
			_, p, err := sender.Read(ctx)
			if err != nil {
				return
			}
			if len(p) == 1 && p[0] == '2' {
				sender.Write(ctx, websocket.MessageText, []byte("3"))
			}
		}
	}()
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	sent := 0
	for time.Since(start) < *dur {
		<-tick.C
		sender.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`42["fanout",%d]`, time.Now().UnixNano())))
		sent++
	}
	tick.Stop()
	time.Sleep(2 * time.Second) // drain
	elapsed := time.Since(start)
	got := delivered.Load()
	cancel()
	for _, c := range conns {
		c.CloseNow()
	}
	sender.CloseNow()
	readers.Wait()

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
