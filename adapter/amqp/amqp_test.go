package amqp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

const brokerURL = "amqp://guest:guest@" + testenv.AMQPAddr + "/"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, opts ...Option) *Bus {
	t.Helper()
	testenv.Need(t, "rabbitmq", testenv.AMQPAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, brokerURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func uniq(t *testing.T) string {
	return fmt.Sprintf("siobridge-test-%s-%d", t.Name(), time.Now().UnixNano())
}

func TestPublishSubscribe(t *testing.T) {
	b := open(t)
	ch := uniq(t)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	err = b.Publish(context.Background(),
		queue.Message{Channel: ch, Data: all, ContentType: "application/data", ContentEncoding: "binary"},
		queue.Message{Channel: ch, Data: []byte(`{"a": 1}`), ContentType: "text/plain", ContentEncoding: "utf-8"})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Wait(t, 2, 10*time.Second)
	if !bytes.Equal(got[0].Data, all) || got[0].ContentType != "application/data" || got[0].ContentEncoding != "binary" || got[0].Channel != ch {
		t.Fatalf("first %+v", got[0])
	}
	if got[1].ContentType != "text/plain" || string(got[1].Data) != `{"a": 1}` {
		t.Fatalf("second %+v", got[1])
	}
	if st := b.Stats(); st.Published != 2 || st.Delivered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestKombuTopology: the exchange is declared exactly as Kombu declares
// it, so redeclaring it Kombu's way (passive checks arguments) succeeds.
func TestKombuTopology(t *testing.T) {
	b := open(t)
	ch := uniq(t)
	if err := b.Publish(context.Background(), queue.Message{Channel: ch, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, _ := conn.Channel()
	// Kombu: Exchange(name, type='fanout', durable=False), auto_delete False
	if err := c.ExchangeDeclare(ch, "fanout", false, false, false, false, nil); err != nil {
		t.Fatalf("Kombu-style redeclare refused: %v", err)
	}
	c2, _ := conn.Channel()
	if err := c2.ExchangeDeclare(ch, "fanout", true, false, false, false, nil); err == nil {
		t.Fatal("a durable redeclare was accepted: the test cannot tell declarations apart")
	}
	c.ExchangeDelete(ch, false, false)
}

func TestPatternsUnsupported(t *testing.T) {
	b := open(t)
	if _, err := b.Subscribe(context.Background(), queue.Subscription{Patterns: []string{"a*"}}, func(queue.Message) {}); !errors.Is(err, queue.ErrPatternsUnsupported) {
		t.Fatalf("err %v", err)
	}
}

func TestChannelIsolation(t *testing.T) {
	b := open(t)
	a, c := uniq(t)+"-a", uniq(t)+"-b"
	var sa, sb testenv.Sink
	s1, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{a}}, sa.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{c}}, sb.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := 0; i < 10; i++ {
		b.Publish(context.Background(), queue.Message{Channel: a, Data: []byte("a")})
	}
	b.Publish(context.Background(), queue.Message{Channel: c, Data: []byte("marker")})
	sb.Wait(t, 1, 10*time.Second)
	sa.Wait(t, 10, 10*time.Second)
	if sb.Count() != 1 || sa.Count() != 10 {
		t.Fatalf("a saw %d, b saw %d", sa.Count(), sb.Count())
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Open(ctx, "amqp://[bad"); err == nil || !strings.Contains(err.Error(), "invalid URL") {
		t.Errorf("bad URL: %v", err)
	}
	port := testenv.FreePort(t)
	short, c2 := context.WithTimeout(context.Background(), time.Second)
	defer c2()
	if _, err := Open(short, fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port)); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("unreachable: %v", err)
	}
	testenv.Need(t, "rabbitmq", testenv.AMQPAddr)
	_, err := Open(ctx, "amqp://guest:wrong@"+testenv.AMQPAddr+"/")
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the password: %v", err)
	}
	t.Logf("auth error reads: %v", err)
}

// TestReconnect has RabbitMQ close the bus's connection (as a broker
// restart or a network cut would; other clients of the shared broker are
// left alone); the bus reconnects and the subscription works again.
func TestReconnect(t *testing.T) {
	name := uniq(t)
	b := open(t, WithConnectionName(name))
	ch := uniq(t)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	closeConnections(t, name)
	deliveredAgain(t, b, ch, &s)
	if b.Stats().Reconnects == 0 {
		t.Fatal("delivered without a reconnect: the connections were not closed")
	}
}

// closeConnections has RabbitMQ close the connections named name.
func closeConnections(t *testing.T, name string) {
	t.Helper()
	ctl, err := exec.LookPath("rabbitmqctl")
	if err != nil {
		t.Skip("rabbitmqctl not installed")
	}
	out, err := exec.Command(ctl, "list_connections", "pid", "client_properties", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl list_connections: %v\n%s", err, out)
	}
	closed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if pid, _, ok := strings.Cut(line, "\t"); ok && strings.Contains(line, name) {
			if out, err := exec.Command(ctl, "close_connection", pid, "siobridge reconnect test").CombinedOutput(); err != nil {
				t.Fatalf("rabbitmqctl close_connection: %v\n%s", err, out)
			}
			closed++
		}
	}
	if closed == 0 {
		t.Fatalf("connection %q not found in:\n%s", name, out)
	}
}

// deliveredAgain publishes on ch until s receives a message; the test
// fails after 30 s.
func deliveredAgain(t *testing.T, b *Bus, ch string, s *testenv.Sink) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n := s.Count(); s.Count() == n; {
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the connections were closed")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b.Publish(ctx, queue.Message{Channel: ch, Data: []byte("after")})
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
}

// TestResubscribeRetried: when the bus cannot restore a subscription
// after a reconnect (here its exchange was meanwhile re-declared with
// another type, so declaring it again fails), it retries until it can,
// instead of leaving the subscription dead on a live connection.
func TestResubscribeRetried(t *testing.T) {
	name := uniq(t)
	var logs testenv.LogBuffer
	b := open(t, WithConnectionName(name), WithLogger(logs.Logger()))
	ch := uniq(t)
	var s testenv.Sink
	sub, err := b.Subscribe(context.Background(), queue.Subscription{Channels: []string{ch}}, s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	admin, err := amqp.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ach, err := admin.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ach.ExchangeDelete(ch, false, false); err != nil {
		t.Fatal(err)
	}
	if err := ach.ExchangeDeclare(ch, "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	closeConnections(t, name)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "resubscribe failed"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed resubscription logged:\n%s", logs.String())
		}
	}
	if err := ach.ExchangeDelete(ch, false, false); err != nil {
		t.Fatal(err)
	}
	deliveredAgain(t, b, ch, &s)
}

func TestClosed(t *testing.T) {
	b := open(t)
	b.Close()
	if err := b.Publish(context.Background(), queue.Message{Channel: "x"}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

func BenchmarkPublish(b *testing.B) {
	testenv.Need(b, "rabbitmq", testenv.AMQPAddr)
	bus, err := Open(context.Background(), brokerURL)
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

// TestShardedIgnored: RabbitMQ has one kind of channel (see
// testenv.CheckShardedIgnored).
func TestShardedIgnored(t *testing.T) {
	testenv.CheckShardedIgnored(t, open(t), uniq(t))
}

// TestStreamsRefused: see testenv.CheckStreamsRefused.
func TestStreamsRefused(t *testing.T) {
	testenv.CheckStreamsRefused(t, open(t), uniq(t))
}
