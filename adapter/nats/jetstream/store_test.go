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
	"github.com/siobridge/siobridge/server"
	"github.com/siobridge/siobridge/server/servertest"
)

// node is a Go server of a two-node cluster on a NATS bus with a
// JetStream recovery store (recoverytest.Node, with its bus, store and
// log).
type node struct {
	*recoverytest.Node
	srv   *server.Server
	bus   *sbnats.Bus
	store *jetstream.Store
	logs  *testenv.LogBuffer
}

func newNode(t *testing.T, url, channel string, o jetstream.Options) *node {
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
	n := &node{bus: bus, store: store, logs: &testenv.LogBuffer{}}
	n.Node = recoverytest.NewNode(t, bus, python.New(python.Options{Channel: channel}), store, server.WithLogger(n.logs.Logger()))
	n.srv = n.Srv
	return n
}

func (n *node) client(t *testing.T, auth any) (*servertest.Client, bool) {
	t.Helper()
	return n.Client(t, auth)
}

func (n *node) waitGone(t *testing.T) {
	t.Helper()
	n.WaitGone(t)
}

// cluster starts a private JetStream nats-server and two nodes on it.
func cluster(t *testing.T, o jetstream.Options) (a, b *node) {
	p := testenv.StartNATS(t, "-js", "-sd", t.TempDir())
	url := "nats://" + p.Addr
	channel := fmt.Sprintf("jsrec-%d", time.Now().UnixNano())
	return newNode(t, url, channel, o), newNode(t, url, channel, o)
}

// values are the first arguments of the events up to "end" on c.
func values(t *testing.T, c *servertest.Client) (vals []string, evs []servertest.Received) {
	t.Helper()
	return recoverytest.Values(t, c, 1)
}

// TestRecoverOnOtherNode: see recoverytest.RecoverOnOther.
func TestRecoverOnOtherNode(t *testing.T) {
	a, b := cluster(t, jetstream.Options{})
	recoverytest.RecoverOnOther(t, a.Node, b.Node, a.store)
}

// TestPrunedOffsetIsFresh: when the packets after the client's offset
// were pruned (a stream too small), it gets a fresh session and nothing
// replayed.
func TestPrunedOffsetIsFresh(t *testing.T) {
	a, b := cluster(t, jetstream.Options{LogBytes: 4 << 10})
	recoverytest.PrunedIsFresh(t, a.Node, b.Node, 200) // far more than 4 KiB
}
