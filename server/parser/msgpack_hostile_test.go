package parser

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// msgpackEvent wraps data (the msgpack of an EVENT's payload) in a packet
// map {"type":2,"nsp":"/","data":data}.
func msgpackEvent(data []byte) []byte {
	return append(unhexBytes("83a47479706502a36e7370a12fa464617461"), data...)
}

// TestMsgpackAllocationFollowsInput: announced lengths are claims checked
// against the bytes left, not allocations; a hostile packet costs a small
// multiple of its size and is refused.
func TestMsgpackAllocationFollowsInput(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"nested array32", msgpackEvent(testenv.NestedMsgpackHeaders(32<<10, 0xdd))},
		{"nested map32", msgpackEvent(testenv.NestedMsgpackHeaders(32<<10, 0xdf))},
		{"str32 of 4 GB", msgpackEvent(unhexBytes("92a165dbfffffff0"))},
		{"bin32 of 4 GB", msgpackEvent(unhexBytes("92a165c6fffffff0"))},
		{"array32 of 4G elements", msgpackEvent(unhexBytes("dd0fffffff"))},
		{"map32 of 4G entries", msgpackEvent(unhexBytes("df0fffffff"))},
		{"packet map32 of 4G entries", unhexBytes("df0fffffff")},
		{"ext32 of 4 GB", msgpackEvent(unhexBytes("92a165c9fffffff000"))},
	} {
		var err error
		n := testenv.AllocatedBytes(func() { _, err = DecodeMsgpack(c.in) })
		if err == nil {
			t.Errorf("%s: decoded", c.name)
		}
		if limit := uint64(64*len(c.in) + 64<<10); n > limit {
			t.Errorf("%s: %d bytes of input allocated %d bytes (limit %d)", c.name, len(c.in), n, limit)
		}
	}
}

// TestMsgpackDepthLimit: data nested MaxMsgpackDepth levels decodes, one
// more is refused (the decoder recurses once per level).
func TestMsgpackDepthLimit(t *testing.T) {
	// the data array is level 1, the event name sits in it
	nested := func(levels int) []byte {
		return msgpackEvent(append(append(unhexBytes("92a165"), bytes.Repeat([]byte{0x91}, levels-1)...), 0xc0))
	}
	if _, err := DecodeMsgpack(nested(MaxMsgpackDepth + 1)); err == nil || !strings.Contains(err.Error(), "nested deeper than 1000 levels") {
		t.Fatalf("%d levels: %v", MaxMsgpackDepth+1, err)
	}
	p, err := DecodeMsgpack(nested(MaxMsgpackDepth))
	if err != nil {
		t.Fatalf("%d levels refused: %v", MaxMsgpackDepth, err)
	}
	if !json.Valid(p.Data) {
		t.Fatalf("invalid JSON %s", p.Data)
	}
	// and it encodes back without recursion
	if _, err := EncodeMsgpack(p); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeMsgpack: any input decodes or is refused without panicking,
// within a bounded multiple of its size in allocated bytes; what decodes
// is valid JSON that encodes back to msgpack decoding to the same values.
func FuzzDecodeMsgpack(f *testing.F) {
	for _, v := range msgpackVectors {
		f.Add(unhexBytes(v.hex))
	}
	f.Add(msgpackEvent(unhexBytes("93a165c40101d40000")))
	f.Add(msgpackEvent(unhexBytes("92a16581017f")))
	f.Add(msgpackEvent(testenv.NestedMsgpackHeaders(512, 0xdd)))
	f.Add(msgpackEvent(testenv.NestedMsgpackHeaders(512, 0xdf)))
	f.Fuzz(func(t *testing.T, in []byte) {
		var p *Packet
		var err error
		n := testenv.AllocatedBytes(func() { p, err = DecodeMsgpack(in) })
		// a zero-length bin costs ~120 bytes for 2 bytes of input; the
		// constant covers the decoder's pooled state and the depth
		// limit's worth of headers
		if limit := uint64(256*len(in) + 1<<20); n > limit {
			t.Fatalf("%d bytes of input allocated %d bytes", len(in), n)
		}
		if err != nil {
			return
		}
		if len(p.Data) > 0 && !json.Valid(p.Data) {
			t.Fatalf("%x decoded to invalid JSON %s", in, p.Data)
		}
		if strings.Count(string(p.Data), `"_placeholder"`) != len(p.Attachments) {
			return // the client sent a map that looks like a placeholder: ambiguous, as in JSON
		}
		b, err := EncodeMsgpack(p)
		if err != nil {
			t.Fatalf("%+v does not encode: %v", p, err)
		}
		again, err := DecodeMsgpack(b)
		if err != nil {
			t.Fatalf("%x re-encoded as %x does not decode: %v", in, b, err)
		}
		var v1, v2 any
		json.Unmarshal(p.Data, &v1)
		json.Unmarshal(again.Data, &v2)
		if !reflect.DeepEqual(v1, v2) || !reflect.DeepEqual(p.Attachments, again.Attachments) ||
			p.Type != again.Type || p.Namespace != again.Namespace || p.HasID != again.HasID || p.ID != again.ID {
			t.Fatalf("%x: %+v (%s)\nre-encoded %x: %+v (%s)", in, p, p.Data, b, again, again.Data)
		}
	})
}

// BenchmarkHostileMsgpack: cost per input byte of decoding a msgpack
// EVENT, benign and hostile shapes.
func BenchmarkHostileMsgpack(b *testing.B) {
	fill := func(n int, item string) []byte {
		it := unhexBytes(item)
		k := max(1, (n-32)/len(it))
		body := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(k+1))
		body = append(body, 0xa1, 'e')
		return msgpackEvent(append(body, bytes.Repeat(it, k)...))
	}
	testenv.BenchHostile(b, []testenv.HostileCase{
		// {"user":"alice","text":"hello, this is a chat message","n":12345,"ok":true}
		{Name: "benign", Make: func(n int) []byte {
			return fill(n, "84a475736572a5616c696365a474657874bd68656c6c6f2c20746869732069732061206368617420"+
				"6d657373616765a16ecd3039a26f6bc3")
		}},
		{Name: "many-args", Make: func(n int) []byte { return fill(n, "00") }},
		{Name: "empty-maps", Make: func(n int) []byte { return fill(n, "80") }},
		{Name: "empty-bins", Make: func(n int) []byte { return fill(n, "c400") }, AnyErr: true}, // refused past MaxMsgpackBinaries
		{Name: "escapes", Make: func(n int) []byte { return fill(n, "a40a22f09f") }},
		{Name: "deep-arrays", Make: func(n int) []byte {
			return fill(n, strings.Repeat("91", MaxMsgpackDepth-3)+"c0")
		}},
		{Name: "nested-headers", Make: func(n int) []byte { return msgpackEvent(testenv.NestedMsgpackHeaders(n, 0xdd)) }, WantErr: true},
	}, func(in []byte) error { _, err := DecodeMsgpack(in); return err })
}

// TestMsgpackBinariesBound: MaxMsgpackBinaries binary values decode, one
// more is refused; 1 MB of empty bins allocated 160 bytes per input byte
// before the bound.
func TestMsgpackBinariesBound(t *testing.T) {
	bins := func(n int) []byte {
		b := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n+1))
		b = append(b, 0xa1, 'e')
		return msgpackEvent(append(b, bytes.Repeat([]byte{0xc4, 0x00}, n)...))
	}
	if p, err := DecodeMsgpack(bins(MaxMsgpackBinaries)); err != nil || len(p.Attachments) != MaxMsgpackBinaries {
		t.Fatalf("%d binary values: %v", MaxMsgpackBinaries, err)
	}
	if _, err := DecodeMsgpack(bins(MaxMsgpackBinaries + 1)); err == nil || !strings.Contains(err.Error(), "more than 1000 binary values") {
		t.Fatalf("%d binary values: %v", MaxMsgpackBinaries+1, err)
	}
	in := bins(1 << 19)
	var err error
	if n := testenv.AllocatedBytes(func() { _, err = DecodeMsgpack(in) }); err == nil || n > uint64(len(in)) {
		t.Fatalf("1 MB of empty bins: %v, %d bytes allocated", err, n)
	}
}
