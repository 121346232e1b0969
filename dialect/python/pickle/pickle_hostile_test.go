package pickle

import (
	"bytes"
	"encoding/binary"
	"math/big"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// checkAllocation fails t when decoding in allocates more than 64 bytes
// per input byte plus extra.
func checkAllocation(t *testing.T, name string, in []byte, extra uint64) error {
	t.Helper()
	var err error
	n := testenv.AllocatedBytes(func() { _, err = Unmarshal(in) })
	if limit := 64*uint64(len(in)) + extra; n > limit {
		t.Errorf("%s: %d bytes of input allocated %d bytes (limit %d)", name, len(in), n, limit)
	}
	return err
}

// binUnicode returns a BINUNICODE opcode for s.
func binUnicode(s string) []byte {
	return append(binary.LittleEndian.AppendUint32([]byte{opBinUnicode}, uint32(len(s))), s...)
}

// long4 returns a LONG4 opcode for x.
func long4(x *big.Int) []byte {
	enc := twosComplementLE(x)
	return append(binary.LittleEndian.AppendUint32([]byte{opLong4}, uint32(len(enc))), enc...)
}

// TestTextOpcodesLinear: every text opcode (INT, GET, FLOAT...) used to
// copy the whole rest of the input to find its end of line — quadratic
// (100 KB took 1.4 s and 1.3 GB).
func TestTextOpcodesLinear(t *testing.T) {
	for name, line := range map[string]string{"INT": "I1\n", "FLOAT": "F1.5\n", "GET": "g0\n"} {
		in := []byte("I7\np0\n(")
		for len(in) < 64<<10 {
			in = append(in, line...)
		}
		in = append(in, "l0."...) // a list of them, popped, then the first int
		if err := checkAllocation(t, name, in, 1<<20); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestIntDigitLimit: integers beyond Python's int_max_str_digits (4300)
// are refused, whatever opcode carries them; 4300 digits are accepted.
func TestIntDigitLimit(t *testing.T) {
	max := new(big.Int).Sub(intLimit, big.NewInt(1)) // 4300 nines
	over := intLimit                                 // 1 and 4300 zeros
	for name, c := range map[string]struct {
		in []byte
		ok bool
	}{
		"LONG4 4300 digits":  {append(long4(max), '.'), true},
		"LONG4 -4300 digits": {append(long4(new(big.Int).Neg(max)), '.'), true},
		"LONG4 4301 digits":  {append(long4(over), '.'), false},
		"LONG4 -4301 digits": {append(long4(new(big.Int).Neg(over)), '.'), false},
		"LONG 4300 digits":   {[]byte("L" + max.String() + "L\n."), true},
		"LONG 4301 digits":   {[]byte("L" + over.String() + "L\n."), false},
		"INT 4301 digits":    {[]byte("I-" + over.String() + "\n."), false},
	} {
		v, err := Unmarshal(c.in)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s refused: %v", name, err)
		case c.ok && new(big.Int).Abs(v.(*big.Int)).Cmp(max) != 0:
			t.Errorf("%s decoded wrong", name)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "int_max_str_digits")):
			t.Errorf("%s: err %v, want a refusal naming int_max_str_digits", name, err)
		}
	}
}

// TestBigIntKeyReferences: a large integer dict key used to be converted
// to text on every memo reference (0.3 s per 4-byte reference for a
// 512 KB integer). Such an integer is now refused, and a key within the
// limit is converted once and charged to the expansion budget.
func TestBigIntKeyReferences(t *testing.T) {
	key := new(big.Int).Lsh(big.NewInt(1), 20<<13) // a 20 KB integer
	dict := func(key *big.Int, refs int) []byte {
		in := append([]byte{opProto, 4, opEmptyDict, opMark}, long4(key)...)
		in = append(in, opBinPut, 0, 'N')
		for range refs {
			in = append(in, opBinGet, 0, 'N')
		}
		return append(in, opSetItems, '.')
	}
	in := dict(key, 200)
	if err := checkAllocation(t, "20 KB key", in, 1<<20); err == nil || !strings.Contains(err.Error(), "int_max_str_digits") {
		t.Errorf("a 20 KB integer key: err %v, want a refusal", err)
	}
	max := new(big.Int).Sub(intLimit, big.NewInt(1))
	in = dict(max, 2000)
	if err := checkAllocation(t, "4300-digit key", in, 1<<20); err == nil || !strings.Contains(err.Error(), "expanding shared references") {
		t.Errorf("a 4300-digit key set 2000 times: err %v, want the expansion limit", err)
	}
	v, err := Unmarshal(dict(max, 3))
	if m, ok := v.(map[string]any); err != nil || !ok || len(m) != 1 {
		t.Errorf("a 4300-digit key set 4 times: %#v, %v", v, err)
	} else if _, ok := m[max.String()]; !ok {
		t.Errorf("a 4300-digit key set 4 times: the key is not its decimal text")
	}
}

// TestExpansionCountsBytes: a string referenced many times expands to its
// length each time (and so does the JSON written to clients): the budget
// counts bytes, not only values.
func TestExpansionCountsBytes(t *testing.T) {
	s := strings.Repeat("x", 64<<10)
	in := append([]byte{opProto, 4, opEmptyList, opMark}, binUnicode(s)...)
	in = append(in, opBinPut, 0)
	in = append(in, bytes.Repeat([]byte{opBinGet, 0}, 1000)...)
	in = append(in, opAppends, '.')
	if _, err := Unmarshal(in); err == nil || !strings.Contains(err.Error(), "expanding shared references") {
		t.Fatalf("a 64 KB string referenced 1000 times (64 MB expanded): err %v", err)
	}
	// a few references are fine
	small := append(in[:len(in)-2-2*1000+2*16:len(in)-2-2*1000+2*16], opAppends, '.')
	v, err := Unmarshal(small)
	if err != nil || len(v.([]any)) != 17 {
		t.Fatalf("17 references of a 64 KB string: %v", err)
	}
}

// TestExpansionBombAllocation: the doubling bomb of TestExpansionBomb is
// refused after a small multiple of its size, not after a million values.
func TestExpansionBombAllocation(t *testing.T) {
	c := []byte{0x80, 4, 'N', 0x94, '0'}
	for i := 0; i < 40; i++ {
		c = append(c, 'h', byte(i), 'h', byte(i), 0x86, 0x94, '0')
	}
	c = append(c, 'h', 40, '.')
	if err := checkAllocation(t, "bomb", c, 4<<20); err == nil || !strings.Contains(err.Error(), "expanding shared references") {
		t.Fatalf("a 2^40-value expansion: err %v, want the expansion limit", err)
	}
}
