package pickle

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

func mustBig(s string) *big.Int {
	b, _ := new(big.Int).SetString(s, 10)
	return b
}

// python runs CPython's pickle on the given program; the test fails if
// python3 is missing and SIOBRIDGE_REQUIRE_PEERS is set, else skips.
func python(t *testing.T, program string, stdin []byte) []byte {
	t.Helper()
	bin, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cmd := exec.Command(bin, "-c", program)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

func TestMarshalLoadsInCPython(t *testing.T) {
	v := Dict{
		{"method", "emit"},
		{"data", Tuple{"a", int64(1), []byte{0, 255}, map[string]any{"k": []any{1.5, nil, true, false}}}},
		{"big", mustBig("-123456789012345678901234567890")},
		{"ints", []any{int64(0), int64(255), int64(256), int64(65535), int64(65536), int64(-1), int64(-2147483648), int64(2147483648), int64(-9223372036854775808), uint64(18446744073709551615)}},
		{"uni", "é😀\x00"},
		{"long", strings.Repeat("x", 300)},
		{"longb", bytes.Repeat([]byte{7}, 300)},
		{"t0", Tuple{}}, {"t1", Tuple{int64(1)}}, {"t4", Tuple{int64(1), int64(2), int64(3), int64(4)}},
		{"empty", map[string]any{}}, {"el", []any{}},
	}
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got := string(python(t, `import pickle,sys; print(repr(pickle.loads(sys.stdin.buffer.read())))`, b))
	want := `{'method': 'emit', 'data': ('a', 1, b'\x00\xff', {'k': [1.5, None, True, False]}), 'big': -123456789012345678901234567890, 'ints': [0, 255, 256, 65535, 65536, -1, -2147483648, 2147483648, -9223372036854775808, 18446744073709551615], 'uni': 'é😀\x00', 'long': '` + strings.Repeat("x", 300) + `', 'longb': b'` + strings.Repeat(`\x07`, 300) + `', 't0': (), 't1': (1,), 't4': (1, 2, 3, 4), 'empty': {}, 'el': []}`
	if strings.TrimSpace(got) != want {
		t.Fatalf("CPython read:\n%s\nwant\n%s", got, want)
	}
	// and back
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	m := back.(map[string]any)
	if !reflect.DeepEqual(m["data"], Tuple{"a", int64(1), []byte{0, 255}, map[string]any{"k": []any{1.5, nil, true, false}}}) {
		t.Fatalf("round trip data %#v", m["data"])
	}
	if m["big"].(*big.Int).Cmp(mustBig("-123456789012345678901234567890")) != 0 {
		t.Fatalf("big %v", m["big"])
	}
}

// TestUnmarshalCPythonProtocols decodes what CPython writes with every
// protocol, including memo references, shared objects and bytearray.
func TestUnmarshalCPythonProtocols(t *testing.T) {
	prog := `import pickle,sys
shared = ['s']
v = {'method': 'emit', 'data': ('multi', 2, b'\x01\x02', bytearray(b'ab'), {'k': [1.5, None, True]}),
     'room': ['r1', 'r2'], 'big': 2**100, 'neg': -2**70, 'uni': 'é😀', 'sh': [shared, shared], 1: 'intkey',
     'f': float('inf')}
for p in range(0, 6):
    sys.stdout.write(pickle.dumps(v, protocol=p).hex() + '\n')
`
	lines := strings.Fields(string(python(t, prog, nil)))
	if len(lines) != 6 {
		t.Fatalf("got %d pickles", len(lines))
	}
	for proto, l := range lines {
		b, _ := hex.DecodeString(l)
		v, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("protocol %d: %v", proto, err)
		}
		m := v.(map[string]any)
		wantData := Tuple{"multi", int64(2), []byte{1, 2}, []byte("ab"), map[string]any{"k": []any{1.5, nil, true}}}
		if !reflect.DeepEqual(m["data"], wantData) {
			t.Errorf("protocol %d: data %#v", proto, m["data"])
		}
		if !reflect.DeepEqual(m["room"], []any{"r1", "r2"}) || m["uni"] != "é😀" || m["1"] != "intkey" {
			t.Errorf("protocol %d: %#v", proto, m)
		}
		if m["big"].(*big.Int).Cmp(new(big.Int).Lsh(big.NewInt(1), 100)) != 0 {
			t.Errorf("protocol %d: big %v", proto, m["big"])
		}
		if !reflect.DeepEqual(m["sh"], []any{[]any{"s"}, []any{"s"}}) {
			t.Errorf("protocol %d: shared %#v", proto, m["sh"])
		}
	}
}

func TestUnmarshalRefusesHostileInput(t *testing.T) {
	prog := `import pickle,sys,os,datetime,collections
class E:
    def __reduce__(self): return (os.system, ('true',))
for v in [E(), datetime.datetime(2020,1,1), collections.OrderedDict(a=1), {1,2}, frozenset([1]), complex(1,2)]:
    for p in (0, 2, 4):
        sys.stdout.write(pickle.dumps(v, protocol=p).hex() + '\n')
`
	for i, l := range strings.Fields(string(python(t, prog, nil))) {
		b, _ := hex.DecodeString(l)
		if v, err := Unmarshal(b); err == nil {
			t.Errorf("hostile pickle %d accepted: %#v", i, v)
		}
	}
	cases := map[string][]byte{
		"huge BINBYTES":      {0x80, 4, 'B', 0xff, 0xff, 0xff, 0x7f, '.'},
		"huge BINUNICODE8":   {0x80, 4, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '.'},
		"huge LONG4":         {0x80, 4, 0x8b, 0xff, 0xff, 0xff, 0x7f},
		"negative LONG4":     {0x80, 4, 0x8b, 0xff, 0xff, 0xff, 0xff},
		"no stop":            {0x80, 4, 'N'},
		"stack underflow":    {0x80, 4, 'a', '.'},
		"memo miss":          {0x80, 4, 'h', 9, '.'},
		"trailing":           {0x80, 4, 'N', '.', 'N'},
		"two values":         {0x80, 4, 'N', 'N', '.'},
		"bad proto":          {0x80, 9, 'N', '.'},
		"global os.system":   []byte("cos\nsystem\n(S'true'\ntR."),
		"self reference":     {0x80, 4, ']', 0x94, 'h', 0, 'a', '.'},
		"setitem on list":    {0x80, 4, ']', 'N', 'N', 's', '.'},
		"invalid utf8 str":   {0x80, 4, 0x8c, 1, 0xff, '.'},
		"unknown opcode":     {0x80, 4, 0xfe, '.'},
		"mark at stop":       {0x80, 4, '(', '.'},
		"bytearray no args":  {0x80, 4, 0x8c, 8, 'b', 'u', 'i', 'l', 't', 'i', 'n', 's', 0x8c, 9, 'b', 'y', 't', 'e', 'a', 'r', 'r', 'a', 'y', 0x93, '.'},
		"persistent id":      {0x80, 4, 'N', 'Q', '.'},
		"dict with list key": {0x80, 4, '}', ']', 'N', 's', '.'},
	}
	for name, b := range cases {
		if v, err := Unmarshal(b); err == nil {
			t.Errorf("%s: accepted as %#v", name, v)
		}
	}
}

func TestExpansionBomb(t *testing.T) {
	// Each level is a tuple holding the previous level twice: the
	// expanded value doubles at every level.
	c := []byte{0x80, 4, 'N', 0x94, '0'} // memo 0 = None, popped
	for i := 0; i < 40; i++ {
		c = append(c, 'h', byte(i), 'h', byte(i), 0x86, 0x94, '0') // tuple(prev, prev) -> memo i+1, popped
	}
	c = append(c, 'h', 40, '.')
	if _, err := Unmarshal(c); err == nil {
		t.Fatal("a 2^40-node expansion was accepted")
	}
}

func FuzzUnmarshal(f *testing.F) {
	seeds := [][]byte{
		{0x80, 4, 'N', '.'},
		[]byte("(dp0\nS'skip_sid'\np1\nNsS'room'\np2\nNs."),
	}
	if b, err := Marshal(Dict{{"method", "emit"}, {"data", Tuple{"a", []byte{1}, mustBig("99999999999999999999999")}}}); err == nil {
		seeds = append(seeds, b)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		var err error
		n := testenv.AllocatedBytes(func() { v, err = Unmarshal(b) })
		// the constant covers the expansion allowed to any input
		if limit := 256*uint64(len(b)) + 8<<20; n > limit {
			t.Fatalf("%d bytes of input allocated %d bytes", len(b), n)
		}
		if err != nil {
			return
		}
		// whatever decodes must re-encode and decode to the same value
		out, err := Marshal(v)
		if err != nil {
			return // e.g. map keys are fine; unsupported shapes are not expected
		}
		v2, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalizeFloat(v), normalizeFloat(v2)) {
			t.Fatalf("round trip changed %#v into %#v", v, v2)
		}
	})
}

// normalizeFloat makes NaN comparable.
func normalizeFloat(v any) any {
	switch x := v.(type) {
	case float64:
		if x != x {
			return "NaN"
		}
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalizeFloat(x[i])
		}
		return out
	case Tuple:
		out := make(Tuple, len(x))
		for i := range x {
			out[i] = normalizeFloat(x[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalizeFloat(e)
		}
		return out
	case *big.Int:
		return x.String()
	}
	return v
}
