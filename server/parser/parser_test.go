package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	cases := []struct {
		in   string
		want Packet
	}{
		{"0", Packet{Type: Connect, Namespace: "/"}},
		{`0{"token":"123"}`, Packet{Type: Connect, Namespace: "/", Data: json.RawMessage(`{"token":"123"}`)}},
		{"0/admin,", Packet{Type: Connect, Namespace: "/admin"}},
		{"0/admin", Packet{Type: Connect, Namespace: "/admin"}},
		{"1/admin,", Packet{Type: Disconnect, Namespace: "/admin"}},
		{`2["foo"]`, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["foo"]`)}},
		{`2/admin,12["bar",1]`, Packet{Type: Event, Namespace: "/admin", ID: 12, HasID: true, Data: json.RawMessage(`["bar",1]`)}},
		{`3/admin,13["bar"]`, Packet{Type: Ack, Namespace: "/admin", ID: 13, HasID: true, Data: json.RawMessage(`["bar"]`)}},
		{`4{"message":"x"}`, Packet{Type: ConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"x"}`)}},
		{`2[42]`, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`[42]`)}},
	}
	for _, c := range cases {
		var d Decoder
		p, err := d.Add([]byte(c.in), false)
		if err != nil || p == nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !reflect.DeepEqual(*p, c.want) {
			t.Errorf("%q:\n got %#v\nwant %#v", c.in, *p, c.want)
		}
		if c.in != "0/admin" && string(Encode(p)) != c.in {
			t.Errorf("re-encode %q = %q", c.in, Encode(p))
		}
	}
}

func TestBinaryReassembly(t *testing.T) {
	var d Decoder
	p, err := d.Add([]byte(`52-3["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), false)
	if p != nil || err != nil {
		t.Fatalf("complete too early: %v %v", p, err)
	}
	if p, _ = d.Add([]byte{1}, true); p != nil {
		t.Fatal("complete after one attachment")
	}
	p, err = d.Add([]byte{2, 3}, true)
	if err != nil || p == nil || !p.HasID || p.ID != 3 || len(p.Attachments) != 2 || !bytes.Equal(p.Attachments[1], []byte{2, 3}) {
		t.Fatalf("%#v %v", p, err)
	}
	var v any
	json.Unmarshal(p.Data, &v)
	r, err := Reconstruct(v, p.Attachments)
	if err != nil || !reflect.DeepEqual(r, []any{"baz", []byte{1}, []byte{2, 3}}) {
		t.Fatalf("reconstruct %#v %v", r, err)
	}
	data, atts, err := EncodeData([]any{"baz", []byte{1}, map[string]any{"b": []byte{2, 3}, "a": 1}})
	if err != nil || len(atts) != 2 {
		t.Fatal(err)
	}
	text := Encode(&Packet{Type: Event, Data: data, Attachments: atts, ID: 3, HasID: true})
	if string(text) != `52-3["baz",{"_placeholder":true,"num":0},{"a":1,"b":{"_placeholder":true,"num":1}}]` {
		t.Fatalf("encode %s", text)
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, in := range []string{
		"", "abc", "7", "42{}"[1:], `2{}`, `2abc["x"]`, `2"x"`, `2[]`, `2[{}]`, `2["connect"]`, `2["disconnect"]`,
		`1"payload"`, `0"str"`, `3{}`, `3["no id"]`, `5["x"]`, `511-["x"]`, `5a-["x"]`, `2[1,`, `4[1]`,
	} {
		var d Decoder
		if p, err := d.Add([]byte(in), false); err == nil {
			t.Errorf("%q accepted: %#v", in, p)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: unclassified error %v", in, err)
		}
	}
	var d Decoder
	if _, err := d.Add([]byte{1}, true); err == nil {
		t.Error("an attachment without a packet was accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"0", `2/admin,12["bar",1]`, `52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, `3/x,1[]`, "4abc"} {
		f.Add([]byte(s), []byte{1, 2})
	}
	f.Fuzz(func(t *testing.T, text, att []byte) {
		var d Decoder
		p, err := d.Add(text, false)
		if err != nil {
			return
		}
		for i := 0; p == nil && i < MaxAttachments; i++ {
			if p, err = d.Add(att, true); err != nil {
				return
			}
		}
		if p == nil {
			t.Fatal("no packet after the announced attachments")
		}
		var v any
		if json.Unmarshal(p.Data, &v) == nil {
			Reconstruct(v, p.Attachments)
		}
		Encode(p)
	})
}
