package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// valuePath is what the fast path must match: the arguments decoded by
// encoding/json into op's data tree, encoded by Encode.
func valuePath(t testing.TB, d *Dialect, e op.Emit, args string) ([]byte, error) {
	t.Helper()
	if !json.Valid([]byte(args)) {
		return nil, errors.New("invalid JSON")
	}
	v, err := op.Normalize(json.RawMessage(args))
	if err != nil {
		return nil, err
	}
	if v != nil {
		l, ok := v.([]any)
		if !ok {
			return nil, errors.New("not an array")
		}
		e.Args = l
	}
	msgs, err := d.Encode(&e)
	if err != nil {
		return nil, err
	}
	return msgs[0].Data, nil
}

// sameMsgpack compares two payloads as decoded values: the fast path keeps
// the members of an object in the text's order, the value path sorts them.
func sameMsgpack(t testing.TB, fast, slow []byte) {
	t.Helper()
	a, errA := decodeMsgpack(fast)
	b, errB := decodeMsgpack(slow)
	if errA != nil || errB != nil {
		t.Fatalf("decode: fast %v, value path %v", errA, errB)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("fast path %#v\nvalue path %#v", a, b)
	}
}

func TestAppendEmitJSON(t *testing.T) {
	d := New(Options{Key: "k"})
	f := false
	e := op.Emit{Target: op.Target{Namespace: "/chat", Rooms: []string{"r1"}, Except: []string{"x"}}, Event: "tick", Volatile: true, Compress: &f}
	cases := []struct {
		args  string
		bytes bool // byte for byte as the value path (members already in sorted order)
	}{
		{`null`, true},
		{`[]`, true},
		{` [ 1 , -2 , 0 , -0 , 127, 128, 255, 256, 65535, 65536, 4294967296, -33, -129, -32769, -2147483649 ] `, true},
		{`[999999999999999999, -999999999999999999]`, true},
		{`[1.5, -0.25, 1e3, 1.0, -0.0, 2.5e-300, 1E+2, 9.2e18, 1e300]`, true},
		{`["", "a", "caf\u00e9", "é", "\ud83d\ude00", "\ud800", "tab\tnewline\n", "` + strings.Repeat("x", 40) + `", "` + strings.Repeat("y", 300) + `", "` + strings.Repeat("z", 70000) + `"]`, true},
		{`[true, false, null, [], {}, [[[]]], {"a": {"b": [1, {"c": null}]}}]`, true},
		{`[{"a": 1, "b": 2}]`, true},
		{`[{"b": 1, "a": 2, "c": [3]}]`, false},
		{`["invalid utf-8: ` + "\xff\xfe" + `"]`, true},
		{"[" + strings.Repeat("[", 900) + strings.Repeat("]", 900) + "]", true},
		{"[" + strings.Repeat("1,", 20) + "1]", true},
	}
	for _, c := range cases {
		slow, err := valuePath(t, d, e, c.args)
		if err != nil {
			t.Fatalf("value path of %.60q: %v", c.args, err)
		}
		var m queue.Message
		fast, err := d.AppendEmit([]byte("prefix"), &m, &e, []byte(c.args))
		if err != nil {
			t.Fatalf("AppendEmit(%.60q): %v", c.args, err)
		}
		if !bytes.HasPrefix(fast, []byte("prefix")) || m.Channel != "k#/chat#r1#" || m.Data != nil {
			t.Fatalf("AppendEmit(%.60q): buffer %.20q, message %+v", c.args, fast, m)
		}
		fast = fast[len("prefix"):]
		if c.bytes && !bytes.Equal(fast, slow) {
			i := 0
			for i < len(fast) && i < len(slow) && fast[i] == slow[i] {
				i++
			}
			t.Fatalf("AppendEmit(%.60q): %d bytes, value path %d; first difference at byte %d: % .16x vs % .16x", c.args, len(fast), len(slow), i, fast[i:], slow[i:])
		}
		sameMsgpack(t, fast, slow)
	}
}

// The cases the fast path leaves to the value path, and invalid JSON.
func TestAppendEmitJSONRefusals(t *testing.T) {
	d := New(Options{})
	e := op.Emit{Event: "ev"}
	for _, args := range []string{
		`[{"1": 0}]`,            // array-index name: Object.keys puts it first
		`[{"a": 1, "a": 2}]`,    // repeated name
		`[{"\u0061": 1}]`,       // escaped name
		`[1234567890123456789]`, // 19 digits: uint64 or big.Int on the value path
		`[1e400]`,               // out of float64 range
		"[" + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + "]",
		`[{` + strings.Repeat(`"k":0,`, 0) + `"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,"i":0,"j":0,"k":0,"l":0,"m":0,"n":0,"o":0,"p":0,"q":0}]`,
	} {
		out, err := d.AppendEmit([]byte("keep"), new(queue.Message), &e, []byte(args))
		if !errors.Is(err, dialect.ErrNoFastPath) {
			t.Errorf("AppendEmit(%.40q): %v, want ErrNoFastPath", args, err)
		}
		if string(out) != "keep" {
			t.Errorf("AppendEmit(%.40q) changed the buffer: %q", args, out)
		}
	}
	for _, args := range []string{``, `[`, `[1,]`, `[1 2]`, `{}`, `"x"`, `[01]`, `[-]`, `[1.]`, `[.5]`, `[1e]`, `["a]`, "[\"\x01\"]", `["\x"]`, `[tru]`, `[1] x`, `null x`, `[{"a"}]`, `[{1:2}]`} {
		out, err := d.AppendEmit([]byte("keep"), new(queue.Message), &e, []byte(args))
		if err == nil || errors.Is(err, dialect.ErrNoFastPath) {
			t.Errorf("AppendEmit(%q): %v, want an error", args, err)
		}
		if string(out) != "keep" {
			t.Errorf("AppendEmit(%q) changed the buffer: %q", args, out)
		}
	}
}

// FuzzAppendEmitJSON: for any text, the fast path agrees with the value
// path, or leaves it to it; it never accepts what encoding/json refuses.
func FuzzAppendEmitJSON(f *testing.F) {
	for _, s := range []string{`[1,"a",{"b":[true,null,1.5]}]`, `null`, `[]`, `[{"a":1,"a":2}]`, `["\ud83d\ude00\u0000"]`, `[-0.0e-0]`} {
		f.Add(s)
	}
	d := New(Options{})
	e := op.Emit{Event: "ev", Target: op.Target{Rooms: []string{"r"}}}
	f.Fuzz(func(t *testing.T, args string) {
		fast, err := d.AppendEmit(nil, new(queue.Message), &e, []byte(args))
		slow, slowErr := valuePath(t, d, e, args)
		switch {
		case errors.Is(err, dialect.ErrNoFastPath):
		case err != nil:
			if slowErr == nil {
				t.Fatalf("fast path refused %q (%v), the value path took it", args, err)
			}
		case slowErr != nil:
			t.Fatalf("fast path took %q, the value path refused it: %v", args, slowErr)
		default:
			sameMsgpack(t, fast, slow)
		}
	})
}

// A hostile argument list costs the fast path a constant times its size.
func BenchmarkAppendEmitJSON(b *testing.B) {
	d := New(Options{Key: "bench"})
	e := op.Emit{Event: "tick", Target: op.Target{Rooms: []string{"bench"}}}
	args := []byte(`[{"n":12345}]`)
	var buf []byte
	var m queue.Message
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = d.AppendEmit(buf[:0], &m, &e, args)
	}
}
