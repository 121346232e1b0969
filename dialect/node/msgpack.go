package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// omap and kv are the package's short names of Map and Field.
type (
	omap = Map
	kv   = Field
)

// errNotPlain is wrapped by appendMsgpack's errors for values that are
// not op's plain data (op.Normalize makes them plain).
var errNotPlain = errors.New("not plain data")

// appendMsgpack encodes v the way notepack.io 3 does: smallest integer
// forms, floats as float64, strings as str, []byte as bin, maps with
// JavaScript's Object.keys order (integer-like keys ascending first, then
// the others; Go maps have no insertion order, so those are sorted).
// Structs, and pointers to structs, are written as op.Normalize and then
// appendMsgpack would write them (their encoding/json form), straight from
// their fields when the struct path reproduces that exactly (structenc.go);
// otherwise the error wraps errNotPlain.
func appendMsgpack(b []byte, v any, depth int) ([]byte, error) {
	if depth > 1000 {
		return nil, errors.New("node: value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if x {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case uint64:
		if x <= math.MaxInt64 {
			return appendInt(b, int64(x)), nil
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcf), x), nil
	case *big.Int:
		if x == nil {
			return nil, fmt.Errorf("%w: node: nil *big.Int", errNotPlain)
		}
		if x.IsInt64() {
			return appendInt(b, x.Int64()), nil
		}
		if x.IsUint64() {
			return binary.BigEndian.AppendUint64(append(b, 0xcf), x.Uint64()), nil
		}
		return nil, fmt.Errorf("node: integer %s does not fit in 64 bits; JavaScript peers cannot represent it", x)
	case float64:
		return appendFloat(b, x), nil
	case string:
		return appendStr(b, x), nil
	case []byte:
		n := len(x)
		switch {
		case n < 1<<8:
			b = append(b, 0xc4, byte(n))
		case n < 1<<16:
			b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
		}
		return append(b, x...), nil
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return appendMsgpack(b, l, depth)
	case []any:
		b = appendLen(b, len(x), 0x90, 0xdc, 0xdd)
		var err error
		for _, e := range x {
			if b, err = appendMsgpack(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		b = appendLen(b, len(x), 0x80, 0xde, 0xdf)
		if len(x) == 1 { // the common case needs no ordering
			var err error
			for k, v := range x {
				b = appendStr(b, k)
				if b, err = appendMsgpack(b, v, depth+1); err != nil {
					return nil, err
				}
			}
			return b, nil
		}
		var err error
		for _, k := range jsKeyOrder(x) {
			b = appendStr(b, k)
			if b, err = appendMsgpack(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case omap:
		b = appendLen(b, len(x), 0x80, 0xde, 0xdf)
		var err error
		for _, e := range x {
			b = appendStr(b, e.Key)
			if b, err = appendMsgpack(b, e.Value, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if t := reflect.TypeOf(v); structArg(t) {
		// what op.Normalize runs through json.Marshal: written
		// directly when the struct path can (structenc.go)
		return appendStructArg(b, reflect.ValueOf(v), depth)
	}
	return nil, fmt.Errorf("%w: node: cannot encode a value of type %T", errNotPlain, v)
}

// appendStr writes a msgpack str (without boxing the string in an any).
func appendStr(b []byte, x string) []byte {
	return append(appendStrHeader(b, len(x)), x...)
}

// appendStrHeader writes the header of a msgpack str of n bytes.
func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n < 1<<8:
		return append(b, 0xd9, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
}

// appendFloat writes a number the way notepack does: integral numbers as
// integers (JavaScript has one number type), the others as float64.
func appendFloat(b []byte, x float64) []byte {
	if x == math.Trunc(x) && !math.IsInf(x, 0) && math.Abs(x) < 1<<63 {
		return appendInt(b, int64(x))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(x))
}

func appendLen(b []byte, n int, fix, b16, b32 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, b16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, b32), uint32(n))
}

func appendInt(b []byte, i int64) []byte {
	switch {
	case i >= 0 && i < 128:
		return append(b, byte(i))
	case i >= 0 && i < 1<<8:
		return append(b, 0xcc, byte(i))
	case i >= 0 && i < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(i))
	case i >= 0 && i < 1<<32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(i))
	case i >= 0:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(i))
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, 0xd0, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
}

// jsKeyOrder orders keys like Object.keys: array-index-like keys
// ascending, then the others (sorted here, for determinism).
func jsKeyOrder(m map[string]any) []string {
	if len(m) == 1 {
		for k := range m {
			return []string{k}
		}
	}
	var idx, other []string
	for k := range m {
		if isArrayIndex(k) {
			idx = append(idx, k)
		} else {
			other = append(other, k)
		}
	}
	sort.Slice(idx, func(i, j int) bool {
		a, _ := strconv.ParseUint(idx[i], 10, 32)
		b, _ := strconv.ParseUint(idx[j], 10, 32)
		return a < b
	})
	sort.Strings(other)
	return append(idx, other...)
}

func isArrayIndex(k string) bool {
	if k == "" || (len(k) > 1 && k[0] == '0') {
		return false
	}
	n, err := strconv.ParseUint(k, 10, 32)
	return err == nil && n < math.MaxUint32
}

// ---------------------------------------------------------------- decoder

// decodeMsgpack decodes one msgpack value that fills b exactly. Maps become
// map[string]any (number keys become their decimal text), bin becomes
// []byte, timestamps become ISO 8601 strings (as Date.toJSON writes them),
// the undefined extension becomes nil.
func decodeMsgpack(b []byte) (any, error) {
	d := mpDecoder{in: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(b) {
		return nil, fmt.Errorf("msgpack: %d trailing bytes", len(b)-d.pos)
	}
	return v, nil
}

type mpDecoder struct {
	in  []byte
	pos int
}

func (d *mpDecoder) take(n uint64) ([]byte, error) {
	if n > uint64(len(d.in)-d.pos) {
		return nil, fmt.Errorf("msgpack: length %d runs past the end at byte %d", n, d.pos)
	}
	b := d.in[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *mpDecoder) uint(n int) (uint64, error) {
	b, err := d.take(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// Limits of the msgpack decoder. A peer's message costs memory in
// proportion to its bytes: an array or map reserves room for at most
// maxPrealloc elements from its announced length and grows as elements
// actually arrive, and nesting deeper than maxDepth is refused.
const (
	maxDepth    = 1000
	maxPrealloc = 8
)

func (d *mpDecoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("msgpack: nested deeper than %d levels at byte %d", maxDepth, d.pos)
	}
	if d.pos >= len(d.in) {
		return nil, errors.New("msgpack: unexpected end of input")
	}
	c := d.in[d.pos]
	d.pos++
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x80:
		return d.mapN(uint64(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return d.arrayN(uint64(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return d.str(uint64(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		b, err := d.take(n)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), b...), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(n, false)
	case 0xca:
		u, err := d.uint(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(uint32(u))), nil
	case 0xcb:
		u, err := d.uint(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(u), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u <= math.MaxInt64 {
			return int64(u), nil
		}
		return u, nil
	case 0xd0:
		u, err := d.uint(1)
		return int64(int8(u)), err
	case 0xd1:
		u, err := d.uint(2)
		return int64(int16(u)), err
	case 0xd2:
		u, err := d.uint(4)
		return int64(int32(u)), err
	case 0xd3:
		u, err := d.uint(8)
		return int64(u), err
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1<<(c-0xd4), true)
	case 0xd9, 0xda, 0xdb:
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayN(n, depth)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapN(n, depth)
	}
	return nil, fmt.Errorf("msgpack: invalid byte 0x%02x at %d", c, d.pos-1)
}

func (d *mpDecoder) str(n uint64) (any, error) {
	b, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, errors.New("msgpack: invalid UTF-8 in str")
	}
	return string(b), nil
}

func (d *mpDecoder) arrayN(n uint64, depth int) (any, error) {
	if n > uint64(len(d.in)-d.pos) { // every element takes at least one byte
		return nil, fmt.Errorf("msgpack: array of %d runs past the end", n)
	}
	// The announced length is only a claim: reserve little, grow as the
	// elements arrive (each takes at least one byte of input).
	out := make([]any, 0, min(n, maxPrealloc))
	for i := uint64(0); i < n; i++ {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *mpDecoder) mapN(n uint64, depth int) (any, error) {
	if n > uint64(len(d.in)-d.pos)/2 {
		return nil, fmt.Errorf("msgpack: map of %d runs past the end", n)
	}
	out := make(map[string]any, min(n, maxPrealloc)) // grows as entries arrive
	for i := uint64(0); i < n; i++ {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		var key string
		switch kk := k.(type) {
		case string:
			key = kk
		case int64:
			key = strconv.FormatInt(kk, 10)
		case uint64:
			key = strconv.FormatUint(kk, 10)
		case float64:
			key = strconv.FormatFloat(kk, 'g', -1, 64)
		case bool:
			key = strconv.FormatBool(kk)
		case nil:
			key = "null"
		default:
			return nil, fmt.Errorf("msgpack: map key of type %T", k)
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

func (d *mpDecoder) ext(n uint64, fixed bool) (any, error) {
	tb, err := d.take(1)
	if err != nil {
		return nil, err
	}
	typ := int8(tb[0])
	data, err := d.take(n)
	if err != nil {
		return nil, err
	}
	switch typ {
	case 0:
		switch {
		case fixed && n == 1:
			return nil, nil // notepack's undefined (d4 00 00)
		case fixed && n == 8: // Date as milliseconds, written by peers before notepack 3
			ms := int64(binary.BigEndian.Uint64(data))
			return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z"), nil
		case !fixed:
			return append([]byte(nil), data...), nil // ArrayBuffer
		}
		return nil, fmt.Errorf("msgpack: fixext%d of type 0 is not supported", n)
	case -1: // timestamp
		var t time.Time
		switch n {
		case 4:
			t = time.Unix(int64(binary.BigEndian.Uint32(data)), 0)
		case 8:
			v := binary.BigEndian.Uint64(data)
			t = time.Unix(int64(v&(1<<34-1)), int64(v>>34))
		case 12:
			t = time.Unix(int64(binary.BigEndian.Uint64(data[4:])), int64(binary.BigEndian.Uint32(data[:4])))
		default:
			return nil, fmt.Errorf("msgpack: timestamp of %d bytes", n)
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	}
	return nil, fmt.Errorf("msgpack: extension type %d is not supported", typ)
}
