package compat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	natsbus "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/dialect/node"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// isoCluster is two Go nodes on one channel, one client each in room r.
type isoCluster struct {
	d       dialect.Dialect
	srvs    []*server.Server
	clients []*servertest.Client
}

func startIsoCluster(t *testing.T, busURL string, d dialect.Dialect) *isoCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := &isoCluster{d: d}
	for range 2 {
		srv := server.New(server.WithAdapter(openBus(t, busURL), d))
		srv.On("/", "join", func(s *server.Socket, room string) bool { s.Join(room); return true })
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
		if err := srv.AdapterReady(ctx); err != nil {
			t.Fatal(err)
		}
		cl, err := servertest.New(srv, servertest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.Connect("/", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.EmitWithAck("/", 5*time.Second, "join", "r"); err != nil {
			t.Fatal(err)
		}
		c.srvs, c.clients = append(c.srvs, srv), append(c.clients, cl)
	}
	return c
}

// tap records every message on a cluster's channels, from a bus
// connection of its own. Where the cluster subscribes to patterns (node
// dialect), the tap subscribes to its channels as patterns too, so that
// PUBSUB NUMSUB does not count it as a server that must answer.
type tap struct {
	mu   sync.Mutex
	msgs []queue.Message
	ch   chan struct{}
}

func startTap(t *testing.T, busURL string, d dialect.Dialect) *tap {
	t.Helper()
	tp := &tap{ch: make(chan struct{}, 1)}
	qs := server.QueueSubscription(d, "/")
	if len(qs.Patterns) > 0 {
		for _, c := range qs.Channels {
			qs.Patterns = append(qs.Patterns, queue.EscapeGlob(c))
		}
		qs.Channels = nil
	}
	sub, err := openBus(t, busURL).Subscribe(context.Background(), qs, func(m queue.Message) {
		tp.mu.Lock()
		tp.msgs = append(tp.msgs, m)
		tp.mu.Unlock()
		select {
		case tp.ch <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return tp
}

// waitEvent waits until the tap saw an emit of event (decoded with d) and
// returns everything it saw.
func (tp *tap) waitEvent(t *testing.T, d dialect.Dialect, event string) []queue.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		tp.mu.Lock()
		msgs := append([]queue.Message(nil), tp.msgs...)
		tp.mu.Unlock()
		for _, m := range msgs {
			if o, err := d.Decode(m); err == nil {
				if e, ok := o.(*op.Emit); ok && e.Event == event {
					return msgs
				}
			}
		}
		select {
		case <-tp.ch:
		case <-deadline:
			t.Fatalf("the tap saw no %q", event)
		}
	}
}

// traffic makes every kind of cluster operation on c (errors of the
// operations a dialect cannot express are expected and ignored).
func (c *isoCluster) traffic(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	root := c.srvs[0].Of("/")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(root.To("r").Emit("leak", 1, []byte{2}))
	must(root.Emit("leak-all"))
	// the pickle dialect cannot join remote sockets (ErrUnsupported)
	if err := root.To(c.clients[1].SID("/")).SocketsJoin("j"); err != nil && !errors.Is(err, dialect.ErrUnsupported) {
		t.Fatal(err)
	}
	if err := root.To(c.clients[1].SID("/")).SocketsLeave("j"); err != nil && !errors.Is(err, dialect.ErrUnsupported) {
		t.Fatal(err)
	}
	must(root.CloseRoom("j"))
	if _, err := root.To(c.clients[1].SID("/")).EmitWithAck(ctx, "leak-ack"); err != nil {
		t.Fatal(err)
	}
	root.ServerSideEmit("leak-sse") // node only
	root.FetchSockets(ctx)          // node only
	must(root.To("r").Emit("done"))
	for _, cl := range c.clients {
		got, err := cl.WaitFor("/", "done", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range got {
			if r.Event == "leak" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("a client of the busy cluster received leak %d times, want 1", n)
		}
	}
}

// TestChannelIsolation (issue #7, compat test 5): two clusters on one
// broker whose channels differ (one name a prefix of the other) never see
// each other's traffic: every kind of operation on one cluster, then a
// sentinel on the other; the quiet cluster's channels (a tap of their
// own) carried the sentinel only, and its clients and nodes received
// nothing else.
func TestChannelIsolation(t *testing.T) {
	cases := []struct {
		name, broker, addr, url string
		dialect                 func(ch string) dialect.Dialect
	}{
		{"redis-python", "redis", testenv.RedisAddr, redisURL, func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }},
		{"redis-python-pickle", "redis", testenv.RedisAddr, redisURL, func(ch string) dialect.Dialect { return python.NewPickle(python.Options{Channel: ch}) }},
		{"redis-node", "redis", testenv.RedisAddr, redisURL, func(ch string) dialect.Dialect { return node.New(node.Options{Key: ch}) }},
		{"amqp-python", "rabbitmq", testenv.AMQPAddr, "amqp://guest:guest@" + testenv.AMQPAddr + "/", func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }},
		{"nats-python", "nats", testenv.NATSAddr, "nats://" + testenv.NATSAddr, func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }},
	}
	for _, cc := range cases {
		t.Run(cc.name, func(t *testing.T) {
			testenv.Need(t, cc.broker, cc.addr)
			base := uniq("iso")
			clusters := []*isoCluster{startIsoCluster(t, cc.url, cc.dialect(base)), startIsoCluster(t, cc.url, cc.dialect(base+"-b"))}
			for busy := range clusters {
				quiet := clusters[1-busy]
				tp := startTap(t, cc.url, quiet.d)
				before := make([]server.QueueStats, len(quiet.srvs))
				for i, s := range quiet.srvs {
					before[i] = s.QueueStats()
				}
				clusters[busy].traffic(t)
				sentinel := fmt.Sprintf("quiet-sentinel-%d", busy)
				if err := quiet.srvs[0].Of("/").To("r").Emit(sentinel); err != nil {
					t.Fatal(err)
				}
				if msgs := tp.waitEvent(t, quiet.d, sentinel); len(msgs) != 1 {
					t.Fatalf("the quiet cluster's channels carried %d messages, want its sentinel only: %+v", len(msgs), msgs)
				}
				for i, cl := range quiet.clients {
					got, err := cl.WaitFor("/", sentinel, 10*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != 1 {
						t.Fatalf("a client of the quiet cluster received %v", got)
					}
					st := quiet.srvs[i].QueueStats()
					if st.Malformed != before[i].Malformed || st.Unsupported != before[i].Unsupported || st.Replies != before[i].Replies {
						t.Fatalf("a quiet node counted foreign messages: %+v, before %+v", st, before[i])
					}
				}
			}
		})
	}
}

// aclUser creates a Redis ACL user allowed only the channel rules given
// (& patterns), removed when the test ends; it returns its broker URL.
func aclUser(t *testing.T, rules ...string) string {
	t.Helper()
	admin := goredis.NewClient(&goredis.Options{Addr: testenv.RedisAddr})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	name, pass := uniq("tenant"), uniq("pw")
	args := []any{"ACL", "SETUSER", name, "reset", "on", ">" + pass, "resetchannels"}
	for _, r := range rules {
		args = append(args, r)
	}
	args = append(args, "+@all", "-@dangerous", "-@admin")
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", name) })
	return "redis://" + name + ":" + pass + "@" + testenv.RedisAddr + "/0"
}

// TestRedisACLTenancy (issue #7, compat test 5): channel names alone are
// not a security boundary, a Redis ACL user per tenant is. A tenant user
// whose channel rules cover only its own channels (the rules
// docs/adapters.md gives per dialect) runs a node and sioemit on its
// channel; sioemit to another tenant's channel fails with NOPERM (exit 1)
// and nothing reaches that channel; sioserver joining another tenant's
// cluster exits 1 naming the refusal.
func TestRedisACLTenancy(t *testing.T) {
	testenv.Need(t, "redis", testenv.RedisAddr)
	cases := []struct {
		dialectName string
		dialect     func(ch string) dialect.Dialect
		rules       func(ch string) []string
	}{
		{"python", func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) },
			func(ch string) []string { return []string{"&" + ch} }},
		{"node", func(ch string) dialect.Dialect { return node.New(node.Options{Key: ch}) },
			func(ch string) []string {
				return []string{"&" + ch + "#/#*", "&" + ch + "-request#/#", "&" + ch + "-response#/#*"}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.dialectName, func(t *testing.T) {
			own, other := uniq("tenant-a"), uniq("tenant-b")
			userURL := aclUser(t, tc.rules(own)...)
			// a node of the tenant's cluster, on the tenant's credentials
			c := startIsoCluster(t, userURL, tc.dialect(own))
			flags := []string{"--url", userURL, "--dialect", tc.dialectName}
			mustSioemit(t, append(flags, "--channel", own, "--to", "r", "hello", `"tenant"`)...)
			if _, err := c.clients[0].WaitFor("/", "hello", 10*time.Second); err != nil {
				t.Fatal(err)
			}

			// another tenant's channel: refused by the broker, nothing sent
			tp := startTap(t, redisURL, tc.dialect(other))
			code, out, errOut := sioemit(t, append(flags, "--channel", other, "--to", "r", "intrude", `"x"`)...)
			if code != 1 || !strings.Contains(errOut, "NOPERM") {
				t.Fatalf("sioemit to another tenant's channel: exit %d, stdout %q, stderr %q; want exit 1 naming NOPERM", code, out, errOut)
			}
			t.Logf("sioemit refused: %s", strings.TrimSpace(errOut))
			admin := openBus(t, redisURL)
			msgs, err := tc.dialect(other).Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "admin-sentinel"})
			if err != nil {
				t.Fatal(err)
			}
			if err := admin.Publish(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			if got := tp.waitEvent(t, tc.dialect(other), "admin-sentinel"); len(got) != 1 {
				t.Fatalf("the other tenant's channels carried %d messages, want the sentinel only: %+v", len(got), got)
			}

			// a server joining another tenant's cluster: exit 1, NOPERM logged
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sioserverBin, "--addr", "127.0.0.1:"+portString(t), "--url", userURL, "--dialect", tc.dialectName, "--channel", other)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "NOPERM") {
				t.Fatalf("sioserver on another tenant's channel: %v, log:\n%s", err, stderr.String())
			}
		})
	}
}

// rabbitmqctlArgv is the command that runs rabbitmqctl here: directly
// (root, or a user with RabbitMQ's Erlang cookie), else through sudo -n
// (scripts/setup.sh starts the broker with sudo); nil when neither works.
func rabbitmqctlArgv() []string {
	for _, argv := range [][]string{{"rabbitmqctl"}, {"sudo", "-n", "rabbitmqctl"}} {
		if exec.Command(argv[0], append(argv[1:], "list_vhosts")...).Run() == nil {
			return argv
		}
	}
	return nil
}

// rabbitmqctl runs rabbitmqctl with args, failing the test on error.
func rabbitmqctl(t *testing.T, argv []string, args ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], append(argv[1:], args...)...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %q: %v\n%s", args, err, out)
	}
}

// rabbitTenant creates a vhost and a user allowed only on it, removed
// when the test ends, and returns the tenant's broker URL.
func rabbitTenant(t *testing.T, argv []string) (url, vhost, user, pass string) {
	t.Helper()
	vhost, user, pass = uniq("vhost"), uniq("tenant"), uniq("pw")
	rabbitmqctl(t, argv, "add_vhost", vhost)
	t.Cleanup(func() { exec.Command(argv[0], append(argv[1:], "delete_vhost", vhost)...).Run() })
	rabbitmqctl(t, argv, "add_user", user, pass)
	t.Cleanup(func() { exec.Command(argv[0], append(argv[1:], "delete_user", user)...).Run() })
	rabbitmqctl(t, argv, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	return "amqp://" + user + ":" + pass + "@" + testenv.AMQPAddr + "/" + vhost, vhost, user, pass
}

// TestRabbitMQVhostTenancy (issue #7, compat test 5): one vhost and user
// per tenant. Two tenants' clusters on the same channel name never see
// each other's traffic (exchanges live in their vhost), and a tenant's
// credentials cannot reach another tenant's vhost: sioemit exits 1 with
// RabbitMQ's refusal.
func TestRabbitMQVhostTenancy(t *testing.T) {
	testenv.Need(t, "rabbitmq", testenv.AMQPAddr)
	argv := rabbitmqctlArgv()
	needPeer(t, "rabbitmqctl (vhost and user management; as root, or through sudo -n)", func() error {
		if argv == nil {
			return errors.New("rabbitmqctl list_vhosts failed")
		}
		return nil
	})
	urlA, _, userA, passA := rabbitTenant(t, argv)
	urlB, vhostB, _, _ := rabbitTenant(t, argv)
	const channel = "flask-socketio" // the same name in both vhosts
	d := python.New(python.Options{Channel: channel})
	a, b := startIsoCluster(t, urlA, d), startIsoCluster(t, urlB, d)
	tp := startTap(t, urlB, d)
	a.traffic(t)
	if err := b.srvs[0].Of("/").To("r").Emit("quiet-sentinel"); err != nil {
		t.Fatal(err)
	}
	if msgs := tp.waitEvent(t, d, "quiet-sentinel"); len(msgs) != 1 {
		t.Fatalf("tenant B's channel carried %d messages, want its sentinel only: %+v", len(msgs), msgs)
	}
	for _, cl := range b.clients {
		if got, err := cl.WaitFor("/", "quiet-sentinel", 10*time.Second); err != nil || len(got) != 1 {
			t.Fatalf("a client of tenant B received %v (%v)", got, err)
		}
	}
	// tenant A's credentials on tenant B's vhost
	code, out, errOut := sioemit(t, "--url", "amqp://"+userA+":"+passA+"@"+testenv.AMQPAddr+"/"+vhostB, "--to", "r", "intrude")
	if code != 1 || !strings.Contains(errOut, "refused") {
		t.Fatalf("sioemit into another tenant's vhost: exit %d, stdout %q, stderr %q; want exit 1 naming the refusal", code, out, errOut)
	}
	t.Logf("sioemit refused: %s", strings.TrimSpace(errOut))
}

// TestNATSUserTenancy (issue #7, compat test 5): NATS users whose subject
// permissions cover only their tenant's channel (siobridge.<channel>). A
// tenant runs a cluster and sioemit on its channel; sioemit to another
// tenant's channel exits 1 with the server's permission violation and
// nothing reaches it; sioserver joining another tenant's cluster exits 1.
func TestNATSUserTenancy(t *testing.T) {
	own, other := uniq("tenant-a"), uniq("tenant-b")
	srv := testenv.StartNATS(t, "-c", testenv.NATSConfig(t,
		testenv.NATSUser{Name: "tenant-a", Password: "apw", Subjects: []string{natsbus.Subject(own)}},
		testenv.NATSUser{Name: "admin", Password: "root"}))
	userURL, adminURL := "nats://tenant-a:apw@"+srv.Addr, "nats://admin:root@"+srv.Addr
	d := func(ch string) dialect.Dialect { return python.New(python.Options{Channel: ch}) }
	c := startIsoCluster(t, userURL, d(own))
	mustSioemit(t, "--url", userURL, "--channel", own, "--to", "r", "hello", `"tenant"`)
	if _, err := c.clients[0].WaitFor("/", "hello", 10*time.Second); err != nil {
		t.Fatal(err)
	}

	tp := startTap(t, adminURL, d(other))
	code, out, errOut := sioemit(t, "--url", userURL, "--channel", other, "--to", "r", "intrude", `"x"`)
	if code != 1 || !strings.Contains(errOut, "Permissions Violation") {
		t.Fatalf("sioemit to another tenant's channel: exit %d, stdout %q, stderr %q; want exit 1 naming the permission violation", code, out, errOut)
	}
	t.Logf("sioemit refused: %s", strings.TrimSpace(errOut))
	msgs, err := d(other).Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "admin-sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	if err := openBus(t, adminURL).Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	if got := tp.waitEvent(t, d(other), "admin-sentinel"); len(got) != 1 {
		t.Fatalf("the other tenant's channel carried %d messages, want the sentinel only: %+v", len(got), got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sioserverBin, "--addr", "127.0.0.1:"+portString(t), "--url", userURL, "--channel", other)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "Permissions Violation") {
		t.Fatalf("sioserver on another tenant's channel: %v, log:\n%s", err, stderr.String())
	}
}
