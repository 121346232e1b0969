package emitter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// fakeDialect is a test dialect: ops as JSON {"kind":..., "op":...} on
// channel "ops"; replies on "replies". With counting set it behaves like
// the node dialect (servers report client counts on "requests").
type fakeDialect struct {
	origin   string
	counting bool
	ids      atomic.Uint64
}

type envelope struct {
	Kind string          `json:"kind"`
	Op   json.RawMessage `json:"op"`
}

func (d *fakeDialect) Name() string   { return "fake" }
func (d *fakeDialect) Origin() string { return d.origin }
func (d *fakeDialect) NewAckID() string {
	return strconv.FormatUint(d.ids.Add(1), 10)
}
func (d *fakeDialect) ReplySubscription(ns string) queue.Subscription {
	return queue.Subscription{Channels: []string{"replies"}}
}

type counting struct{ *fakeDialect }

func (counting) ServerCountChannel(ns string) string { return "requests" + ns }

func (d *fakeDialect) Encode(o op.Op) ([]queue.Message, error) {
	if j, ok := o.(*op.Join); ok && len(j.Rooms) == 0 {
		return nil, fmt.Errorf("fake: join without rooms: %w", dialect.ErrUnsupported)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	env, _ := json.Marshal(envelope{Kind: o.Kind(), Op: b})
	ch := "ops"
	switch o.(type) {
	case *op.AckReply, *op.ClientCount:
		ch = "replies"
	}
	return []queue.Message{{Channel: ch, Data: env}}, nil
}

func (d *fakeDialect) Decode(m queue.Message) (op.Op, error) {
	var env envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		return nil, fmt.Errorf("fake: %w: %v", dialect.ErrMalformed, err)
	}
	var o op.Op
	switch env.Kind {
	case "emit":
		o = &op.Emit{}
	case "ack":
		o = &op.AckReply{}
	case "client-count":
		o = &op.ClientCount{}
	case "join":
		o = &op.Join{}
	case "leave":
		o = &op.Leave{}
	case "disconnect":
		o = &op.Disconnect{}
	case "close-room":
		o = &op.CloseRoom{}
	case "server-side-emit":
		o = &op.ServerSideEmit{}
	default:
		return nil, fmt.Errorf("fake: kind %q: %w", env.Kind, dialect.ErrUnsupported)
	}
	if err := json.Unmarshal(env.Op, o); err != nil {
		return nil, fmt.Errorf("fake: %w: %v", dialect.ErrMalformed, err)
	}
	return o, nil
}
