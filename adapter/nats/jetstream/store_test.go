package jetstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sbnats "github.com/siobridge/siobridge/adapter/nats"
	"github.com/siobridge/siobridge/adapter/nats/jetstream"
	"github.com/siobridge/siobridge/dialect/python"
	"github.com/siobridge/siobridge/internal/recoverytest"
	"github.com/siobridge/siobridge/internal/testenv"
)

// newNode is a Go server of a two-node cluster on a NATS bus with a
// JetStream recovery store.
func newNode(t *testing.T, url, channel string, o jetstream.Options) (*recoverytest.Node, *jetstream.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bus, err := sbnats.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	store, err := jetstream.New(ctx, bus.Conn(), o)
	if err != nil {
		t.Fatal(err)
	}
	return recoverytest.NewNode(t, bus, python.New(python.Options{Channel: channel}), store), store
}

// cluster starts a private JetStream nats-server and two nodes on it.
func cluster(t *testing.T, o jetstream.Options) (a, b *recoverytest.Node, store *jetstream.Store) {
	p := testenv.StartNATS(t, "-js", "-sd", t.TempDir())
	url := "nats://" + p.Addr
	channel := fmt.Sprintf("jsrec-%d", time.Now().UnixNano())
	a, store = newNode(t, url, channel, o)
	b, _ = newNode(t, url, channel, o)
	return a, b, store
}

// TestRecoverOnOtherNode: see recoverytest.RecoverOnOther.
func TestRecoverOnOtherNode(t *testing.T) {
	a, b, store := cluster(t, jetstream.Options{})
	recoverytest.RecoverOnOther(t, a, b, store)
}

// TestPrunedOffsetIsFresh: when the packets after the client's offset
// were pruned (a stream too small), it gets a fresh session and nothing
// replayed.
func TestPrunedOffsetIsFresh(t *testing.T) {
	a, b, _ := cluster(t, jetstream.Options{LogBytes: 4 << 10})
	recoverytest.PrunedIsFresh(t, a, b, 200) // far more than 4 KiB
}
