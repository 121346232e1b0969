package nodestreams

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// uid and peer are the uids of the two Node servers of the capture below.
const (
	uid  = "e37985bb504bc496"
	peer = "7bce8d3bcf704bd7"
	id   = "1796155567442-0"
)

func mustNew(t testing.TB, o Options) *Dialect {
	t.Helper()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// goldenEntries are stream entries that createAdapter
// (@socket.io/redis-streams-adapter 0.3.1, socket.io 4.8.1) appended, as
// MONITOR showed them: XADD socket.io MAXLEN ~ 10000 * uid <uid> nsp /
// type <type> data <data>; and the ops they mean.
var goldenEntries = []struct {
	name, typ, data string
	op              op.Op
}{
	{"room broadcast", "3", `{"packet":{"type":2,"data":["hello",{"a":1}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}`,
		&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Event: "hello", Args: []any{map[string]any{"a": int64(1)}}, Origin: uid, Offset: id}},
	{"binary broadcast", "3", "gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQCAQKkb3B0c4Olcm9vbXOQpmV4Y2VwdJClZmxhZ3OA",
		&op.Emit{Target: op.Target{Namespace: "/"}, Event: "bin", Args: []any{[]byte{1, 2}}, Origin: uid, Offset: id}},
	{"volatile, except, compress", "3", `{"packet":{"type":2,"data":["v",1]},"opts":{"rooms":["room1"],"except":["r9"],"flags":{"volatile":true,"compress":false}}}`,
		&op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}, Except: []string{"r9"}}, Event: "v", Args: []any{int64(1)}, Volatile: true, Compress: new(bool), Origin: uid, Offset: id}},
	{"join", "4", `{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room2"]}`,
		&op.Join{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Rooms: []string{"room2"}, Origin: uid}},
	{"leave", "5", `{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room2"]}`,
		&op.Leave{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, Rooms: []string{"room2"}, Origin: uid}},
	{"disconnect", "6", `{"opts":{"rooms":[],"except":[],"flags":{}},"close":false}`,
		&op.Disconnect{Target: op.Target{Namespace: "/"}, Origin: uid}},
}

// goldenPubSub are the Pub/Sub messages of the same capture (msgpack of
// the whole message, from @msgpack/msgpack), on channels of prefix "cap".
var goldenPubSub = []struct {
	name, channel, hex string
	op                 op.Op
}{
	{"broadcast with ack", "cap#/#", "84a47479706503a46461746183a67061636b657482a47479706502a46461746192a361736b01a9726571756573744964b064396364383538353463356132333137a46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd01f4a3756964b065333739383562623530346263343936a36e7370a12f",
		&op.Emit{Target: op.Target{Namespace: "/"}, Event: "ask", Args: []any{int64(1)}, Ack: &op.AckRequest{ID: "d9cd85854c5a2317", Timeout: 500 * time.Millisecond}, Origin: uid}},
	{"client count", "cap#/#" + uid + "#", "84a4747970650ba46461746182a9726571756573744964b064396364383538353463356132333137ab636c69656e74436f756e7401a3756964b037626365386433626366373034626437a36e7370a12f",
		&op.ClientCount{Namespace: "/", ID: "d9cd85854c5a2317", Count: 1, Origin: peer, Host: uid}},
	{"ack", "cap#/#" + uid + "#", "84a4747970650ca46461746182a9726571756573744964b064396364383538353463356132333137a67061636b6574a3616e73a3756964b037626365386433626366373034626437a36e7370a12f",
		&op.AckReply{Namespace: "/", ID: "d9cd85854c5a2317", Args: []any{"ans"}, Host: uid}},
	{"fetch sockets", "cap#/#", "84a47479706507a46461746182a46f70747383a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380a9726571756573744964b036333831626432383261306530653634a3756964b065333739383562623530346263343936a36e7370a12f",
		&op.FetchSockets{Target: op.Target{Namespace: "/", Rooms: []string{"room1"}}, RequestID: "6381bd282a0e0e64", Origin: uid}},
	{"server-side emit", "cap#/#", "84a47479706509a46461746181a67061636b657492a368657901a3756964b065333739383562623530346263343936a36e7370a12f",
		&op.ServerSideEmit{Namespace: "/", Event: "hey", Args: []any{int64(1)}, Origin: uid}},
	{"server-side emit with ack", "cap#/#", "84a47479706509a46461746182a9726571756573744964b061366237653039353231616530663633a67061636b657492a368657902a3756964b065333739383562623530346263343936a36e7370a12f",
		&op.ServerSideEmit{Namespace: "/", Event: "hey", Args: []any{int64(2)}, RequestID: "a6b7e09521ae0f63", Origin: uid}},
	{"server-side emit answer", "cap#/#" + uid + "#", "84a4747970650aa46461746182a9726571756573744964b061366237653039353231616530663633a67061636b6574a4706f6e67a3756964b037626365386433626366373034626437a36e7370a12f",
		&op.ServerSideEmitReply{Namespace: "/", RequestID: "a6b7e09521ae0f63", Args: []any{"pong"}, Origin: peer, Host: uid}},
}

// entry is a delivered stream entry of fields k, v, ...
func entry(stream, entryID string, kv ...string) queue.Message {
	var data []byte
	for i := 0; i+1 < len(kv); i += 2 {
		data = queue.AppendStreamField(data, kv[i], kv[i+1])
	}
	return queue.Message{Channel: stream, Stream: true, ID: entryID, Data: data}
}

func fieldList(t testing.TB, m queue.Message) []string {
	t.Helper()
	var l []string
	if err := queue.StreamFields(m.Data, func(f, v []byte) bool {
		l = append(l, string(f), string(v))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestGoldenEntries(t *testing.T) {
	d := mustNew(t, Options{UID: uid})
	for _, g := range goldenEntries {
		msgs, err := d.Encode(g.op)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		want := []string{"uid", uid, "nsp", "/", "type", g.typ, "data", g.data}
		if len(msgs) != 1 || !msgs[0].Stream || msgs[0].Channel != "socket.io" || msgs[0].MaxLen != 10000 || !reflect.DeepEqual(fieldList(t, msgs[0]), want) {
			t.Errorf("%s: encoded %+v\n %q\nwant %q", g.name, msgs, fieldList(t, msgs[0]), want)
		}
		got, err := d.Decode(entry("socket.io", id, want...))
		if err != nil {
			t.Fatalf("%s: decode: %v", g.name, err)
		}
		if !reflect.DeepEqual(got, g.op) {
			t.Errorf("%s: decoded\n %#v\nwant %#v", g.name, got, g.op)
		}
	}
}

func TestGoldenPubSub(t *testing.T) {
	d := mustNew(t, Options{Key: "cap", UID: uid})
	for _, g := range goldenPubSub {
		data, _ := hex.DecodeString(g.hex)
		got, err := d.Decode(queue.Message{Channel: g.channel, Data: data})
		if err != nil {
			t.Fatalf("%s: decode: %v", g.name, err)
		}
		if !reflect.DeepEqual(got, g.op) {
			t.Errorf("%s: decoded\n %#v\nwant %#v", g.name, got, g.op)
		}
		enc := d
		if strings.HasSuffix(g.channel, uid+"#") { // answered by the peer (an AckReply carries no origin: the encoder's uid)
			enc = mustNew(t, Options{Key: "cap", UID: peer})
		}
		msgs, err := enc.Encode(got)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if len(msgs) != 1 || msgs[0].Stream || msgs[0].Channel != g.channel || hex.EncodeToString(msgs[0].Data) != g.hex {
			t.Errorf("%s: encoded %s %x\nwant %s %s", g.name, msgs[0].Channel, msgs[0].Data, g.channel, g.hex)
		}
	}
}

// TestStream: the namespace's stream as the adapter computes it, with
// hashCode values taken from the adapter's util.hashCode.
func TestStream(t *testing.T) {
	if s := mustNew(t, Options{}).Stream("/chat"); s != "socket.io" {
		t.Fatal(s)
	}
	for _, c := range []struct {
		ns    string
		count int
		want  string
	}{
		{"/", 3, "s-2"}, {"/admin", 7, "s-4"}, {"/é😀", 7, "s-1"}, {"/zzzzzz", 3, "s-0"}, // hash -1922785617: -0
		{"/zzzzzz", 7, "s--4"}, {"/namespace-9", 3, "s--1"}, {"/Ünïcødé-𝄞-ns", 7, "s-5"}, {"chat", 3, "s-1"},
	} {
		if got := mustNew(t, Options{StreamName: "s", StreamCount: c.count}).Stream(c.ns); got != c.want {
			t.Errorf("Stream(%q) of %d = %s, want %s", c.ns, c.count, got, c.want)
		}
	}
	if _, err := New(Options{StreamCount: -1}); err == nil {
		t.Error("negative stream count accepted")
	}
	if _, err := New(Options{MaxLen: -1}); err == nil {
		t.Error("negative max length accepted")
	}
}

// TestRouting: what goes to the stream and what to Pub/Sub, and where.
func TestRouting(t *testing.T) {
	d := mustNew(t, Options{Key: "k", StreamName: "st", MaxLen: 50})
	for _, c := range []struct {
		op      op.Op
		stream  bool
		channel string
	}{
		{&op.Emit{Target: op.Target{Namespace: "/a", Rooms: []string{"r"}}, Event: "e"}, true, "st"},
		{&op.Emit{Target: op.Target{Namespace: "/a"}, Event: "e", Volatile: true}, true, "st"},
		{&op.Emit{Target: op.Target{Namespace: "/a"}, Event: "e", Ack: &op.AckRequest{ID: "r1"}}, false, "k#/a#"},
		{&op.Join{Target: op.Target{Namespace: "/a"}, Rooms: []string{"x"}}, true, "st"},
		{&op.CloseRoom{Namespace: "/a", Room: "x"}, true, "st"},
		{&op.Disconnect{Target: op.Target{Namespace: "/a"}, Close: true}, true, "st"},
		{&op.FetchSockets{Target: op.Target{Namespace: "/a"}, RequestID: "r"}, false, "k#/a#"},
		{&op.ServerSideEmit{Namespace: "/a", Event: "e"}, false, "k#/a#"},
		{&op.ClientCount{Namespace: "/a", ID: "r", Host: "h"}, false, "k#/a#h#"},
		{&op.ClientCount{Namespace: "/a", ID: "r"}, false, "k#/a#"},
		{&op.SocketsReply{Namespace: "/a", RequestID: "r", Host: "h"}, false, "k#/a#h#"},
	} {
		msgs, err := d.Encode(c.op)
		if err != nil || len(msgs) != 1 || msgs[0].Stream != c.stream || msgs[0].Channel != c.channel {
			t.Errorf("%s: %+v %v", c.op.Kind(), msgs, err)
			continue
		}
		if c.stream && msgs[0].MaxLen != 50 {
			t.Errorf("%s: MaxLen %d", c.op.Kind(), msgs[0].MaxLen)
		}
		if !c.stream && msgs[0].Data[0]&0xf0 != 0x80 {
			t.Errorf("%s: not a msgpack map: %x", c.op.Kind(), msgs[0].Data)
		}
		m := msgs[0]
		m.ID = "5-1"
		o, err := d.Decode(m)
		if err != nil || o.Kind() != c.op.Kind() && !(c.op.Kind() == "close-room" && o.Kind() == "leave") {
			t.Errorf("%s decoded: %#v %v", c.op.Kind(), o, err)
		}
	}
	for _, o := range []op.Op{&op.AllRooms{Namespace: "/"}, &op.FetchSockets{IDsOnly: true}, &op.SocketsReply{IDsOnly: true}} {
		if _, err := d.Encode(o); !errors.Is(err, dialect.ErrUnsupported) {
			t.Errorf("%s: %v", o.Kind(), err)
		}
	}
	if _, err := d.Encode(&op.Emit{Event: "connect"}); err == nil {
		t.Error("reserved event accepted")
	}
}

func TestMemberSide(t *testing.T) {
	d := mustNew(t, Options{Key: "k", StreamName: "st"})
	m := d.NewMember().(*Dialect)
	if len(m.Origin()) != 16 || m.Origin() == d.NewMember().Origin() || m.Key() != "k" || m.MaxLen() != 10000 || d.Origin() != "emitter" {
		t.Fatalf("NewMember: %+v", m)
	}
	sub := m.ServerSubscription("/chat")
	want := queue.Subscription{Channels: []string{"k#/chat#", "k#/chat#" + m.Origin() + "#"}, Streams: []string{"st"}}
	if !reflect.DeepEqual(sub, want) {
		t.Fatalf("ServerSubscription: %+v", sub)
	}
	if r := m.ReplySubscription("/chat"); !reflect.DeepEqual(r, queue.Subscription{Channels: []string{"k#/chat#" + m.Origin() + "#"}}) {
		t.Fatalf("ReplySubscription: %+v", r)
	}
	if m.ServerCountChannel("chat") != "k#/chat#" || m.Name() != "node-streams" {
		t.Fatal(m.ServerCountChannel("chat"), m.Name())
	}
	if id := m.NewAckID(); len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("ack id %q", id)
	}
}

// TestBinaryPubSub: a server-side emit with binary and an answer with
// binary are msgpack maps carrying bin values, read back as []byte.
func TestBinaryPubSub(t *testing.T) {
	d := mustNew(t, Options{})
	for _, o := range []op.Op{
		&op.ServerSideEmit{Namespace: "/", Event: "b", Args: []any{[]byte{1}}, Origin: "x"},
		&op.ServerSideEmitReply{Namespace: "/", RequestID: "r", Args: []any{[]byte{2}}, Origin: "x"},
	} {
		msgs, err := d.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := d.Decode(msgs[0])
		if err != nil || !reflect.DeepEqual(back, o) {
			t.Fatalf("%#v: %#v %v", o, back, err)
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	d := mustNew(t, Options{})
	ok := `{"packet":{"type":2,"data":["e"]},"opts":{"rooms":[],"except":[],"flags":{}}}`
	for _, c := range []struct {
		name string
		m    queue.Message
		want error
	}{
		{"no nsp (skipped by the adapter)", entry("socket.io", id, "uid", "u", "type", "3", "data", ok), dialect.ErrUnsupported},
		{"type not a number", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "3a", "data", ok), dialect.ErrMalformed},
		{"type too long", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "0003", "data", ok), dialect.ErrMalformed},
		{"negative type", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "-3", "data", ok), dialect.ErrMalformed},
		{"no data", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "3"), dialect.ErrMalformed},
		{"bad JSON", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "3", "data", "{"), dialect.ErrMalformed},
		{"bad base64", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "3", "data", "!!!"), dialect.ErrMalformed},
		{"base64 of a non-map", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "3", "data", "kwECAw=="), dialect.ErrMalformed},
		{"heartbeat", entry("socket.io", id, "uid", "u", "nsp", "/", "type", "2"), dialect.ErrUnsupported},
		{"bad fields", queue.Message{Channel: "socket.io", Stream: true, Data: []byte{9}}, dialect.ErrMalformed},
		{"foreign channel", queue.Message{Channel: "other#/#", Data: []byte{0x80}}, dialect.ErrUnsupported},
		{"JSON on Pub/Sub", queue.Message{Channel: "socket.io#/#", Data: []byte(`{"type":9}`)}, dialect.ErrMalformed},
		{"msgpack array on Pub/Sub", queue.Message{Channel: "socket.io#/#", Data: []byte{0x93, 1, 2, 3}}, dialect.ErrMalformed},
		{"empty Pub/Sub", queue.Message{Channel: "socket.io#/#"}, dialect.ErrMalformed},
	} {
		if _, err := d.Decode(c.m); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// base64 without padding, or with the URL alphabet, is read as Node reads it
	g := goldenEntries[1]
	for _, data := range []string{strings.TrimRight(g.data, "="), strings.NewReplacer("+", "-", "/", "_").Replace(g.data)} {
		if o, err := d.Decode(entry("socket.io", id, "uid", uid, "nsp", "/", "type", "3", "data", data)); err != nil || !reflect.DeepEqual(o, g.op) {
			t.Errorf("%q: %#v %v", data, o, err)
		}
	}
	// the offset is the entry's only for broadcasts read from the stream
	if o, _ := d.Decode(entry("socket.io", id, "uid", "u", "nsp", "/", "type", "4", "data", `{"opts":{"rooms":[],"except":[]},"rooms":["a"]}`)); o.(*op.Join).Origin != "u" {
		t.Errorf("join: %#v", o)
	}
}

// hostile inputs: entries and messages whose nesting or announced lengths
// would cost more than a constant times their size fail instead.
var hostile = []testenv.HostileCase{
	{Name: "entry-json-nested", Make: func(n int) []byte {
		return entryBytes("3", `{"packet":`+strings.Repeat("[", n))
	}, WantErr: true},
	{Name: "entry-json-wide-rooms", Make: func(n int) []byte {
		return entryBytes("4", string(testenv.Fill(n, `{"opts":{"rooms":[`, `"r"`, ",", `],"except":[]},"rooms":["x"]}`)))
	}},
	{Name: "entry-base64-nested-maps", Make: func(n int) []byte {
		return entryBytes("3", b64(strings.Repeat("\x81\xa1a", n/4)))
	}, WantErr: true},
	{Name: "entry-base64-huge-lengths", Make: func(n int) []byte {
		return entryBytes("3", b64(strings.Repeat("\xdf\xff\xff\xff\xff\xa1a", n/10)))
	}, WantErr: true},
	{Name: "entry-many-fields", Make: func(n int) []byte {
		return []byte(strings.Repeat("\x03uid\x01u", n/7))
	}, WantErr: true},
	{Name: "pubsub-msgpack-nested-maps", Make: func(n int) []byte {
		return append([]byte{0}, strings.Repeat("\x81\xa1a", n/3)...)
	}, WantErr: true},
	{Name: "pubsub-msgpack-huge-lengths", Make: func(n int) []byte {
		return append([]byte{0}, strings.Repeat("\xdf\xff\xff\xff\xff\xa1a", n/7)...)
	}, WantErr: true},
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func entryBytes(typ, data string) []byte {
	return append([]byte{1}, entry("socket.io", id, "uid", "u", "nsp", "/", "type", typ, "data", data).Data...)
}

// decodeBytes decodes b as a stream entry's Data when it starts with 1,
// as a Pub/Sub message when it starts with 0 (for the fuzzer and the
// hostile cases).
func decodeBytes(b []byte) error {
	_, err := decoder.Decode(message(b))
	return err
}

func message(b []byte) queue.Message {
	if len(b) > 0 && b[0] == 1 {
		return queue.Message{Channel: "socket.io", Stream: true, ID: id, Data: b[1:]}
	}
	if len(b) > 0 {
		b = b[1:]
	}
	return queue.Message{Channel: "socket.io#/#", Data: b}
}

var decoder, _ = New(Options{})

func TestHostileInputs(t *testing.T) { testenv.CheckHostile(t, hostile, decodeBytes) }

func BenchmarkHostile(b *testing.B) { testenv.BenchHostile(b, hostile, decodeBytes) }

// FuzzDecode: stream entries and Pub/Sub messages decode or fail without
// panicking, within a bounded multiple of their size, and what decodes
// encodes again into something that decodes.
func FuzzDecode(f *testing.F) {
	for _, g := range goldenEntries {
		f.Add(entryBytes(g.typ, g.data))
	}
	for _, g := range goldenPubSub {
		data, _ := hex.DecodeString(g.hex)
		f.Add(append([]byte{0}, data...))
	}
	f.Fuzz(func(t *testing.T, in []byte) { testenv.CheckDecoder(t, decoder, message(in)) })
}

func TestEntryIDs(t *testing.T) {
	d := mustNew(t, Options{})
	for i := range 3 {
		eid := "17-" + strconv.Itoa(i)
		o, err := d.Decode(entry("socket.io", eid, "uid", "u", "nsp", "/", "type", "3", "data", goldenEntries[0].data))
		if err != nil || o.(*op.Emit).Offset != eid {
			t.Fatalf("%#v %v", o, err)
		}
	}
}
