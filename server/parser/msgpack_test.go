package parser

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// unhexBytes decodes hex (spaces ignored) of the tests' own vectors.
func unhexBytes(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// msgpackVectors are packets as the peers encode them: notepack.io 2.2.0
// under socket.io-msgpack-parser 3.0.2 (socket.io-client 4.8.1), and
// python-socketio's MsgPackPacket with msgpack 1.0 (which sends "data":
// nil when there is none). want is the packet every parser gives.
var msgpackVectors = []struct {
	name, peer, hex string
	want            Packet
	sameBytes       bool // EncodeMsgpack(&want) gives the peer's bytes
}{
	{"connect", "node", "82a47479706500a36e7370a12f",
		Packet{Type: Connect, Namespace: "/"}, true},
	{"connect with auth", "node", "83a47479706500a46461746181a3736964a3616263a36e7370a52f63686174",
		Packet{Type: Connect, Namespace: "/chat", Data: json.RawMessage(`{"sid":"abc"}`)}, true},
	{"event", "node", "83a47479706502a46461746198a568656c6c6f01fbcd012ccb3ff8000000000000c3c082a161920102a2c3bca3c3a90aa36e7370a12f",
		Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["hello",1,-5,300,1.5,true,null,{"a":[1,2],"ü":"é\n"}]`)}, false},
	{"binary event with ack", "node", "84a47479706502a46461746193a362696ec40301020381a178c400a36e7370a12fa2696407",
		Packet{Type: Event, Namespace: "/", ID: 7, HasID: true,
			Data:        json.RawMessage(`["bin",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]`),
			Attachments: [][]byte{{1, 2, 3}, {}}}, true},
	{"ack with a 33-bit id", "node", "84a47479706503a4646174619181a26f6bc3a36e7370a12fa26964cf0000000100000000",
		Packet{Type: Ack, Namespace: "/", ID: 1 << 32, HasID: true, Data: json.RawMessage(`[{"ok":true}]`)}, false},
	{"date", "node", "83a47479706502a46461746192a164d7000000018cc820db2ea36e7370a12f",
		Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["d","2024-01-02T03:04:05.678Z"]`)}, false},
	{"disconnect", "node", "82a47479706501a36e7370a22f78",
		Packet{Type: Disconnect, Namespace: "/x"}, true},
	{"connect error", "node", "83a47479706504a46461746181a76d657373616765a26e6fa36e7370a12f",
		Packet{Type: ConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"no"}`)}, true},
	{"connect, data nil", "python", "83a47479706500a464617461c0a36e7370a12f",
		Packet{Type: Connect, Namespace: "/"}, false},
	{"binary event", "python", "84a47479706502a46461746193a26576c402010281a16bcb3ff0000000000000a36e7370a52f63686174a2696403",
		Packet{Type: Event, Namespace: "/chat", ID: 3, HasID: true,
			Data: json.RawMessage(`["ev",{"_placeholder":true,"num":0},{"k":1.0}]`), Attachments: [][]byte{{1, 2}}}, true},
}

func TestMsgpackPeerVectors(t *testing.T) {
	for _, v := range msgpackVectors {
		t.Run(v.peer+"/"+v.name, func(t *testing.T) {
			in := unhexBytes(v.hex)
			p, err := MsgPack.NewDecoder().Add(in, true)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(*p, v.want) {
				t.Fatalf("decoded\n%+v (data %s)\nwant\n%+v (data %s)", *p, p.Data, v.want, v.want.Data)
			}
			msgs, err := MsgPack.Encode(p)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if len(msgs) != 1 || !msgs[0].Binary {
				t.Fatalf("encoded as %d messages (binary %v), want one binary message", len(msgs), len(msgs) > 0 && msgs[0].Binary)
			}
			if v.sameBytes && !bytes.Equal(msgs[0].Data, in) {
				t.Errorf("encoded %x\nthe peer's %x", msgs[0].Data, in)
			}
			again, err := DecodeMsgpack(msgs[0].Data)
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

// TestMsgpackEncodesTheServersPackets: the packets the server builds
// (EncodeData's JSON, BINARY_EVENT types, Deconstruct's placeholders)
// become the msgpack a peer decodes, without "data" when there is none
// (socket.io-msgpack-parser refuses a DISCONNECT whose data is nil).
func TestMsgpackEncodesTheServersPackets(t *testing.T) {
	data, atts, err := EncodeData([]any{"bin", []byte{1, 2, 3}, map[string]any{"x": []byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeMsgpack(&Packet{Type: BinaryEvent, Namespace: "/", ID: 7, HasID: true, Data: data, Attachments: atts})
	if err != nil {
		t.Fatal(err)
	}
	if want := "84a47479706502a46461746193a362696ec40301020381a178c400a36e7370a12fa2696407"; hex.EncodeToString(b) != want {
		t.Errorf("binary event: %x\nwant       %s", b, want)
	}
	b, _ = EncodeMsgpack(&Packet{Type: Disconnect})
	if want := "82a47479706501a36e7370a12f"; hex.EncodeToString(b) != want {
		t.Errorf("disconnect: %x, want %s", b, want)
	}
	// whitespace, escapes, big and negative numbers, nested containers of
	// 16 and more elements (array16 / map16 headers)
	in := `[ "a\"b\u00e9\ud83d\ude00" , 18446744073709551615, -9223372036854775808, 1e3, -0.5,` +
		`[` + strings.Repeat(`0,`, 16) + `0], {"k":{}, "l":[]} ]`
	b, err = EncodeMsgpack(&Packet{Type: Event, Data: json.RawMessage(in)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodeMsgpack(b)
	if err != nil {
		t.Fatalf("%x: %v", b, err)
	}
	var got, want any
	json.Unmarshal(p.Data, &got)
	json.Unmarshal([]byte(in), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip of %s: %s", in, p.Data)
	}
	if !bytes.Contains(b, unhexBytes("dc0011")) {
		t.Errorf("a 17-element array is not an array16: %x", b)
	}
}

func TestMsgpackRefusesInvalidPackets(t *testing.T) {
	for _, c := range []struct{ name, hex string }{
		{"empty", ""},
		{"not a map", "92a474797065a36e7370"},
		{"truncated map", "83a47479706500"},
		{"no type", "81a36e7370a12f"},
		{"no namespace", "81a47479706500"},
		{"binary event type", "82a47479706505a36e7370a12f"},
		{"type 7", "82a47479706507a36e7370a12f"},
		{"type as a string", "82a474797065a132a36e7370a12f"},
		{"namespace not a string", "82a47479706500a36e737001"},
		{"non-string packet key", "8300a12fa47479706500a36e7370a12f"},
		{"event without data", "82a47479706502a36e7370a12f"},
		{"event data not an array", "83a47479706502a46461746181a161a162a36e7370a12f"},
		{"event with an empty array", "83a47479706502a46461746190a36e7370a12f"},
		{"event named with a map", "83a47479706502a4646174619180a36e7370a12f"},
		{"reserved event name", "83a47479706502a46461746191aa646973636f6e6e656374a36e7370a12f"},
		{"ack without id", "83a47479706503a46461746190a36e7370a12f"},
		{"negative id", "84a47479706502a46461746191a165a36e7370a12fa26964ff"},
		{"fractional id", "84a47479706502a46461746191a165a36e7370a12fa26964cb3ff8000000000000"},
		{"connect data not a map", "83a47479706500a46461746191a165a36e7370a12f"},
		{"disconnect with data", "83a47479706501a46461746180a36e7370a12f"},
		{"trailing bytes", "82a47479706500a36e7370a12fc0"},
		{"unknown extension", "83a47479706502a46461746192a165d40700a36e7370a12f"},
		{"map key that is an array", "83a47479706502a46461746192a1658190c0a36e7370a12f"},
		{"reserved code 0xc1", "83a47479706502a46461746192a165c1a36e7370a12f"},
		{"string longer than the message", "83a47479706502a46461746192a165dbffffffffa36e7370a12f"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := unhexBytes(c.hex)
			if p, err := DecodeMsgpack(in); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%x: %+v, %v; want an ErrInvalid", in, p, err)
			}
		})
	}
	if _, err := MsgPack.NewDecoder().Add([]byte(`2["e"]`), false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a text message: %v", err)
	}
}

// TestMsgpackValuesJSONLacks: what JSON cannot hold becomes what
// JSON.stringify would make of it in the browser that sent it.
func TestMsgpackValuesJSONLacks(t *testing.T) {
	for _, c := range []struct {
		name, data string // hex of the data array after the event name "e"
		want       string
		atts       int
	}{
		{"integer map keys", "81 01 a1 61", `{"1":"a"}`, 0},
		{"negative integer key", "81 ff c3", `{"-1":true}`, 0},
		{"undefined (notepack fixext 1 type 0)", "d4 00 00", `null`, 0},
		{"ArrayBuffer (notepack ext 8 type 0)", "c7 02 00 0a 0b", `{"_placeholder":true,"num":0}`, 1},
		{"timestamp 32", "d6 ff 65 93 7d 25", `"2024-01-02T03:04:05.000Z"`, 0},
		{"timestamp 64", "d7 ff a1 a5 d6 00 65 93 7d 25", `"2024-01-02T03:04:05.678Z"`, 0},
		{"NaN", "cb 7f f8 00 00 00 00 00 01", `null`, 0},
		{"float32", "ca 3f c0 00 00", `1.5`, 0},
		{"integral float stays a float", "cb 3f f0 00 00 00 00 00 00", `1.0`, 0},
		{"uint64", "cf ff ff ff ff ff ff ff ff", `18446744073709551615`, 0},
		{"invalid UTF-8", "a2 ff 61", `"\ufffda"`, 0},
		{"control characters", "a2 01 22", `"\u0001\""`, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := unhexBytes("83 a4 74797065 02 a3 6e7370 a1 2f a4 64617461 92 a1 65" + c.data)
			p, err := DecodeMsgpack(in)
			if err != nil {
				t.Fatalf("%x: %v", in, err)
			}
			if want := `["e",` + c.want + `]`; string(p.Data) != want || len(p.Attachments) != c.atts {
				t.Fatalf("data %s with %d attachments, want %s with %d", p.Data, len(p.Attachments), want, c.atts)
			}
		})
	}
}

// TestMsgpackIgnoresOtherKeys: socket.io-client adds "options" to its
// packets; unknown keys are skipped, binary values in them included.
func TestMsgpackIgnoresOtherKeys(t *testing.T) {
	// {"type":2,"options":{"compress":true,"b":bin},"data":["e",bin],"nsp":"/"}
	in := unhexBytes("84a47479706502a76f7074696f6e7382a8636f6d7072657373c3a162c40109a46461746192a165c40107a36e7370a12f")
	p, err := DecodeMsgpack(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Data) != `["e",{"_placeholder":true,"num":0}]` || !reflect.DeepEqual(p.Attachments, [][]byte{{7}}) {
		t.Fatalf("data %s, attachments %v", p.Data, p.Attachments)
	}
}

// TestByName: the names a command-line flag takes (sioserver --parser).
func TestByName(t *testing.T) {
	if ByName("json") != JSON || ByName("msgpack") != MsgPack || ByName("") != nil || ByName("MsgPack") != nil {
		t.Fatalf("ByName: json %v, msgpack %v", ByName("json"), ByName("msgpack"))
	}
	if JSON.Name() != "json" || MsgPack.Name() != "msgpack" {
		t.Fatal("names")
	}
}
