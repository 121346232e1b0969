// Package pickle reads and writes the subset of Python's pickle format that
// python-socketio < 5.14 puts on its message queue.
//
// The decoder is safe for untrusted input: it builds plain data only (dict,
// list, tuple, str, bytes, int of any size, float, bool, None, and
// builtins.bytearray) and refuses every other global with an error, so a
// hostile message can do nothing but be rejected (CVE-2025-61765 is the
// arbitrary-code-execution hole that pickle.loads opens in python-socketio).
// Its cost follows the input's size: lengths are checked against the
// remaining input before anything is allocated; integers are refused
// beyond 4300 decimal digits, Python's own int/str conversion limit; and
// the expanded size of shared (memoized) objects is bounded by 64 KiB + 64
// bytes per byte of input (each value counting 16 bytes, plus the bytes of
// its strings and dict keys).
//
// The encoder writes protocol 4 streams without framing or memo, which
// every Python 3.4+ unpickler accepts.
package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tuple is a Python tuple. Unmarshal returns tuples as Tuple so callers can
// tell them from lists; Marshal writes a Tuple as a tuple.
type Tuple []any

// Dict is a Python dict with a fixed key order, for Marshal. (A Go map is
// written with its keys sorted.)
type Dict []KV

// KV is one entry of a Dict.
type KV struct {
	Key   string
	Value any
}

// Opcodes (pickletools names).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opNewObjEx       = 0x92
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
	opByteArray8     = 0x96
)

// ---------------------------------------------------------------- encoder

// Marshal writes v as a protocol 4 pickle. v may hold nil, bool, ints of
// every size, uint64, *big.Int, float32/64, string, []byte, []any, Tuple,
// Dict, map[string]any and []string.
func Marshal(v any) ([]byte, error) {
	b := []byte{opProto, 4}
	b, err := appendValue(b, v, 0)
	if err != nil {
		return nil, err
	}
	return append(b, opStop), nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > 1000 {
		return nil, errors.New("pickle: value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return append(b, opNone), nil
	case bool:
		if x {
			return append(b, opNewTrue), nil
		}
		return append(b, opNewFalse), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case int32:
		return appendInt(b, int64(x)), nil
	case uint64:
		if x <= math.MaxInt64 {
			return appendInt(b, int64(x)), nil
		}
		return appendBig(b, new(big.Int).SetUint64(x)), nil
	case *big.Int:
		if x.IsInt64() {
			return appendInt(b, x.Int64()), nil
		}
		return appendBig(b, x), nil
	case float64:
		b = append(b, opBinFloat)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), nil
	case float32:
		b = append(b, opBinFloat)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(float64(x))), nil
	case string:
		if len(x) < 256 {
			b = append(b, opShortBinUni, byte(len(x)))
		} else {
			b = append(b, opBinUnicode)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
		}
		return append(b, x...), nil
	case []byte:
		if len(x) < 256 {
			b = append(b, opShortBinBytes, byte(len(x)))
		} else {
			b = append(b, opBinBytes)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
		}
		return append(b, x...), nil
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return appendValue(b, l, depth)
	case []any:
		b = append(b, opEmptyList)
		if len(x) == 0 {
			return b, nil
		}
		b = append(b, opMark)
		var err error
		for _, e := range x {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, opAppends), nil
	case Tuple:
		var err error
		switch len(x) {
		case 0:
			return append(b, opEmptyTuple), nil
		case 1, 2, 3:
			for _, e := range x {
				if b, err = appendValue(b, e, depth+1); err != nil {
					return nil, err
				}
			}
			return append(b, opTuple1+byte(len(x)-1)), nil
		}
		b = append(b, opMark)
		for _, e := range x {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, opTuple), nil
	case Dict:
		b = append(b, opEmptyDict)
		if len(x) == 0 {
			return b, nil
		}
		b = append(b, opMark)
		var err error
		for _, kv := range x {
			if b, err = appendValue(b, kv.Key, depth+1); err != nil {
				return nil, err
			}
			if b, err = appendValue(b, kv.Value, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, opSetItems), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := make(Dict, len(keys))
		for i, k := range keys {
			d[i] = KV{k, x[k]}
		}
		return appendValue(b, d, depth)
	}
	return nil, fmt.Errorf("pickle: cannot encode a value of type %T", v)
}

func appendInt(b []byte, i int64) []byte {
	switch {
	case i >= 0 && i < 256:
		return append(b, opBinInt1, byte(i))
	case i >= 0 && i < 65536:
		return binary.LittleEndian.AppendUint16(append(b, opBinInt2), uint16(i))
	case i >= math.MinInt32 && i <= math.MaxInt32:
		return binary.LittleEndian.AppendUint32(append(b, opBinInt), uint32(int32(i)))
	}
	return appendBig(b, big.NewInt(i))
}

// appendBig writes LONG1/LONG4: little-endian two's complement, shortest.
func appendBig(b []byte, x *big.Int) []byte {
	enc := twosComplementLE(x)
	if len(enc) < 256 {
		b = append(b, opLong1, byte(len(enc)))
	} else {
		b = append(b, opLong4)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(enc)))
	}
	return append(b, enc...)
}

func twosComplementLE(x *big.Int) []byte {
	if x.Sign() == 0 {
		return nil
	}
	n := x.BitLen()/8 + 1
	var be []byte
	if x.Sign() > 0 {
		be = x.FillBytes(make([]byte, n))
	} else {
		// 2^(8n) + x
		m := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
		m.Add(m, x)
		be = m.FillBytes(make([]byte, n))
	}
	// shorten: drop redundant sign bytes
	for len(be) > 1 && ((be[0] == 0 && be[1]&0x80 == 0) || (be[0] == 0xff && be[1]&0x80 != 0)) {
		be = be[1:]
	}
	le := make([]byte, len(be))
	for i := range be {
		le[i] = be[len(be)-1-i]
	}
	return le
}

func fromTwosComplementLE(le []byte) *big.Int {
	if len(le) == 0 {
		return new(big.Int)
	}
	be := make([]byte, len(le))
	for i := range le {
		be[i] = le[len(le)-1-i]
	}
	x := new(big.Int).SetBytes(be)
	if be[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(be))))
	}
	return x
}

// ---------------------------------------------------------------- decoder

// Limits of the decoder.
const (
	maxMemo    = 1 << 16 // memo entries
	maxStack   = 1 << 16 // stack entries (including marks)
	maxNesting = 512
	// maxIntDigits is Python's default int_max_str_digits (3.11+): larger
	// integers cannot be converted to or from text there, so no Python peer
	// can JSON-encode them either; refusing them keeps every decimal
	// conversion here (text INT/LONG, dict keys, the JSON written to
	// clients) bounded.
	maxIntDigits = 4300
	// The expanded size of the result (each value counts valueSize bytes,
	// a str, bytes or dict key also its length) may be at most
	// expansionBase + expansionPerByte × the input's size: shared
	// references cannot make a small pickle a huge value (nor a huge JSON
	// text for the clients).
	expansionBase    = 64 << 10
	expansionPerByte = 64
	valueSize        = 16
)

// intLimit is 10^maxIntDigits, the smallest integer with too many digits.
var intLimit = new(big.Int).Exp(big.NewInt(10), big.NewInt(maxIntDigits), nil)

type (
	pList struct{ items []any }
	pDict struct {
		keys []any
		vals []any
	}
	mark         struct{}
	bytearray    struct{} // the builtins.bytearray callable
	codecsEncode struct{} // _codecs.encode: protocols < 3 write bytes as encode(str, 'latin1')
)

// Unmarshal decodes one pickle. Results are nil, bool, int64, *big.Int
// (outside int64), float64, string, []byte, []any (lists), Tuple (tuples)
// and map[string]any (dicts; int keys become decimal strings, other
// non-string keys are refused).
func Unmarshal(data []byte) (any, error) {
	d := decoder{in: data, memo: map[uint32]any{}}
	v, err := d.run()
	if err != nil {
		return nil, err
	}
	c := converter{budget: expansionBase + expansionPerByte*len(data)}
	return c.plain(v, 0)
}

type decoder struct {
	in    []byte
	pos   int
	stack []any
	memo  map[uint32]any
}

func (d *decoder) errf(format string, a ...any) error {
	return fmt.Errorf("pickle: at byte %d: %s", d.pos, fmt.Sprintf(format, a...))
}

func (d *decoder) need(n uint64) ([]byte, error) {
	if n > uint64(len(d.in)-d.pos) {
		return nil, d.errf("length %d runs past the end of the input", n)
	}
	b := d.in[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *decoder) line() (string, error) {
	i := bytes.IndexByte(d.in[d.pos:], '\n')
	if i < 0 {
		return "", d.errf("unterminated line")
	}
	s := string(d.in[d.pos : d.pos+i])
	d.pos += i + 1
	return s, nil
}

func (d *decoder) push(v any) error {
	if len(d.stack) >= maxStack {
		return d.errf("stack too deep")
	}
	d.stack = append(d.stack, v)
	return nil
}

func (d *decoder) pop() (any, error) {
	if len(d.stack) == 0 {
		return nil, d.errf("stack underflow")
	}
	v := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	if _, ok := v.(mark); ok {
		return nil, d.errf("unexpected mark")
	}
	return v, nil
}

func (d *decoder) top() (any, error) {
	if len(d.stack) == 0 {
		return nil, d.errf("stack underflow")
	}
	return d.stack[len(d.stack)-1], nil
}

// popMark returns the items above the topmost mark and removes them and it.
func (d *decoder) popMark() ([]any, error) {
	for i := len(d.stack) - 1; i >= 0; i-- {
		if _, ok := d.stack[i].(mark); ok {
			items := append([]any(nil), d.stack[i+1:]...)
			d.stack = d.stack[:i]
			return items, nil
		}
	}
	return nil, d.errf("no mark on the stack")
}

func (d *decoder) setMemo(idx uint32) error {
	v, err := d.top()
	if err != nil {
		return err
	}
	if _, ok := d.memo[idx]; !ok && len(d.memo) >= maxMemo {
		return d.errf("memo too large")
	}
	d.memo[idx] = v
	return nil
}

func (d *decoder) getMemo(idx uint32) error {
	v, ok := d.memo[idx]
	if !ok {
		return d.errf("memo key %d not found", idx)
	}
	return d.push(v)
}

func (d *decoder) run() (any, error) {
	for d.pos < len(d.in) {
		opPos := d.pos
		op := d.in[d.pos]
		d.pos++
		var err error
		switch op {
		case opProto:
			if _, err = d.need(1); err == nil && d.in[d.pos-1] > 5 {
				err = d.errf("unsupported protocol %d", d.in[d.pos-1])
			}
		case opFrame:
			_, err = d.need(8)
		case opStop:
			v, err := d.pop()
			if err != nil {
				return nil, err
			}
			if len(d.stack) != 0 {
				return nil, d.errf("%d values left on the stack at STOP", len(d.stack))
			}
			if d.pos != len(d.in) {
				return nil, d.errf("%d trailing bytes after STOP", len(d.in)-d.pos)
			}
			return v, nil
		case opMark:
			err = d.push(mark{})
		case opPop:
			if len(d.stack) == 0 {
				err = d.errf("stack underflow")
			} else {
				d.stack = d.stack[:len(d.stack)-1]
			}
		case opPopMark:
			_, err = d.popMark()
		case opDup:
			var v any
			if v, err = d.top(); err == nil {
				err = d.push(v)
			}
		case opNone:
			err = d.push(nil)
		case opNewTrue:
			err = d.push(true)
		case opNewFalse:
			err = d.push(false)
		case opInt:
			var s string
			if s, err = d.line(); err == nil {
				err = d.pushTextInt(s, false)
			}
		case opLong:
			var s string
			if s, err = d.line(); err == nil {
				err = d.pushTextInt(strings.TrimSuffix(s, "L"), true)
			}
		case opBinInt:
			var b []byte
			if b, err = d.need(4); err == nil {
				err = d.push(int64(int32(binary.LittleEndian.Uint32(b))))
			}
		case opBinInt1:
			var b []byte
			if b, err = d.need(1); err == nil {
				err = d.push(int64(b[0]))
			}
		case opBinInt2:
			var b []byte
			if b, err = d.need(2); err == nil {
				err = d.push(int64(binary.LittleEndian.Uint16(b)))
			}
		case opLong1, opLong4:
			var n uint64
			if op == opLong1 {
				var b []byte
				if b, err = d.need(1); err == nil {
					n = uint64(b[0])
				}
			} else {
				var b []byte
				if b, err = d.need(4); err == nil {
					n = uint64(int32(binary.LittleEndian.Uint32(b)))
					if int32(binary.LittleEndian.Uint32(b)) < 0 {
						err = d.errf("negative LONG4 length")
					}
				}
			}
			if err == nil {
				var b []byte
				if b, err = d.need(n); err == nil {
					err = d.pushInt(fromTwosComplementLE(b))
				}
			}
		case opFloat:
			var s string
			if s, err = d.line(); err == nil {
				var f float64
				if f, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
					err = d.errf("invalid FLOAT %q", s)
				} else {
					err = d.push(f)
				}
			}
		case opBinFloat:
			var b []byte
			if b, err = d.need(8); err == nil {
				err = d.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			}
		case opString:
			var s string
			if s, err = d.line(); err == nil {
				var v string
				if v, err = unquotePy(s); err != nil {
					err = d.errf("invalid STRING: %v", err)
				} else {
					err = d.pushPy2Str([]byte(v))
				}
			}
		case opBinString, opBinUnicode, opBinBytes:
			var b []byte
			if b, err = d.need(4); err == nil {
				n := binary.LittleEndian.Uint32(b)
				if op == opBinString && int32(n) < 0 {
					err = d.errf("negative BINSTRING length")
				} else {
					err = d.pushBytes(op, uint64(n))
				}
			}
		case opShortBinString, opShortBinBytes, opShortBinUni:
			var b []byte
			if b, err = d.need(1); err == nil {
				err = d.pushBytes(op, uint64(b[0]))
			}
		case opBinUnicode8, opBinBytes8, opByteArray8:
			var b []byte
			if b, err = d.need(8); err == nil {
				err = d.pushBytes(op, binary.LittleEndian.Uint64(b))
			}
		case opUnicode:
			var s string
			if s, err = d.line(); err == nil {
				var v string
				if v, err = rawUnicodeEscape(s); err != nil {
					err = d.errf("invalid UNICODE: %v", err)
				} else {
					err = d.push(v)
				}
			}
		case opEmptyList:
			err = d.push(&pList{})
		case opList:
			var items []any
			if items, err = d.popMark(); err == nil {
				err = d.push(&pList{items: items})
			}
		case opAppend:
			var v, l any
			if v, err = d.pop(); err == nil {
				if l, err = d.top(); err == nil {
					pl, ok := l.(*pList)
					if !ok {
						err = d.errf("APPEND to a %s", typeName(l))
					} else {
						pl.items = append(pl.items, v)
					}
				}
			}
		case opAppends:
			var items []any
			if items, err = d.popMark(); err == nil {
				var l any
				if l, err = d.top(); err == nil {
					pl, ok := l.(*pList)
					if !ok {
						err = d.errf("APPENDS to a %s", typeName(l))
					} else {
						pl.items = append(pl.items, items...)
					}
				}
			}
		case opEmptyTuple:
			err = d.push(Tuple{})
		case opTuple:
			var items []any
			if items, err = d.popMark(); err == nil {
				err = d.push(Tuple(items))
			}
		case opTuple1, opTuple2, opTuple3:
			n := int(op-opTuple1) + 1
			if len(d.stack) < n {
				err = d.errf("stack underflow")
				break
			}
			items := append(Tuple(nil), d.stack[len(d.stack)-n:]...)
			for _, it := range items {
				if _, ok := it.(mark); ok {
					err = d.errf("unexpected mark")
				}
			}
			d.stack = d.stack[:len(d.stack)-n]
			if err == nil {
				err = d.push(items)
			}
		case opEmptyDict:
			err = d.push(&pDict{})
		case opDict:
			var items []any
			if items, err = d.popMark(); err == nil {
				if len(items)%2 != 0 {
					err = d.errf("DICT with an odd number of items")
				} else {
					pd := &pDict{}
					for i := 0; i < len(items); i += 2 {
						pd.keys = append(pd.keys, items[i])
						pd.vals = append(pd.vals, items[i+1])
					}
					err = d.push(pd)
				}
			}
		case opSetItem:
			var k, v, m any
			if v, err = d.pop(); err == nil {
				if k, err = d.pop(); err == nil {
					if m, err = d.top(); err == nil {
						pd, ok := m.(*pDict)
						if !ok {
							err = d.errf("SETITEM on a %s", typeName(m))
						} else {
							pd.keys = append(pd.keys, k)
							pd.vals = append(pd.vals, v)
						}
					}
				}
			}
		case opSetItems:
			var items []any
			if items, err = d.popMark(); err == nil {
				var m any
				if m, err = d.top(); err == nil {
					pd, ok := m.(*pDict)
					switch {
					case !ok:
						err = d.errf("SETITEMS on a %s", typeName(m))
					case len(items)%2 != 0:
						err = d.errf("SETITEMS with an odd number of items")
					default:
						for i := 0; i < len(items); i += 2 {
							pd.keys = append(pd.keys, items[i])
							pd.vals = append(pd.vals, items[i+1])
						}
					}
				}
			}
		case opPut:
			var s string
			if s, err = d.line(); err == nil {
				var n uint64
				if n, err = strconv.ParseUint(s, 10, 32); err != nil {
					err = d.errf("invalid PUT index %q", s)
				} else {
					err = d.setMemo(uint32(n))
				}
			}
		case opBinPut:
			var b []byte
			if b, err = d.need(1); err == nil {
				err = d.setMemo(uint32(b[0]))
			}
		case opLongBinPut:
			var b []byte
			if b, err = d.need(4); err == nil {
				err = d.setMemo(binary.LittleEndian.Uint32(b))
			}
		case opMemoize:
			err = d.setMemo(uint32(len(d.memo)))
		case opGet:
			var s string
			if s, err = d.line(); err == nil {
				var n uint64
				if n, err = strconv.ParseUint(s, 10, 32); err != nil {
					err = d.errf("invalid GET index %q", s)
				} else {
					err = d.getMemo(uint32(n))
				}
			}
		case opBinGet:
			var b []byte
			if b, err = d.need(1); err == nil {
				err = d.getMemo(uint32(b[0]))
			}
		case opLongBinGet:
			var b []byte
			if b, err = d.need(4); err == nil {
				err = d.getMemo(binary.LittleEndian.Uint32(b))
			}
		case opGlobal:
			var mod, name string
			if mod, err = d.line(); err == nil {
				if name, err = d.line(); err == nil {
					err = d.pushGlobal(mod, name)
				}
			}
		case opStackGlobal:
			var name, mod any
			if name, err = d.pop(); err == nil {
				if mod, err = d.pop(); err == nil {
					ms, ok1 := mod.(string)
					ns, ok2 := name.(string)
					if !ok1 || !ok2 {
						err = d.errf("STACK_GLOBAL needs two strings")
					} else {
						err = d.pushGlobal(ms, ns)
					}
				}
			}
		case opReduce:
			var args, fn any
			if args, err = d.pop(); err == nil {
				if fn, err = d.pop(); err == nil {
					var v any
					if v, err = d.reduce(fn, args); err == nil {
						err = d.push(v)
					}
				}
			}
		default:
			return nil, fmt.Errorf("pickle: at byte %d: opcode 0x%02x (%q) is not allowed", opPos, op, rune(op))
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, d.errf("missing STOP")
}

func (d *decoder) pushTextInt(s string, long bool) error {
	s = strings.TrimSpace(s)
	if !long {
		switch s {
		case "00":
			return d.push(false)
		case "01":
			return d.push(true)
		}
	}
	if digits := len(strings.TrimLeft(s, "+-")); digits > maxIntDigits {
		return d.errf("integer of %d digits exceeds the limit of %d (Python's int_max_str_digits)", digits, maxIntDigits)
	}
	x, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return d.errf("invalid integer %q", s)
	}
	return d.push(intValue(x))
}

// pushInt pushes a binary LONG1/LONG4 integer, refusing one of more than
// maxIntDigits decimal digits.
func (d *decoder) pushInt(x *big.Int) error {
	if x.CmpAbs(intLimit) >= 0 {
		return d.errf("integer of more than %d digits (%d bits) refused: Python's int_max_str_digits", maxIntDigits, x.BitLen())
	}
	return d.push(intValue(x))
}

func (d *decoder) pushBytes(op byte, n uint64) error {
	b, err := d.need(n)
	if err != nil {
		return err
	}
	switch op {
	case opBinUnicode, opShortBinUni, opBinUnicode8:
		if !utf8.Valid(b) {
			return d.errf("invalid UTF-8 in a str")
		}
		return d.push(string(b))
	case opBinString, opShortBinString:
		return d.pushPy2Str(b)
	}
	return d.push(append([]byte(nil), b...))
}

// pushPy2Str pushes a Python 2 str, which Python 3 decodes as ASCII by
// default.
func (d *decoder) pushPy2Str(b []byte) error {
	for _, c := range b {
		if c >= 0x80 {
			return d.errf("non-ASCII byte in a Python 2 str")
		}
	}
	return d.push(string(b))
}

func (d *decoder) pushGlobal(mod, name string) error {
	if (mod == "builtins" || mod == "__builtin__") && name == "bytearray" {
		return d.push(bytearray{})
	}
	if mod == "_codecs" && name == "encode" {
		return d.push(codecsEncode{})
	}
	return d.errf("global %s.%s refused: only plain data and builtins.bytearray are accepted", mod, name)
}

func (d *decoder) reduce(fn, args any) (any, error) {
	t, ok := args.(Tuple)
	if !ok {
		return nil, d.errf("REDUCE arguments are not a tuple")
	}
	switch fn.(type) {
	case bytearray:
	case codecsEncode:
		if len(t) != 2 {
			return nil, d.errf("unsupported _codecs.encode arguments")
		}
	default:
		return nil, d.errf("REDUCE of a %s refused", typeName(fn))
	}
	switch len(t) {
	case 0:
		return []byte{}, nil
	case 1:
		if b, ok := t[0].([]byte); ok {
			return append([]byte(nil), b...), nil
		}
	case 2:
		// bytearray(str, encoding): protocol < 3 writes latin-1 text
		s, ok1 := t[0].(string)
		enc, ok2 := t[1].(string)
		if ok1 && ok2 && (enc == "latin-1" || enc == "latin1" || enc == "iso-8859-1") {
			out := make([]byte, 0, len(s))
			for _, r := range s {
				if r > 0xff {
					return nil, d.errf("bytearray latin-1 text out of range")
				}
				out = append(out, byte(r))
			}
			return out, nil
		}
	}
	return nil, d.errf("unsupported bytearray arguments")
}

func intValue(x *big.Int) any {
	if x.IsInt64() {
		return x.Int64()
	}
	return x
}

func typeName(v any) string {
	switch v.(type) {
	case *pList:
		return "list"
	case *pDict:
		return "dict"
	case Tuple:
		return "tuple"
	case bytearray:
		return "bytearray callable"
	case codecsEncode:
		return "_codecs.encode callable"
	case nil:
		return "None"
	}
	return fmt.Sprintf("%T", v)
}

// converter turns decoder objects into plain values, bounding the expanded
// size of shared references and refusing cycles.
type converter struct {
	budget int // expanded size still allowed
	active map[any]bool
	keys   map[*big.Int]string // integer dict keys already converted
}

// spend charges n units of expanded size.
func (c *converter) spend(n int) error {
	if c.budget -= n; c.budget < 0 {
		return fmt.Errorf("pickle: value too large after expanding shared references (limit: %d bytes + %d per input byte, counting %d per value plus the bytes of its strings)", expansionBase, expansionPerByte, valueSize)
	}
	return nil
}

// intKey converts an integer dict key to its decimal text once, however
// many times the key is referenced.
func (c *converter) intKey(x *big.Int) string {
	if s, ok := c.keys[x]; ok {
		return s
	}
	if c.keys == nil {
		c.keys = map[*big.Int]string{}
	}
	s := x.String()
	c.keys[x] = s
	return s
}

func (c *converter) plain(v any, depth int) (any, error) {
	size := valueSize
	switch x := v.(type) {
	case string:
		size += len(x)
	case []byte:
		size += len(x)
	case *big.Int:
		size += len(x.Bits()) * 8
	}
	if err := c.spend(size); err != nil {
		return nil, err
	}
	if depth > maxNesting {
		return nil, fmt.Errorf("pickle: nested deeper than %d levels", maxNesting)
	}
	switch x := v.(type) {
	case *pList:
		if err := c.enter(x); err != nil {
			return nil, err
		}
		defer delete(c.active, x)
		out := make([]any, len(x.items))
		for i, e := range x.items {
			p, err := c.plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case Tuple:
		out := make(Tuple, len(x))
		for i, e := range x {
			p, err := c.plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case *pDict:
		if err := c.enter(x); err != nil {
			return nil, err
		}
		defer delete(c.active, x)
		out := make(map[string]any, len(x.keys))
		for i, k := range x.keys {
			var key string
			switch kk := k.(type) {
			case string:
				key = kk
			case int64:
				key = strconv.FormatInt(kk, 10)
			case *big.Int:
				key = c.intKey(kk)
			case bool:
				key = strconv.FormatBool(kk)
			default:
				return nil, fmt.Errorf("pickle: dict key of type %s is not supported", typeName(k))
			}
			if err := c.spend(len(key)); err != nil {
				return nil, err
			}
			p, err := c.plain(x.vals[i], depth+1)
			if err != nil {
				return nil, err
			}
			out[key] = p
		}
		return out, nil
	case bytearray, codecsEncode:
		return nil, errors.New("pickle: a bare callable is not data")
	case mark:
		return nil, errors.New("pickle: stray mark")
	}
	return v, nil
}

func (c *converter) enter(p any) error {
	if c.active == nil {
		c.active = map[any]bool{}
	}
	if c.active[p] {
		return errors.New("pickle: self-referencing container refused")
	}
	c.active[p] = true
	return nil
}

// Plain replaces every Tuple in v (recursively) by []any.
func Plain(v any) any {
	switch x := v.(type) {
	case Tuple:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Plain(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = Plain(e)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = Plain(e)
		}
		return x
	}
	return v
}

// unquotePy decodes a protocol 0 STRING argument: a Python repr of a str.
func unquotePy(s string) (string, error) {
	s = strings.TrimRight(s, " ")
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", errors.New("not a quoted string")
	}
	body := s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(body) {
			return "", errors.New("trailing backslash")
		}
		switch body[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\', '\'', '"':
			b.WriteByte(body[i])
		case 'x':
			if i+3 > len(body) {
				return "", errors.New("short \\x escape")
			}
			n, err := strconv.ParseUint(body[i+1:i+3], 16, 8)
			if err != nil {
				return "", err
			}
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte('\\')
			b.WriteByte(body[i])
		}
	}
	return b.String(), nil
}

// rawUnicodeEscape decodes a protocol 0 UNICODE argument.
func rawUnicodeEscape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return "", errors.New("short unicode escape")
			}
			r, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
			if err != nil || r > utf8.MaxRune {
				return "", errors.New("invalid unicode escape")
			}
			b.WriteRune(rune(r))
			i += 1 + n
			continue
		}
		// raw-unicode-escape maps other bytes as latin-1
		b.WriteRune(rune(s[i]))
	}
	return b.String(), nil
}
