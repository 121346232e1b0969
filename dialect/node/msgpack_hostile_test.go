package node

import (
	"reflect"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// TestMsgpackAllocationFollowsInput: announced lengths are claims, not
// allocations. 32 KB of nested array32/map32 headers made every level
// preallocate room for the whole rest of the input (465 MB for arrays,
// 1 GB for maps); now the decoder allocates a small multiple of the
// input and fails.
func TestMsgpackAllocationFollowsInput(t *testing.T) {
	for _, head := range []byte{0xdd, 0xdf} {
		in := testenv.NestedMsgpackHeaders(32<<10, head)
		var err error
		n := testenv.AllocatedBytes(func() { _, err = decodeMsgpack(in) })
		if err == nil {
			t.Fatalf("0x%02x: truncated nested headers decoded", head)
		}
		if limit := uint64(64*len(in) + 1<<20); n > limit {
			t.Errorf("0x%02x: %d bytes of input allocated %d bytes (limit %d)", head, len(in), n, limit)
		}
	}
}

func TestMsgpackDepthLimit(t *testing.T) {
	in := append([]byte(strings.Repeat("\x91", maxDepth+1)), 0xc0)
	if _, err := decodeMsgpack(in); err == nil || !strings.Contains(err.Error(), "nested deeper than 1000 levels") {
		t.Fatalf("%d nested arrays: err %v", maxDepth+1, err)
	}
	in = append([]byte(strings.Repeat("\x91", maxDepth)), 0xc0)
	if _, err := decodeMsgpack(in); err != nil {
		t.Fatalf("%d nested arrays refused: %v", maxDepth, err)
	}
}

// TestMsgpackLargeContainers: containers longer than the preallocation
// still decode whole.
func TestMsgpackLargeContainers(t *testing.T) {
	l := make([]any, 70000)
	m := map[string]any{}
	for i := range l {
		l[i] = int64(i % 100)
		if i < 1000 {
			m[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26%26))] = int64(i)
		}
	}
	for _, v := range []any{l, m} {
		b, err := appendMsgpack(nil, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMsgpack(b)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("round trip of a %T of %d: %v", v, reflect.ValueOf(v).Len(), err)
		}
	}
}

// FuzzDecodeMsgpack: any input decodes or fails without panicking, within
// a bounded multiple of its size in allocated bytes, and what decodes
// re-encodes to a value that decodes the same.
func FuzzDecodeMsgpack(f *testing.F) {
	for _, s := range []string{"\x93\x01\xa1a\xc0", "\x82\xa1a\x01\xa1b\x92\xc3\xc2", "\xdd\x00\x00\x00\x02\x91", "\xd4\x00\x00"} {
		f.Add([]byte(s))
	}
	f.Add(testenv.NestedMsgpackHeaders(512, 0xdd))
	f.Add(testenv.NestedMsgpackHeaders(512, 0xdf))
	f.Fuzz(func(t *testing.T, in []byte) {
		var v any
		var err error
		n := testenv.AllocatedBytes(func() { v, err = decodeMsgpack(in) })
		// a one-entry map costs ~300 bytes for 3 bytes of input; the
		// constant covers the depth limit's worth of headers
		if limit := uint64(256*len(in) + 1<<20); n > limit {
			t.Fatalf("%d bytes of input allocated %d bytes", len(in), n)
		}
		if err != nil {
			return
		}
		b, err := appendMsgpack(nil, v, 0)
		if err != nil {
			return // e.g. a uint64 map key became a string: fine
		}
		if _, err := decodeMsgpack(b); err != nil {
			t.Fatalf("re-encoded %#v does not decode: %v", v, err)
		}
	})
}
