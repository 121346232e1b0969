package node

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

type golden struct {
	Records []struct {
		Name     string `json:"name"`
		Messages []struct {
			Channel string `json:"channel"`
			Hex     string `json:"hex"`
		} `json:"messages"`
	} `json:"records"`
}

func loadGolden(t testing.TB) map[string][]queue.Message {
	t.Helper()
	b, err := os.ReadFile("testdata/node-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	out := map[string][]queue.Message{}
	for _, r := range g.Records {
		for _, m := range r.Messages {
			data, _ := hex.DecodeString(m.Hex)
			out[r.Name] = append(out[r.Name], queue.Message{Channel: m.Channel, Data: data})
		}
	}
	return out
}

var f = false

// emitterOps are the ops whose encoding must equal what the real
// @socket.io/redis-emitter published, byte for byte.
var emitterOps = map[string]op.Op{
	"emitter to room1 hello {a:1}": &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Event: "hello",
		Args: []any{map[string]any{"a": int64(1)}}},
	"emitter hello": &op.Emit{Target: op.Target{Namespace: "/"}, Event: "hello"},
	"emitter multi-arg binary unicode numbers": &op.Emit{Target: op.Target{Namespace: "/"}, Event: "multi",
		Args: []any{"é😀", int64(1), int64(-1), int64(255), int64(65536), int64(1 << 32), int64(-(1 << 33)), 1.5, true, nil, []byte{1, 2, 3},
			map[string]any{"b": int64(1), "2": int64(2), "a": []any{int64(1), map[string]any{"x": nil}}}}},
	"emitter of /admin to room1 except r9 volatile compress false": &op.Emit{Target: op.Target{Namespace: "/admin", Rooms: []string{"room1"}, Except: []string{"r9"}},
		Event: "news", Args: []any{"x"}, Volatile: true, Compress: &f},
	"emitter to two rooms":            &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"r1", "r2"}}, Event: "two"},
	"emitter socketsJoin":             &op.Join{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Rooms: []string{"room2"}},
	"emitter socketsLeave":            &op.Leave{Target: op.Target{Namespace: "/"}, Rooms: []string{"room2"}},
	"emitter disconnectSockets close": &op.Disconnect{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}, Except: []string{"r9"}}, Close: true},
	"emitter serverSideEmit":          &op.ServerSideEmit{Namespace: "/", Event: "ping", Args: []any{map[string]any{"x": int64(1)}}},
}

func TestEncodeMatchesRealEmitter(t *testing.T) {
	g := loadGolden(t)
	d := New(Options{})
	for name, o := range emitterOps {
		msgs, err := d.Encode(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := g[name]
		if len(want) != 1 || len(msgs) != 1 {
			t.Fatalf("%s: %d golden, %d encoded", name, len(want), len(msgs))
		}
		if msgs[0].Channel != want[0].Channel {
			t.Errorf("%s: channel %q, want %q", name, msgs[0].Channel, want[0].Channel)
		}
		if !bytes.Equal(msgs[0].Data, want[0].Data) {
			t.Errorf("%s:\n got %x\nwant %x", name, msgs[0].Data, want[0].Data)
		}
	}
}

func TestReferenceCapture67Bytes(t *testing.T) {
	// the 67-byte capture of the protocol reference, section 1.3
	want, _ := hex.DecodeString("93a7656d697474657283a47479706502a46461746192a568656c6c6f81a16101a36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490")
	msgs, err := New(Options{}).Encode(emitterOps["emitter to room1 hello {a:1}"])
	if err != nil || !bytes.Equal(msgs[0].Data, want) || len(want) != 67 {
		t.Fatalf("got %x (%v)", msgs[0].Data, err)
	}
}

func TestDecodeEveryCapture(t *testing.T) {
	g := loadGolden(t)
	d := New(Options{})
	for name, o := range emitterOps {
		got, err := d.Decode(g[name][0])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := withOrigin(o, EmitterUID)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", name, got, want)
		}
	}
	// adapter traffic from real socket.io servers
	m := g["adapter to room1 hello {a:1}"][0]
	got, err := d.Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	e := got.(*op.Emit)
	if e.Event != "hello" || e.Rooms[0] != "room1" || len(e.Origin) != 6 || !reflect.DeepEqual(e.Args, []any{map[string]any{"a": int64(1)}}) {
		t.Fatalf("adapter emit %#v", e)
	}
	got, err = d.Decode(g["adapter except volatile binary"][0])
	if err != nil {
		t.Fatal(err)
	}
	e = got.(*op.Emit)
	if !e.Volatile || e.Except[0] != "sid1" || !bytes.Equal(e.Args[0].([]byte), []byte{1, 2, 3}) {
		t.Fatalf("adapter binary %#v", e)
	}
	ack := g["adapter broadcast with ack (types 7, 8, 9)"]
	req, err := d.Decode(ack[0])
	if err != nil {
		t.Fatal(err)
	}
	re := req.(*op.Emit)
	if re.Ack == nil || re.Ack.Timeout != 2*time.Second || re.Event != "ask" || re.Args[0] != int64(7) {
		t.Fatalf("broadcast request %#v %#v", re, re.Ack)
	}
	cc, err := d.Decode(ack[1])
	if err != nil {
		t.Fatal(err)
	}
	if c := cc.(*op.ClientCount); c.ID != re.Ack.ID || c.Count != 1 {
		t.Fatalf("client count %#v", c)
	}
	ar, err := d.Decode(ack[2])
	if err != nil {
		t.Fatal(err)
	}
	if a := ar.(*op.AckReply); a.ID != re.Ack.ID || !reflect.DeepEqual(a.Args, []any{"answer:7"}) {
		t.Fatalf("ack %#v", a)
	}
	// and our encodings of those three decode to the same ops
	for i, o := range []op.Op{re, cc, ar} {
		msgs, err := New(Options{UID: re.Origin}).Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := d.Decode(msgs[0])
		if err != nil || !reflect.DeepEqual(back, o) {
			t.Errorf("message %d: %#v vs %#v (%v)", i, back, o, err)
		}
	}
}

func withOrigin(o op.Op, uid string) op.Op {
	switch x := o.(type) {
	case *op.Emit:
		c := *x
		c.Origin = uid
		return &c
	case *op.Join:
		c := *x
		c.Origin = uid
		return &c
	case *op.Leave:
		c := *x
		c.Origin = uid
		return &c
	case *op.Disconnect:
		c := *x
		c.Origin = uid
		return &c
	case *op.ServerSideEmit:
		c := *x
		c.Origin = uid
		return &c
	}
	return o
}

func TestRoundTripAndChannels(t *testing.T) {
	d := New(Options{Key: "k", UID: "ABCDEF"})
	tr := true
	ops := []op.Op{
		&op.Emit{Target: op.Target{Namespace: "/x", Rooms: []string{"r"}}, Event: "e", Args: []any{[]byte{0}, "s", 2.5, int64(-7), uint64(1 << 63)}, Compress: &tr},
		&op.Emit{Target: op.Target{Namespace: "/"}, Event: "e", Ack: &op.AckRequest{ID: "req1", Timeout: 1500 * time.Millisecond}},
		&op.Join{Target: op.Target{Namespace: "/", Rooms: []string{"a"}}, Rooms: []string{"b", "c"}},
		&op.ServerSideEmit{Namespace: "/", Event: "ping", Args: []any{int64(1)}, RequestID: "r2"},
		&op.ClientCount{Namespace: "/", ID: "r", Count: 3},
		&op.AckReply{Namespace: "/", ID: "r", Args: []any{map[string]any{"ok": true}}},
	}
	for _, o := range ops {
		msgs, err := d.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := d.Decode(msgs[0])
		if err != nil {
			t.Fatalf("%s: %v", o.Kind(), err)
		}
		if !reflect.DeepEqual(back, withOrigin(o, "ABCDEF")) {
			t.Errorf("%s:\n got %#v\nwant %#v", o.Kind(), back, withOrigin(o, "ABCDEF"))
		}
	}
	if c := d.BroadcastChannel("/x", []string{"r"}); c != "k#/x#r#" {
		t.Error(c)
	}
	if c := d.ServerCountChannel("/"); c != "k-request#/#" {
		t.Error(c)
	}
	cr, _ := d.Encode(&op.CloseRoom{Namespace: "/", Room: "r1"})
	if string(cr[0].Data) != `{"uid":"ABCDEF","type":3,"opts":{"rooms":["r1"],"except":[]},"rooms":["r1"]}` {
		t.Errorf("close room %s", cr[0].Data)
	}
}

func TestRefusals(t *testing.T) {
	d := New(Options{})
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	if _, err := d.Encode(&op.Emit{Target: op.Target{Namespace: "/"}, Event: "e", Args: []any{huge}}); err == nil {
		t.Error("a 100-bit integer was encoded")
	}
	if _, err := d.Encode(&op.ServerSideEmit{Namespace: "/", Event: "e", Args: []any{[]byte{1}}}); !errors.Is(err, dialect.ErrUnsupported) {
		t.Errorf("binary in a JSON request: %v", err)
	}
	for name, m := range map[string]queue.Message{
		"trailing bytes":    {Channel: "socket.io#/#", Data: []byte{0xc0, 0xc0}},
		"invalid prefix":    {Channel: "socket.io#/#", Data: []byte{0xc1}},
		"two elements":      {Channel: "socket.io#/#", Data: []byte{0x92, 0xa1, 'x', 0x80}},
		"huge array":        {Channel: "socket.io#/#", Data: []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		"huge str":          {Channel: "socket.io#/#", Data: []byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}},
		"bad json request":  {Channel: "socket.io-request#/#", Data: []byte(`{"type":`)},
		"request no opts":   {Channel: "socket.io-request#/#", Data: []byte(`{"type":2,"rooms":["a"]}`)},
		"response no reqid": {Channel: "socket.io-response#/#", Data: []byte(`{"type":8,"clientCount":1}`)},
	} {
		if _, err := d.Decode(m); !errors.Is(err, dialect.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := d.Decode(queue.Message{Channel: "socket.io-request#/#", Data: []byte(`{"uid":"x","type":1}`)}); !errors.Is(err, dialect.ErrMalformed) {
		t.Errorf("ALL_ROOMS without requestId: %v", err)
	}
}

func TestMsgpackExtensions(t *testing.T) {
	// timestamp32, timestamp64, undefined, legacy Date ms, ArrayBuffer
	cases := map[string]any{
		"d6ff5e0be100":              "2020-01-01T00:00:00.000Z",
		"d4000":                     nil,
		"d700000001" + "6f5e66e800": "2020-01-01T00:00:00.000Z",
		"c70200abcd":                []byte{0xab, 0xcd},
	}
	for h, want := range cases {
		if len(h)%2 == 1 {
			h += "0"
		}
		b, _ := hex.DecodeString(h)
		got, err := decodeMsgpack(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v %v, want %#v", h, got, err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	g := loadGolden(f)
	for _, msgs := range g {
		for _, m := range msgs {
			f.Add(m.Channel, m.Data)
		}
	}
	d := New(Options{})
	f.Fuzz(func(t *testing.T, channel string, data []byte) {
		o, err := d.Decode(queue.Message{Channel: channel, Data: data})
		if err != nil {
			if !errors.Is(err, dialect.ErrMalformed) && !errors.Is(err, dialect.ErrUnsupported) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		d.Encode(o)
	})
}
