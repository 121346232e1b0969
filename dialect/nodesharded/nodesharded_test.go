package nodesharded

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// uid is the uid of the captured messages of the reference.
const uid = "08ea21d04b3e8c35"

func mustNew(t testing.TB, o Options) *Dialect {
	t.Helper()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// golden are messages of createShardedAdapter (@socket.io/redis-adapter
// 8.3, socket.io-adapter 2.5) captured on Redis, and the ops they mean.
var golden = []struct {
	name    string
	op      op.Op
	channel string
	data    string
}{
	{"broadcast to one room", &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Event: "hello", Args: []any{map[string]any{"a": int64(1)}}, Origin: uid},
		"socket.io#/#room1#", `{"type":3,"data":{"packet":{"type":2,"data":["hello",{"a":1}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"broadcast with ack", &op.Emit{Target: op.Target{Namespace: "/"}, Event: "ask", Args: []any{int64(1)}, Ack: &op.AckRequest{ID: "174dacdeab760213", Timeout: 500 * time.Millisecond}, Origin: uid},
		"socket.io#/#", `{"type":3,"data":{"packet":{"type":2,"data":["ask",1]},"requestId":"174dacdeab760213","opts":{"rooms":[],"except":[],"flags":{"timeout":500}}},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"join", &op.Join{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Rooms: []string{"room2"}, Origin: uid},
		"socket.io#/#", `{"type":4,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room2"]},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"fetch sockets", &op.FetchSockets{Target: op.Target{Namespace: "/"}, RequestID: "1414d1e1f8a5b2c3", Origin: uid},
		"socket.io#/#", `{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"1414d1e1f8a5b2c3"},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"server-side emit", &op.ServerSideEmit{Namespace: "/", Event: "hey", Args: []any{int64(1)}, Origin: uid},
		"socket.io#/#", `{"type":9,"data":{"packet":["hey",1]},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"server-side emit with ack", &op.ServerSideEmit{Namespace: "/", Event: "ping", Args: []any{}, RequestID: "5c1f3c1c0b1d2e3f", Origin: uid},
		"socket.io#/#", `{"type":9,"data":{"requestId":"5c1f3c1c0b1d2e3f","packet":["ping"]},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"disconnect", &op.Disconnect{Target: op.Target{Namespace: "/"}, Origin: uid},
		"socket.io#/#", `{"type":6,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"close":false},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"client count", &op.ClientCount{Namespace: "/", ID: "174dacdeab760213", Count: 1, Origin: uid},
		"socket.io#/#", `{"type":11,"data":{"requestId":"174dacdeab760213","clientCount":1},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"server-side emit response", &op.ServerSideEmitReply{Namespace: "/", RequestID: "5c1f3c1c0b1d2e3f", Args: []any{"pong"}, Origin: uid},
		"socket.io#/#", `{"type":10,"data":{"requestId":"5c1f3c1c0b1d2e3f","packet":"pong"},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
	{"fetch sockets response", &op.SocketsReply{Namespace: "/", RequestID: "1414d1e1f8a5b2c3", Origin: uid, Sockets: []op.SocketInfo{
		{ID: "8Hq2nC0d3xYbR7aAAAAB", Rooms: []string{"8Hq2nC0d3xYbR7aAAAAB", "room1"}, Data: map[string]any{}, Handshake: map[string]any{"query": map[string]any{"room": "room1"}}}}},
		"socket.io#/#", `{"type":8,"data":{"requestId":"1414d1e1f8a5b2c3","sockets":[{"id":"8Hq2nC0d3xYbR7aAAAAB","handshake":{"query":{"room":"room1"}},"rooms":["8Hq2nC0d3xYbR7aAAAAB","room1"],"data":{}}]},"uid":"08ea21d04b3e8c35","nsp":"/"}`},
}

func TestGolden(t *testing.T) {
	d := mustNew(t, Options{UID: uid})
	for _, g := range golden {
		msgs, err := d.Encode(g.op)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if len(msgs) != 1 || msgs[0].Channel != g.channel || string(msgs[0].Data) != g.data || !msgs[0].Sharded {
			t.Errorf("%s: encoded\n %+v (data %s)\nwant %s on %s", g.name, msgs, msgs[0].Data, g.data, g.channel)
		}
		got, err := d.Decode(queue.Message{Channel: g.channel, Data: []byte(g.data), Sharded: true})
		if err != nil {
			t.Fatalf("%s: decode: %v", g.name, err)
		}
		want := g.op
		if e, ok := want.(*op.ServerSideEmit); ok && len(e.Args) == 0 {
			c := *e
			c.Args = []any{}
			want = &c
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded\n %#v\nwant %#v", g.name, got, want)
		}
	}
}

// TestGoldenBinary: a broadcast carrying binary is the notepack map of the
// whole message (the captured bytes), and decodes back.
func TestGoldenBinary(t *testing.T) {
	want, _ := hex.DecodeString("84a474797065" + "03" + "a464617461" + "82" + "a67061636b6574" + "82" + "a474797065" + "02" +
		"a464617461" + "92" + "a362696e" + "c4020102" + "a46f707473" + "83" + "a5726f6f6d73" + "90" + "a6657863657074" + "90" +
		"a5666c616773" + "80" + "a3756964" + "b0" + hex.EncodeToString([]byte(uid)) + "a36e7370" + "a12f")
	d := mustNew(t, Options{UID: uid})
	e := &op.Emit{Target: op.Target{Namespace: "/"}, Event: "bin", Args: []any{[]byte{1, 2}}, Origin: uid}
	msgs, err := d.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Channel != "socket.io#/#" || hex.EncodeToString(msgs[0].Data) != hex.EncodeToString(want) {
		t.Fatalf("encoded %s %x\nwant %x", msgs[0].Channel, msgs[0].Data, want)
	}
	got, err := d.Decode(queue.Message{Channel: "socket.io#/#", Data: want})
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("decoded %#v %v", got, err)
	}
	// a server-side emit with binary is a msgpack map too
	msgs, err = d.Encode(&op.ServerSideEmit{Namespace: "/", Event: "b", Args: []any{[]byte{1}}})
	if err != nil || msgs[0].Data[0] != 0x84 {
		t.Fatalf("server-side emit with binary: %x %v", msgs[0].Data, err)
	}
}

// TestChannelChoice follows computeChannel: only a broadcast without
// acknowledgement to exactly one room uses the room's channel, and in
// dynamic mode not when the room looks like a socket id (20 UTF-16 units).
func TestChannelChoice(t *testing.T) {
	sid := "8Hq2nC0d3xYbR7aAAAAB"
	wide := strings.Repeat("é", 20)       // 20 UTF-16 units, 40 bytes
	astral := strings.Repeat("😀", 10)     // 20 UTF-16 units, 40 bytes
	short := strings.Repeat("😀", 5) + "x" // 11 units, 21 bytes
	for _, c := range []struct {
		mode  Mode
		e     op.Emit
		where string
	}{
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{"room1"}}}, "socket.io#/#room1#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{"room1"}, Except: []string{"x"}}}, "socket.io#/#room1#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{sid}}}, "socket.io#/#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{wide}}}, "socket.io#/#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{astral}}}, "socket.io#/#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{short}}}, "socket.io#/#" + short + "#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{"a", "b"}}}, "socket.io#/#"},
		{Dynamic, op.Emit{Target: op.Target{Namespace: "/admin"}}, "socket.io#/admin#"},
		{Dynamic, op.Emit{Target: op.Target{Rooms: []string{"room1"}}, Ack: &op.AckRequest{ID: "x"}}, "socket.io#/#"},
		{DynamicPrivate, op.Emit{Target: op.Target{Rooms: []string{sid}}}, "socket.io#/#" + sid + "#"},
		{Static, op.Emit{Target: op.Target{Rooms: []string{"room1"}}}, "socket.io#/#"},
	} {
		d := mustNew(t, Options{Mode: c.mode})
		c.e.Event = "ev"
		msgs, err := d.Encode(&c.e)
		if err != nil {
			t.Fatal(err)
		}
		if msgs[0].Channel != c.where {
			t.Errorf("%s mode, rooms %q ack %v: channel %q, want %q", c.mode, c.e.Rooms, c.e.Ack != nil, msgs[0].Channel, c.where)
		}
	}
	if _, err := New(Options{Mode: "dynamic-public"}); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

// TestFlagsAndOps: volatile and compress flags, the emitter's uid, other
// namespaces, leave and close-room, and what the protocol cannot say.
func TestFlagsAndOps(t *testing.T) {
	d := mustNew(t, Options{Key: "k"})
	f := false
	enc := func(o op.Op) string {
		t.Helper()
		msgs, err := d.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		return msgs[0].Channel + " " + string(msgs[0].Data)
	}
	for _, c := range []struct {
		o    op.Op
		want string
	}{
		{&op.Emit{Target: op.Target{Namespace: "/admin", Except: []string{"s1"}}, Event: "e", Volatile: true, Compress: &f},
			`k#/admin# {"type":3,"data":{"packet":{"type":2,"data":["e"]},"opts":{"rooms":[],"except":["s1"],"flags":{"volatile":true,"compress":false}}},"uid":"emitter","nsp":"/admin"}`},
		{&op.Emit{Target: op.Target{Rooms: []string{"r"}}, Event: "e", Volatile: true, Ack: &op.AckRequest{ID: "i", Timeout: 2 * time.Second}},
			`k#/# {"type":3,"data":{"packet":{"type":2,"data":["e"]},"requestId":"i","opts":{"rooms":["r"],"except":[],"flags":{"volatile":true,"timeout":2000}}},"uid":"emitter","nsp":"/"}`},
		{&op.Leave{Target: op.Target{Namespace: "/", Rooms: []string{"s1"}}, Rooms: []string{"r"}},
			`k#/# {"type":5,"data":{"opts":{"rooms":["s1"],"except":[],"flags":{}},"rooms":["r"]},"uid":"emitter","nsp":"/"}`},
		{&op.CloseRoom{Namespace: "/", Room: "r"},
			`k#/# {"type":5,"data":{"opts":{"rooms":["r"],"except":[],"flags":{}},"rooms":["r"]},"uid":"emitter","nsp":"/"}`},
		{&op.Disconnect{Target: op.Target{Rooms: []string{"r"}}, Close: true},
			`k#/# {"type":6,"data":{"opts":{"rooms":["r"],"except":[],"flags":{}},"close":true},"uid":"emitter","nsp":"/"}`},
		{&op.AckReply{Namespace: "/", Host: "0123456789abcdef", ID: "i", Args: []any{"a", "b"}},
			`k#/#0123456789abcdef# {"type":12,"data":{"requestId":"i","packet":"a"},"uid":"emitter","nsp":"/"}`},
	} {
		if got := enc(c.o); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.o.Kind(), got, c.want)
		}
	}
	for _, o := range []op.Op{&op.FetchSockets{IDsOnly: true, RequestID: "x"}, &op.AllRooms{RequestID: "x"}, &op.RoomsReply{RequestID: "x"}} {
		if _, err := d.Encode(o); !errors.Is(err, dialect.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", o.Kind(), err)
		}
	}
	if _, err := d.Encode(&op.Emit{Event: "connect"}); err == nil {
		t.Error("reserved event accepted")
	}
}

// TestReplies: the emitter's reply subscription is its response channel,
// sharded; an acknowledgement there is addressed to it.
func TestReplies(t *testing.T) {
	d := mustNew(t, Options{UID: "me"})
	sub := d.ReplySubscription("admin")
	if !reflect.DeepEqual(sub, queue.Subscription{Channels: []string{"socket.io#/admin#me#"}, Sharded: true}) {
		t.Fatalf("reply subscription %+v", sub)
	}
	o, err := d.Decode(queue.Message{Channel: "socket.io#/admin#me#", Data: []byte(`{"type":12,"data":{"requestId":"r","packet":"ans"},"uid":"n1","nsp":"/admin"}`)})
	if err != nil || !reflect.DeepEqual(o, &op.AckReply{Namespace: "/admin", Host: "me", ID: "r", Args: []any{"ans"}}) {
		t.Fatalf("ack: %#v %v", o, err)
	}
	if id := d.NewAckID(); len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("ack id %q", id)
	}
	if d.ShardedServerCountChannel("/") != "socket.io#/#" {
		t.Fatal(d.ShardedServerCountChannel("/"))
	}
}

func TestDecodeRefusals(t *testing.T) {
	d := mustNew(t, Options{})
	for _, c := range []struct {
		data string
		want error
	}{
		{`{"type":2,"uid":"x","nsp":"/"}`, dialect.ErrUnsupported},  // heartbeat
		{`{"type":13,"uid":"x","nsp":"/"}`, dialect.ErrUnsupported}, // adapter close
		{`{"type":3,"data":{"packet":{"type":0,"data":[]},"opts":{}},"uid":"x","nsp":"/"}`, dialect.ErrUnsupported},
		{`{"type":3,"data":{},"uid":"x"}`, dialect.ErrMalformed},             // no nsp
		{`{"type":"3","data":{},"uid":"x","nsp":"/"}`, dialect.ErrMalformed}, // type not a number
		{`{"type":4,"data":{"rooms":["a"]},"uid":"x","nsp":"/"}`, dialect.ErrMalformed},
		{`{"type":11,"data":{"clientCount":1},"uid":"x","nsp":"/"}`, dialect.ErrMalformed},
		{`{"type":3,"data":{"packet":{"type":2,"data":[1]},"opts":{}},"uid":"x","nsp":"/"}`, dialect.ErrMalformed},
		{`{"type":3} trailing`, dialect.ErrMalformed},
		{"\x93\x01\x02\x03", dialect.ErrMalformed}, // msgpack, not a map
		{"", dialect.ErrMalformed},
	} {
		if _, err := d.Decode(queue.Message{Channel: "socket.io#/#", Data: []byte(c.data)}); !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.data, err, c.want)
		}
	}
	if _, err := d.Decode(queue.Message{Channel: "other#/#", Data: []byte(`{}`)}); !errors.Is(err, dialect.ErrUnsupported) {
		t.Errorf("foreign channel: %v", err)
	}
}

// hostile inputs: nesting and announced lengths cost at most a constant
// times the input's size, and fail.
var hostile = []testenv.HostileCase{
	{Name: "json-nested-arrays", Make: func(n int) []byte {
		return []byte(`{"type":3,"data":` + strings.Repeat("[", n))
	}, WantErr: true},
	{Name: "json-nested-objects", Make: func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n/5))
	}, WantErr: true},
	{Name: "json-wide-rooms", Make: func(n int) []byte {
		return testenv.Fill(n, `{"type":4,"data":{"opts":{"rooms":[`, `"r"`, ",", `],"except":[]},"rooms":["x"]},"uid":"u","nsp":"/"}`)
	}},
	{Name: "msgpack-nested-maps", Make: func(n int) []byte {
		return []byte(strings.Repeat("\x81\xa1a", n/3))
	}, WantErr: true},
	{Name: "msgpack-huge-lengths", Make: func(n int) []byte {
		return []byte(strings.Repeat("\xdf\xff\xff\xff\xff\xa1a", n/7))
	}, WantErr: true},
}

func decodeBytes(b []byte) error {
	_, err := decoder.Decode(queue.Message{Channel: "socket.io#/#", Data: b})
	return err
}

var decoder, _ = New(Options{})

func TestHostileInputs(t *testing.T) { testenv.CheckHostile(t, hostile, decodeBytes) }

func BenchmarkHostile(b *testing.B) { testenv.BenchHostile(b, hostile, decodeBytes) }

// FuzzDecode: any bytes decode or fail without panicking, within a bounded
// multiple of their size, and what decodes encodes again.
func FuzzDecode(f *testing.F) {
	for _, g := range golden {
		f.Add([]byte(g.data))
	}
	f.Add([]byte("\x84\xa4type\x03\xa4data\x82\xa6packet\x82\xa4type\x02\xa4data\x92\xa3bin\xc4\x02\x01\x02\xa4opts\x83\xa5rooms\x90\xa6except\x90\xa5flags\x80\xa3uid\xa1u\xa3nsp\xa1/"))
	f.Fuzz(func(t *testing.T, in []byte) {
		testenv.CheckDecoder(t, decoder, queue.Message{Channel: "socket.io#/#", Data: in})
	})
}

// A server node's dialect: a fresh 16-hex uid, the main and own response
// channels, a room channel per held room as the mode says, and answers
// addressed to the requester's response channel (publishResponse).
func TestMemberSide(t *testing.T) {
	d := mustNew(t, Options{Key: "k", Mode: Dynamic})
	m := d.NewMember().(*Dialect)
	if len(m.Origin()) != 16 || m.Origin() == d.NewMember().Origin() || m.Key() != "k" || m.Mode() != Dynamic {
		t.Fatalf("NewMember: %+v", m)
	}
	if _, err := hex.DecodeString(m.Origin()); err != nil {
		t.Fatalf("uid %q is not hex", m.Origin())
	}
	sub := m.ServerSubscription("/chat")
	if want := []string{"k#/chat#", "k#/chat#" + m.Origin() + "#"}; !reflect.DeepEqual(sub.Channels, want) || !sub.Sharded {
		t.Fatalf("ServerSubscription: %+v", sub)
	}
	for _, c := range []struct {
		mode    Mode
		private bool
		want    bool
	}{{Dynamic, false, true}, {Dynamic, true, false}, {DynamicPrivate, true, true}, {DynamicPrivate, false, true}, {Static, false, false}} {
		s, ok := mustNew(t, Options{Key: "k", Mode: c.mode}).RoomSubscription("/", "room", c.private)
		if ok != c.want || ok && (!reflect.DeepEqual(s.Channels, []string{"k#/#room#"}) || !s.Sharded) {
			t.Errorf("RoomSubscription in %s, private %v: %+v %v", c.mode, c.private, s, ok)
		}
	}
	for _, o := range []op.Op{
		&op.ClientCount{Namespace: "/", ID: "r1", Count: 2, Host: "abc"},
		&op.AckReply{Namespace: "/", ID: "r1", Host: "abc"},
		&op.SocketsReply{Namespace: "/", RequestID: "r1", Host: "abc"},
		&op.ServerSideEmitReply{Namespace: "/", RequestID: "r1", Args: []any{1}, Host: "abc"},
	} {
		msgs, err := m.Encode(o)
		if err != nil || len(msgs) != 1 || msgs[0].Channel != "k#/#abc#" || !msgs[0].Sharded {
			t.Errorf("%s: %+v %v", o.Kind(), msgs, err)
		}
		o2, err := m.Decode(msgs[0])
		if err != nil || o2.Kind() != o.Kind() {
			t.Errorf("%s decoded: %+v %v", o.Kind(), o2, err)
		}
	}
	if msgs, _ := m.Encode(&op.ClientCount{Namespace: "/", ID: "r1"}); msgs[0].Channel != "k#/#" {
		t.Errorf("an answer without Host: %s", msgs[0].Channel)
	}
}
