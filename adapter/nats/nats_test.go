package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, url string) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestSubjectMapping(t *testing.T) {
	for _, ch := range []string{"flask-socketio", "socket.io#/#room with spaces.and*stars>#", "~tilde", "é😀", "\x00\xff", "a.b.c"} {
		s := Subject(ch)
		tok := strings.TrimPrefix(s, SubjectPrefix)
		if strings.ContainsAny(tok, ".*> \t\r\n") || tok == "" {
			t.Errorf("Subject(%q) = %q has a special character", ch, s)
		}
		back, err := Channel(s)
		if err != nil || back != ch {
			t.Errorf("Channel(Subject(%q)) = %q, %v", ch, back, err)
		}
	}
	if _, err := Channel("other.subject"); err == nil {
		t.Error("foreign subject accepted")
	}
	if _, err := Channel(SubjectPrefix + "~4"); err == nil {
		t.Error("truncated escape accepted")
	}
}

func TestPublishSubscribeSpecialChannels(t *testing.T) {
	testenv.Need(t, "nats", testenv.NATSAddr)
	b := open(t, "nats://"+testenv.NATSAddr)
	base := fmt.Sprintf("siobridge-test-%d", time.Now().UnixNano())
	chans := []string{base + "#/#room with spaces.and*stars>#", base + "-plain"}
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: chans}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if err := b.Publish(context.Background(), queue.Message{Channel: chans[0], Data: all}, queue.Message{Channel: chans[1], Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got := s.Wait(t, 2, 10*time.Second)
	if got[0].Channel != chans[0] || !bytes.Equal(got[0].Data, all) || got[1].Channel != chans[1] {
		t.Fatalf("got %+v", got)
	}
}

func TestChannelIsolation(t *testing.T) {
	testenv.Need(t, "nats", testenv.NATSAddr)
	b := open(t, "nats://"+testenv.NATSAddr)
	base := fmt.Sprintf("siobridge-iso-%d", time.Now().UnixNano())
	var sa, sb testenv.Sink
	s1, _ := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{base + "-a"}}, sa.Handle)
	defer s1.Close()
	s2, _ := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{base + "-b"}}, sb.Handle)
	defer s2.Close()
	for i := 0; i < 10; i++ {
		b.Publish(context.Background(), queue.Message{Channel: base + "-a", Data: []byte("a")})
	}
	b.Publish(context.Background(), queue.Message{Channel: base + "-b", Data: []byte("marker")})
	sb.Wait(t, 1, 10*time.Second)
	sa.Wait(t, 10, 10*time.Second)
	if sa.Count() != 10 || sb.Count() != 1 {
		t.Fatalf("a %d b %d", sa.Count(), sb.Count())
	}
	if _, err := b.Subscribe(context.Background(), queue.Subscription{Patterns: []string{"x*"}}, sa.Handle); !errors.Is(err, queue.ErrPatternsUnsupported) {
		t.Fatalf("patterns: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	port := testenv.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Open(ctx, "nats://127.0.0.1:"+strconv.Itoa(port)); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("unreachable: %v", err)
	}
	if _, err := Open(context.Background(), "nats://%zz"); err == nil {
		t.Error("bad URL accepted")
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed")
	}
	aport := testenv.FreePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(aport), "--user", "u", "--pass", "secret")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr := "127.0.0.1:" + strconv.Itoa(aport)
	if err := testenv.WaitPort(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	_, err = Open(ctx2, "nats://u:wrong@"+addr)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("wrong password: %v", err)
	}
	b, err := Open(ctx2, "nats://u:secret@"+addr)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	b.Close()
}

// TestOutageAndResubscribe restarts a private nats-server.
func TestOutageAndResubscribe(t *testing.T) {
	srv := testenv.StartNATS(t)
	b := open(t, "nats://"+srv.Addr)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{"outage"}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	err = b.Publish(ctx, queue.Message{Channel: "outage", Data: []byte("during")})
	cancel()
	if err == nil {
		t.Fatal("publish succeeded while the server was down")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("publish ignored its deadline")
	}
	srv.Start()
	deadline := time.Now().Add(30 * time.Second)
	for s.Count() == 0 || string(s.Wait(t, 1, 10*time.Second)[s.Count()-1].Data) != "after" {
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the restart")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b.Publish(ctx, queue.Message{Channel: "outage", Data: []byte("after")})
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
	if b.Stats().Reconnects == 0 {
		t.Fatal("no reconnect counted")
	}
}

func BenchmarkPublish(b *testing.B) {
	testenv.Need(b, "nats", testenv.NATSAddr)
	bus, err := Open(context.Background(), "nats://"+testenv.NATSAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	msg := queue.Message{Channel: "siobridge-bench", Data: []byte(`{"n":1}`)}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bus.Publish(context.Background(), msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// natsWithUsers starts a private nats-server whose user "tenant" may
// publish and subscribe only to the subject of channel allowed, and
// "admin" to everything; it returns both URLs.
func natsWithUsers(t *testing.T, allowed string) (tenant, admin string) {
	t.Helper()
	srv := testenv.StartNATS(t, "-c", testenv.NATSConfig(t,
		testenv.NATSUser{Name: "tenant", Password: "tpw", Subjects: []string{Subject(allowed)}},
		testenv.NATSUser{Name: "admin", Password: "apw"}))
	return "nats://tenant:tpw@" + srv.Addr, "nats://admin:apw@" + srv.Addr
}

// A subject the user may not use: Publish and Subscribe fail with the
// server's permission violation (core NATS reports it asynchronously; it
// used to be lost, and the publish looked successful), and nothing is
// delivered; the allowed subject keeps working, before and after.
func TestPermissionViolations(t *testing.T) {
	tenantURL, adminURL := natsWithUsers(t, "tenant-a")
	tenant, admin := open(t, tenantURL), open(t, adminURL)
	var s testenv.Sink
	sub, err := admin.Subscribe(context.Background(), queue.Subscription{Channels: []string{"tenant-b", "tenant-a"}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx := context.Background()
	if err := tenant.Publish(ctx, queue.Message{Channel: "tenant-a", Data: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	err = tenant.Publish(ctx, queue.Message{Channel: "tenant-b", Data: []byte("intrusion")})
	if !errors.Is(err, nats.ErrPermissionViolation) || !errors.Is(err, queue.ErrForbidden) || !strings.Contains(err.Error(), Subject("tenant-b")) {
		t.Fatalf("publish to a forbidden subject: %v, want the permission violation naming it, as queue.ErrForbidden", err)
	}
	if err := tenant.Publish(ctx, queue.Message{Channel: "tenant-a", Data: []byte("2")}); err != nil {
		t.Fatalf("publish to the allowed subject after a refusal: %v", err)
	}
	if _, err := tenant.Subscribe(ctx, queue.Subscription{Channels: []string{"tenant-b"}}, func(queue.Message) {}); !errors.Is(err, nats.ErrPermissionViolation) || !errors.Is(err, queue.ErrForbidden) {
		t.Fatalf("subscribe to a forbidden subject: %v, want the permission violation as queue.ErrForbidden", err)
	}
	if err := admin.Publish(ctx, queue.Message{Channel: "tenant-a", Data: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range s.Wait(t, 3, 10*time.Second) {
		got = append(got, m.Channel+":"+string(m.Data))
	}
	if fmt.Sprint(got) != "[tenant-a:1 tenant-a:2 tenant-a:3]" {
		t.Fatalf("delivered %q", got)
	}
}

// TestShardedIgnored: NATS has one kind of subject (see
// testenv.CheckShardedIgnored).
func TestShardedIgnored(t *testing.T) {
	testenv.Need(t, "nats", testenv.NATSAddr)
	testenv.CheckShardedIgnored(t, open(t, "nats://"+testenv.NATSAddr), fmt.Sprintf("siobridge-sharded-%d", time.Now().UnixNano()))
}

// TestStreamsRefused: NATS core has no streams (see
// testenv.CheckStreamsRefused).
func TestStreamsRefused(t *testing.T) {
	testenv.Need(t, "nats", testenv.NATSAddr)
	testenv.CheckStreamsRefused(t, open(t, "nats://"+testenv.NATSAddr), fmt.Sprintf("siobridge-streams-%d", time.Now().UnixNano()))
}
