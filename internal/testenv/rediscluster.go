package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisBinaries returns the paths of redis-server and redis-cli, skipping
// (or, with SIOBRIDGE_REQUIRE_BROKERS, failing) the test without them.
func redisBinaries(t testing.TB) (server, cli string) {
	t.Helper()
	var err error
	if server, err = exec.LookPath("redis-server"); err == nil {
		cli, err = exec.LookPath("redis-cli")
	}
	if err != nil {
		if os.Getenv("SIOBRIDGE_REQUIRE_BROKERS") != "" {
			t.Fatalf("redis-server / redis-cli not installed: %v", err)
		}
		t.Skipf("redis-server / redis-cli not installed: %v", err)
	}
	return server, cli
}

// RedisCluster is a Redis Cluster made of private redis-server processes
// on loopback, stopped when the test ends.
type RedisCluster struct {
	t     testing.TB
	cli   string
	Nodes []*Process // masters first, then their replicas (as created)
}

// Addrs returns the addresses of every node, for a redis+cluster:// URL.
func (c *RedisCluster) Addrs() []string {
	a := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		a[i] = n.Addr
	}
	return a
}

// URL returns redis+cluster://addr1,addr2,... for every node.
func (c *RedisCluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") }

// StartRedisCluster starts masters × (1 + replicas) redis-server processes
// in cluster mode on free loopback ports, joins them with
// `redis-cli --cluster create` and waits until every node reports
// cluster_state:ok.
func StartRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	bin, cli := redisBinaries(t)
	c := &RedisCluster{t: t, cli: cli}
	for i := 0; i < masters*(1+replicas); i++ {
		port, busPort := FreePort(t), FreePort(t)
		dir := t.TempDir()
		p := &Process{t: t, name: bin, Addr: "127.0.0.1:" + strconv.Itoa(port),
			args: []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(busPort),
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0",
				"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", ""}}
		p.Start()
		t.Cleanup(p.Stop)
		c.Nodes = append(c.Nodes, p)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		c.waitInfo(n.Addr, "cluster_state", "ok", 30*time.Second)
	}
	// a replica that has not synced yet cannot take over: wait for links
	for _, n := range c.Nodes[masters:] {
		waitField(t, n.Addr, []string{"INFO", "replication"}, "master_link_status", "up", 30*time.Second)
	}
	return c
}

// waitInfo waits until CLUSTER INFO of addr reports field:want.
func (c *RedisCluster) waitInfo(addr, field, want string, timeout time.Duration) {
	c.t.Helper()
	waitField(c.t, addr, []string{"CLUSTER", "INFO"}, field, want, timeout)
}

// waitField waits until the INFO-style answer of cmd at addr reports
// field:want; the test fails after timeout.
func waitField(t testing.TB, addr string, cmd []string, field, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		info, err := RedisCommand(addr, cmd...)
		if err == nil && infoField(info, field) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis %s: %v: %s is not %q after %s (%v)", addr, cmd, field, want, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Master returns the node that serves key's slot now.
func (c *RedisCluster) Master(key string) *Process {
	c.t.Helper()
	if n := c.master(key); n != nil {
		return n
	}
	c.t.Fatalf("no master serves %q", key)
	return nil
}

// master returns the node that serves key's slot now, nil when none does
// (a node that does not answer is skipped).
func (c *RedisCluster) master(key string) *Process {
	for _, n := range c.Nodes {
		out, err := RedisCommand(n.Addr, "GET", key)
		if err == nil && !strings.HasPrefix(out, "MOVED") && !strings.HasPrefix(out, "CLUSTERDOWN") {
			if role, _ := RedisCommand(n.Addr, "ROLE"); strings.HasPrefix(role, "master") {
				return n
			}
		}
	}
	return nil
}

// WaitNewMaster waits until a node other than old serves key's slot (the
// replica of a killed master promoted by the cluster) and returns it; the
// test fails after timeout.
func (c *RedisCluster) WaitNewMaster(key string, old *Process, timeout time.Duration) *Process {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if n := c.master(key); n != nil && n != old {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no node took over %q from %s after %s", key, old.Addr, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RedisSentinel is a master, a replica and a sentinel watching them under
// the name MasterName, private redis-server processes on loopback.
type RedisSentinel struct {
	Master, Replica, Sentinel *Process
	MasterName                string
}

// URL returns the redis+sentinel:// URL of the sentinel.
func (s *RedisSentinel) URL() string {
	return "redis+sentinel://" + s.Sentinel.Addr + "/0/" + s.MasterName
}

// StartRedisSentinel starts a master, a replica of it and a sentinel
// (quorum 1, down after 1 s) and waits until the sentinel knows the
// replica.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	bin, _ := redisBinaries(t)
	start := func(extra ...string) *Process {
		port := FreePort(t)
		p := &Process{t: t, name: bin, Addr: "127.0.0.1:" + strconv.Itoa(port),
			args: append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
				"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--logfile", ""}, extra...)}
		p.Start()
		t.Cleanup(p.Stop)
		return p
	}
	s := &RedisSentinel{MasterName: "siobridge"}
	s.Master = start()
	host, port, _ := net.SplitHostPort(s.Master.Addr)
	s.Replica = start("--replicaof", host, port)
	sport := FreePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	cfg := fmt.Sprintf("bind 127.0.0.1\nport %d\nsentinel monitor %s %s %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
		sport, s.MasterName, host, port, s.MasterName, s.MasterName)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Sentinel = &Process{t: t, name: bin, Addr: "127.0.0.1:" + strconv.Itoa(sport), args: []string{conf, "--sentinel"}}
	s.Sentinel.Start()
	t.Cleanup(s.Sentinel.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := RedisCommand(s.Sentinel.Addr, "SENTINEL", "REPLICAS", s.MasterName)
		if err == nil && strings.Contains(out, s.Replica.Addr[strings.LastIndex(s.Replica.Addr, ":")+1:]) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel does not know the replica after 30 s: %q %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Failover runs SENTINEL FAILOVER, again while the sentinel answers that
// no replica is fit yet (NOGOODSLAVE: it has not checked the replica's
// link to the master since it learnt of it), for up to 30 s.
func (s *RedisSentinel) Failover(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := RedisCommand(s.Sentinel.Addr, "SENTINEL", "FAILOVER", s.MasterName)
		if err == nil && out == "OK" {
			return
		}
		if !strings.HasPrefix(out, "NOGOODSLAVE") || time.Now().After(deadline) {
			t.Fatalf("SENTINEL FAILOVER: %q %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CurrentMaster asks the sentinel for the master's address.
func (s *RedisSentinel) CurrentMaster() (string, error) {
	out, err := RedisCommand(s.Sentinel.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return "", fmt.Errorf("sentinel answered %q", out)
	}
	return net.JoinHostPort(f[0], f[1]), nil
}

// RedisCommand sends one command over a new connection (RESP) and returns
// the reply flattened to text: simple strings, errors and bulk strings as
// they are, arrays as their elements separated by spaces, nested arrays
// flattened. An error reply is returned as the text with a nil error.
func RedisCommand(addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	var parts []string
	if err := readRESP(r, &parts); err != nil {
		return "", err
	}
	return strings.Join(parts, " "), nil
}

func readRESP(r *bufio.Reader, parts *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return fmt.Errorf("empty RESP line")
	}
	switch line[0] {
	case '+', '-', ':':
		*parts = append(*parts, line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*parts = append(*parts, string(buf[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := readRESP(r, parts); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected RESP line %q", line)
	}
	return nil
}

// infoField returns the value of field in an INFO-style text.
func infoField(info, field string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == field {
			return v
		}
	}
	return ""
}
