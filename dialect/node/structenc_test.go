package node

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/siobridge/siobridge/op"
	"github.com/siobridge/siobridge/queue"
)

// slowPath is what the emitter does with an argument appendMsgpack refuses:
// op.Normalize (json.Marshal for structs, decoded into plain data) then
// appendMsgpack.
func slowPath(v any) ([]byte, error) {
	n, err := op.Normalize(v)
	if err != nil {
		return nil, err
	}
	return appendMsgpack(nil, n, 1)
}

// checkStructPath compares the direct path with the slow path for v: when
// the direct path writes v, the bytes must be the slow path's; otherwise
// its error must wrap errNotPlain (the caller then takes the slow path).
// It reports whether the direct path wrote v.
func checkStructPath(t *testing.T, v any) bool {
	t.Helper()
	fast, ferr := appendMsgpack(nil, v, 1)
	slow, serr := slowPath(v)
	if ferr != nil {
		if !errors.Is(ferr, errNotPlain) {
			t.Fatalf("%#v: direct path error %v does not wrap errNotPlain", v, ferr)
		}
		return false
	}
	if serr != nil {
		t.Fatalf("%#v: direct path wrote % x, the slow path fails: %v", v, fast, serr)
	}
	if !bytes.Equal(fast, slow) {
		t.Fatalf("%#v:\ndirect % x\nslow   % x", v, fast, slow)
	}
	return true
}

type seInner struct {
	A int8    `json:"a"`
	B uint16  `json:"b,omitempty"`
	S string  `json:"s"`
	F float64 `json:"f,omitempty"`
	P *seInner
}

type seNamedStr string
type seNamedMap map[string]int
type seBytes []uint8
type seByte uint8

type seAll struct {
	I       int     `json:"i"`
	I64     int64   `json:"i64,omitempty"`
	I16     int16   `json:"i16"`
	U       uint64  `json:"u"`
	U8      uint8   // named by the Go name
	Uptr    uintptr `json:"uptr,omitempty"`
	F64     float64 `json:"f64"`
	F64E    float64 `json:"f64e,omitempty"`
	F32     float32 `json:"f32,omitempty"`
	S       string  `json:"s,omitempty"`
	Bs      []byte  `json:"bs"`
	NBs     seBytes `json:"nbs,omitempty"`
	Ba      [3]byte `json:"ba"`
	B       bool    `json:"b,omitempty"`
	Ptr     *int    `json:"ptr"`
	PP      **string
	Sl      []seInner            `json:"sl"`
	Arr     [2]*seInner          `json:"arr"`
	M       map[string]seInner   `json:"m,omitempty"`
	MA      map[string]any       `json:"ma"`
	MP      map[seNamedStr]*int8 `json:"mp"`
	Any     any                  `json:"any"`
	Anys    []any                `json:"anys,omitempty"`
	In      seInner              `json:"in,omitempty"`
	Z       float64              `json:"z,omitzero"`
	ZS      seInner              `json:"zs,omitzero"`
	ZP      *int                 `json:"zp,omitempty,omitzero"`
	Named   seNamedStr           `json:"named"`
	NM      seNamedMap           `json:"nm"`
	Skip    int                  `json:"-"`
	Dash    int                  `json:"-,"`
	private int
	D1      int         `json:"1"`
	D10     int         `json:"10"`
	D2      int         `json:"2,omitempty"`
	D0      int         `json:"0"`
	Lead    int         `json:"01"`
	BadTag  int         `json:"a\"b"`
	Space   int         `json:"with space,omitempty"`
	Uni     string      `json:"ünï"`
	Empty   int         `json:",omitempty"`
	Time    *time.Time  `json:"t,omitempty"`
	Num     json.Number `json:"num,omitempty"`
	Stringy fmt.Stringer
	Unknown int `json:"unk,omitfoo"`
}

// Types the direct path leaves to the slow path (whatever their values).
type (
	seEmbed struct {
		seInner
		X int
	}
	seDup struct {
		A int `json:"B"`
		B int // the same name: encoding/json keeps the tagged one
	}
	seStringOpt struct {
		N int `json:"n,string"`
	}
	seMarshaler    struct{ N int }
	sePtrMarshaler struct{ N int }
	seText         struct{ N int }
	seChan         struct{ C chan int }
	seComplex      struct{ C complex128 }
	seIntKeys      struct{ M map[int]string }
	seZeroer       struct {
		Z seIsZero `json:"z,omitzero"`
	}
	seIsZero   struct{ N int }
	seAnyMarsh struct {
		M json.Marshaler `json:"m"`
	}
)

func (seMarshaler) MarshalJSON() ([]byte, error)     { return []byte(`"m"`), nil }
func (*sePtrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"p"`), nil }
func (seText) MarshalText() ([]byte, error)          { return []byte("t"), nil }
func (z seIsZero) IsZero() bool                      { return z.N == 1 }
func (seByte) MarshalJSON() ([]byte, error)          { return []byte(`"b"`), nil }

type seStringer int

func (seStringer) String() string { return "s" }

type seSmall struct {
	N int64 `json:"n"`
}

// TestStructFastPathTable: values the direct path writes (with the slow
// path's bytes) and values it leaves to the slow path.
func TestStructFastPathTable(t *testing.T) {
	if !structFastPath {
		t.Skip("no struct path in this build")
	}
	one, s := 1, "ptr"
	ps := &s
	inner := &seInner{A: -5, S: "x", P: &seInner{F: 0.5}}
	fast := []any{
		seSmall{N: 7},
		&seSmall{N: -1 << 40},
		(*seSmall)(nil),
		struct{}{},
		seInner{},
		seAll{},
		seAll{I: 1, I64: math.MinInt64, I16: -300, U: math.MaxUint64, U8: 200, Uptr: 7, F64: 1e20 / 1e5, F32: 0.5,
			S: "héllo <&> \u2028", Bs: []byte{0, 1, 2, 255}, NBs: seBytes{}, Ba: [3]byte{1, 2, 3}, B: true, Ptr: &one, PP: &ps,
			Sl: []seInner{{A: 1}, {B: 2}}, Arr: [2]*seInner{inner}, M: map[string]seInner{"1": {}, "b": {S: "y"}, "a": {}},
			MA: map[string]any{"k": []any{1.0, "s", nil, true, map[string]any{"10": 1, "9": 2, "x": -0.0}}, "bin": []byte("hi")},
			MP: map[seNamedStr]*int8{"q": nil}, Any: map[string]any{"n": 1e21}, Anys: []any{inner, seSmall{3}, int8(-3), uint64(1 << 63)},
			In: seInner{S: "in"}, Z: math.Copysign(0, -1), ZS: seInner{A: 1}, ZP: &one, Named: "nm", NM: seNamedMap{"z": 1, "a": 2},
			D1: 1, D10: 10, D2: 2, D0: 3, Lead: 4, BadTag: 5, Space: 6, Uni: "ü", Empty: 8, Stringy: seStringer(2), Unknown: 9},
		seAll{F64: math.Copysign(0, -1), F64E: 0.1},
		seAll{Stringy: time.Second}, // a Stringer, not a marshaler: an int64
	}
	// floats: encoding/json writes integral values below 1e21 as integers,
	// which the slow path reads as int64, else uint64, else refuses
	for _, f := range []float64{1, 0.1, 1e15, 1 << 53, 1<<53 + 2, 1 << 62, 1e21, 1.5e300, 1e-6, 9e-7, 5e-324,
		123456789.125, math.MaxFloat64} {
		fast = append(fast, seAll{F64: f}, seAll{F64: -f}, seAll{Any: f})
	}
	// written 9223372036854776000 and 13835058055282164000: uint64
	fast = append(fast, seAll{F64: 1 << 63}, seAll{F64: 1 << 63 * 1.5}, seAll{Any: 1 << 63 * 1.5})
	for _, f := range []float32{0.5, 1, 0.1, -3, 16777216, 3.4e38, 1e-7, 1e-6} {
		fast = append(fast, seAll{F32: f})
	}
	for _, v := range fast {
		if !checkStructPath(t, v) {
			_, err := appendMsgpack(nil, v, 1)
			t.Errorf("%#v: left to the slow path: %v", v, err)
		}
	}
	slow := []any{
		seAll{F64: 1e20}, seAll{F64: -1e20}, seAll{F64: -1e19}, seAll{F64: -1 << 63}, seAll{F64: -1 << 63 * 1.5}, seAll{F64: 1 << 64}, seAll{F64: 9.999999999999999e20},
		seAll{Any: 1e20}, seAll{F32: 1e20}, seAll{F64: math.NaN()}, seAll{F64: math.Inf(-1)}, seAll{F32: float32(math.Inf(1))},
		seAll{S: "bad \xff"}, seAll{MA: map[string]any{"\xfe": 1}}, seAll{Any: "\xff"},
		seAll{Time: &time.Time{}}, seAll{Num: "1.5"}, seAll{Any: time.Time{}}, seAll{Any: json.RawMessage(`1`)},
		seAll{Any: seMarshaler{}}, seAll{Any: sePtrMarshaler{}}, seAll{Any: &sePtrMarshaler{}}, seAll{Any: seText{}},
		seAll{Any: []seByte{1}},
		seEmbed{}, seDup{}, seStringOpt{}, seMarshaler{}, &seMarshaler{}, sePtrMarshaler{}, seText{}, &seText{},
		seChan{}, seComplex{}, seIntKeys{}, seZeroer{}, seAnyMarsh{},
	}
	for _, v := range slow {
		if checkStructPath(t, v) {
			t.Errorf("%#v: written by the direct path", v)
		}
	}
}

// TestStructFastPathDepth: nesting is bounded as appendMsgpack bounds it,
// and a pointer cycle through an interface ends in the slow path (which
// reports it) instead of looping.
func TestStructFastPathDepth(t *testing.T) {
	type list struct {
		Next *list `json:"next,omitempty"`
	}
	build := func(n int) *list {
		var l *list
		for i := 0; i < n; i++ {
			l = &list{Next: l}
		}
		return l
	}
	if !checkStructPath(t, build(100)) && structFastPath {
		t.Error("100 nested structs left to the slow path")
	}
	checkStructPath(t, build(1200)) // the slow path fails: the direct path must not write it
	type loop struct{ X any }
	l := &loop{}
	l.X = l
	if _, err := appendMsgpack(nil, l, 1); !errors.Is(err, errNotPlain) {
		t.Fatalf("cycle: %v", err)
	}
	type selfPtr *selfPtr
	var sp selfPtr
	sp = &sp
	if _, err := appendMsgpack(nil, sp, 1); !errors.Is(err, errNotPlain) {
		t.Fatalf("self-pointing pointer: %v", err)
	}
	var x any
	x = &x
	if _, err := appendMsgpack(nil, seAll{Any: x}, 1); !errors.Is(err, errNotPlain) {
		t.Fatalf("cycle through an interface: %v", err)
	}
}

// TestStructArgAllocations: a struct argument is written by AppendEmit
// directly (before, AppendEmit returned dialect.ErrNoFastPath and the
// emitter normalized it through encoding/json: 17 allocations an emit).
func TestStructArgAllocations(t *testing.T) {
	if !structFastPath {
		t.Skip("no struct path in this build")
	}
	d := New(Options{})
	e := &op.Emit{Target: op.Target{Namespace: "/", Rooms: []string{"r"}}, Event: "tick", Args: []any{seSmall{N: 1000}}}
	buf := make([]byte, 0, 1024)
	out, err := d.AppendEmit(buf, new(queue.Message), e, nil)
	if err != nil {
		t.Fatalf("AppendEmit of a struct argument: %v", err)
	}
	want, err := d.Encode(&op.Emit{Target: e.Target, Event: "tick", Args: []any{map[string]any{"n": int64(1000)}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want[0].Data) {
		t.Fatalf("payload\n% x\nwant\n% x", out, want[0].Data)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := d.AppendEmit(buf[:0], new(queue.Message), e, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("AppendEmit of a small struct: %.1f allocations, want at most 2", allocs)
	}
}

// TestStructPlanCacheBound: past maxStructPlans types, plans are built
// and not kept.
func TestStructPlanCacheBound(t *testing.T) {
	n := 0
	planCache.Range(func(any, any) bool { n++; return true })
	var made []reflect.Type
	t.Cleanup(func() { // leave the cache to the other tests
		for _, typ := range made {
			if _, ok := planCache.LoadAndDelete(typ); ok {
				planCount.Add(-1)
			}
		}
	})
	for i := 0; n+i <= maxStructPlans+10; i++ {
		typ := reflect.StructOf([]reflect.StructField{{Name: fmt.Sprintf("F%d", i), Type: reflect.TypeFor[int](), Tag: `json:"f"`}})
		made = append(made, typ)
		v := reflect.New(typ).Elem()
		v.Field(0).SetInt(int64(i))
		checkStructPath(t, v.Interface())
	}
	n = 0
	planCache.Range(func(any, any) bool { n++; return true })
	if n > maxStructPlans || planCount.Load() > maxStructPlans {
		t.Fatalf("%d plans cached (count %d), bound %d", n, planCount.Load(), maxStructPlans)
	}
}

// ---------------------------------------------------------------- fuzzing

// fuzzSource hands out the fuzzer's bytes (zeros once they run out).
type fuzzSource struct{ b []byte }

func (s *fuzzSource) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *fuzzSource) u64() uint64 {
	var x [8]byte
	for i := range x {
		x[i] = s.byte()
	}
	return binary.LittleEndian.Uint64(x[:])
}

var (
	fuzzFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 1e20, -1e20, 1e21, 1e22, 9.999999999999999e20, 1 << 53,
		1<<53 + 2, 1 << 63, -1 << 63, 1 << 64, 1.8446744073709552e19, 1e19, 1e-6, 9.99e-7, 1e-7, 5e-324, math.MaxFloat64,
		math.MaxFloat32, 16777217, 3.4e38, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, 123456789012345678}
	fuzzInts    = []int64{0, 1, -1, 31, -32, -33, 127, 128, 255, 256, 65535, 65536, 1 << 32, math.MaxInt64, math.MinInt64, math.MinInt32}
	fuzzUints   = []uint64{0, 1, 255, 1 << 16, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64}
	fuzzStrings = []string{"", "a", "b", "1", "10", "2", "01", "0", "-1", "4294967295", "4294967294", "ü", "\u2028", "<&>",
		"\xff", "a\x00b", "\"\\", "\U0001F600", "\xed\xa0\x80", "0123456789012345678901234567890123456789"}
	fuzzTypes = []reflect.Type{reflect.TypeFor[seAll](), reflect.TypeFor[seInner](), reflect.TypeFor[seSmall](),
		reflect.TypeFor[seEmbed](), reflect.TypeFor[seZeroer](), reflect.TypeFor[seMarshaler](), reflect.TypeFor[seIntKeys]()}
)

func (s *fuzzSource) float() float64 {
	c := s.byte()
	if int(c) < len(fuzzFloats)*3/2 {
		return fuzzFloats[int(c)%len(fuzzFloats)]
	}
	if c < 200 {
		return float64(int64(s.u64())>>(s.byte()%64)) / float64(uint64(1)<<(s.byte()%8))
	}
	return math.Float64frombits(s.u64())
}

func (s *fuzzSource) str() string {
	c := s.byte()
	if int(c) < 200 {
		return fuzzStrings[int(c)%len(fuzzStrings)]
	}
	n := int(s.byte() % 40)
	b := make([]byte, n)
	for i := range b {
		b[i] = s.byte()
	}
	return string(b)
}

// anyValue is what a fuzzed interface field holds.
func (s *fuzzSource) anyValue(depth int) any {
	switch s.byte() % 20 {
	case 0:
		return nil
	case 1:
		return int64(s.u64())
	case 2:
		return s.float()
	case 3:
		return s.str()
	case 4:
		return s.byte()&1 == 1
	case 5:
		m := map[string]any{}
		for n := s.byte() % 4; n > 0 && depth < 4; n-- {
			m[s.str()] = s.anyValue(depth + 1)
		}
		return m
	case 6:
		var l []any
		for n := s.byte() % 4; n > 0 && depth < 4; n-- {
			l = append(l, s.anyValue(depth+1))
		}
		return l
	case 7:
		return []byte(s.str())
	case 8:
		return s.value(reflect.TypeFor[seInner](), depth+1).Interface()
	case 9:
		return s.value(reflect.TypeFor[*seSmall](), depth+1).Interface()
	case 10:
		return json.Number("1.5")
	case 11:
		return int8(s.byte())
	case 12:
		return s.u64()
	case 13:
		return float32(s.float())
	case 14:
		return map[string]int{s.str(): int(s.u64())}
	case 15:
		return [2]byte{s.byte(), s.byte()}
	case 16:
		return int(fuzzInts[int(s.byte())%len(fuzzInts)])
	case 17:
		return time.Unix(int64(s.byte()), 0)
	case 18:
		return seNamedStr(s.str())
	}
	return s.value(reflect.TypeFor[seAll](), depth+1).Interface()
}

// value makes a value of t from the fuzzer's bytes.
func (s *fuzzSource) value(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	s.fill(v, depth)
	return v
}

func (s *fuzzSource) fill(v reflect.Value, depth int) {
	if depth > 6 {
		return // zero: nil pointers, maps, slices
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(s.byte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if c := s.byte(); c < 128 {
			v.SetInt(fuzzInts[int(c)%len(fuzzInts)])
		} else {
			v.SetInt(int64(s.u64()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if c := s.byte(); c < 128 {
			v.SetUint(fuzzUints[int(c)%len(fuzzUints)])
		} else {
			v.SetUint(s.u64())
		}
	case reflect.Float32, reflect.Float64:
		v.SetFloat(s.float())
	case reflect.String:
		v.SetString(s.str())
	case reflect.Slice:
		if c := s.byte(); c%4 != 0 {
			n := int(c % 5)
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := 0; i < n; i++ {
				s.fill(v.Index(i), depth+1)
			}
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			s.fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		if c := s.byte(); c%4 != 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for n := c % 5; n > 0; n-- {
				k := reflect.New(v.Type().Key()).Elem()
				s.fill(k, depth+1)
				v.SetMapIndex(k, s.value(v.Type().Elem(), depth+1))
			}
		}
	case reflect.Pointer:
		if s.byte()%3 != 0 {
			v.Set(reflect.New(v.Type().Elem()))
			s.fill(v.Elem(), depth+1)
		}
	case reflect.Interface:
		var x any
		if v.NumMethod() == 0 {
			x = s.anyValue(depth)
		} else if c := s.byte() % 3; c == 1 {
			x = seStringer(c)
		} else if c == 2 {
			x = time.Duration(c)
		}
		if x != nil && reflect.TypeOf(x).Implements(v.Type()) {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(int64(s.byte()), 0)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() {
				s.fill(v.Field(i), depth+1)
			}
		}
	}
}

// FuzzStructFastPath: for struct values made from the fuzzer's bytes, the
// direct path writes the slow path's bytes, or leaves the value to it.
func FuzzStructFastPath(f *testing.F) {
	for _, seed := range []string{
		"", "\x00", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09",
		"\x00\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1",
		"\x00\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05",
		"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13",
		"\x02\xc8\x01\x02\x03\x04\x05\x06\x07\x08\x01\x01",
		"\x00\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11",
		"\x00\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07",
		"\x80\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &fuzzSource{b: data}
		c := s.byte()
		typ := fuzzTypes[int(c>>2)%len(fuzzTypes)]
		v := s.value(typ, 0)
		switch c & 3 {
		case 0:
			checkStructPath(t, v.Interface())
		case 1:
			checkStructPath(t, v.Addr().Interface())
		case 2:
			p := v.Addr()
			pp := reflect.New(p.Type())
			pp.Elem().Set(p)
			checkStructPath(t, pp.Interface())
		case 3: // inside plain data
			checkStructPath(t, []any{v.Interface(), map[string]any{"s": v.Addr().Interface()}})
		}
	})
}
