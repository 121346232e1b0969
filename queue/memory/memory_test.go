package memory

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/siobridge/siobridge/queue"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func collect(t *testing.T, b *Bus, sub queue.Subscription) (func(n int) []queue.Message, queue.Subscriber) {
	t.Helper()
	var mu sync.Mutex
	var got []queue.Message
	s, err := b.Subscribe(context.Background(), sub, func(m queue.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(n int) []queue.Message {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			if len(got) >= n {
				out := append([]queue.Message(nil), got...)
				mu.Unlock()
				return out
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("wanted %d messages", n)
		return nil
	}
	return wait, s
}

func TestChannelsAndPatterns(t *testing.T) {
	b := New()
	defer b.Close()
	ctx := context.Background()
	waitA, _ := collect(t, b, queue.Subscription{Channels: []string{"a"}})
	waitP, _ := collect(t, b, queue.Subscription{Patterns: []string{"socket.io#/#*"}})
	if err := b.Publish(ctx,
		queue.Message{Channel: "a", Data: []byte("1")},
		queue.Message{Channel: "b", Data: []byte("2")},
		queue.Message{Channel: "socket.io#/#room#", Data: []byte("3")},
		queue.Message{Channel: "a", Data: []byte("4")},
	); err != nil {
		t.Fatal(err)
	}
	a := waitA(2)
	if string(a[0].Data) != "1" || string(a[1].Data) != "4" || len(a) != 2 {
		t.Fatalf("channel subscriber got %v", a)
	}
	p := waitP(1)
	if string(p[0].Data) != "3" || p[0].Pattern != "socket.io#/#*" {
		t.Fatalf("pattern subscriber got %+v", p)
	}
	if n, _ := b.NumSub(ctx, "a"); n != 1 {
		t.Fatalf("NumSub(a) = %d", n)
	}
	if st := b.Stats(); st.Published != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseStopsDelivery(t *testing.T) {
	b := New()
	_, s := collect(t, b, queue.Subscription{Channels: []string{"x"}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.NumSub(context.Background(), "x"); n != 0 {
		t.Fatalf("NumSub after Close = %d", n)
	}
	b.Close()
	if err := b.Publish(context.Background(), queue.Message{Channel: "x"}); err != queue.ErrClosed {
		t.Fatalf("Publish on closed bus: %v", err)
	}
	if _, err := b.Subscribe(context.Background(), queue.Subscription{}, func(queue.Message) {}); err != queue.ErrClosed {
		t.Fatalf("Subscribe on closed bus: %v", err)
	}
}

// TestStreams: stream entries reach the subscribers of the stream (not
// those of a channel of the same name), with increasing ids.
func TestStreams(t *testing.T) {
	b := New()
	defer b.Close()
	waitS, _ := collect(t, b, queue.Subscription{Streams: []string{"socket.io"}, Channels: []string{"c"}})
	waitC, _ := collect(t, b, queue.Subscription{Channels: []string{"socket.io"}})
	var msgs []queue.Message
	for i := range 5 {
		msgs = append(msgs, queue.Message{Channel: "socket.io", Stream: true, MaxLen: 10, Data: queue.AppendStreamField(nil, "n", string(rune('0'+i)))})
	}
	msgs = append(msgs, queue.Message{Channel: "socket.io", Data: []byte("pub")}, queue.Message{Channel: "c", Data: []byte("c")})
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	got := waitS(6)
	prev := ""
	for i, m := range got[:5] {
		if !m.Stream || m.ID == "" || m.ID == prev || m.Channel != "socket.io" || string(m.Data) != string(msgs[i].Data) {
			t.Fatalf("entry %d: %+v", i, m)
		}
		prev = m.ID
	}
	if got[5].Stream || string(got[5].Data) != "c" {
		t.Fatalf("channel message: %+v", got[5])
	}
	if c := waitC(1); len(c) != 1 || string(c[0].Data) != "pub" {
		t.Fatalf("channel subscriber got %+v", c)
	}
}
