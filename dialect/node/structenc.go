package node

import (
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// The direct struct path: a struct argument (or a pointer to one) is
// written straight from its fields, with the bytes the slow path gives
// (op.Normalize, which runs it through json.Marshal and decodes the JSON
// into plain data, then appendMsgpack). An encoding plan is built once per
// type with reflect and cached. Whatever the plan does not reproduce
// exactly gives errNotPlain, and the caller takes the slow path: types
// implementing json.Marshaler or encoding.TextMarshaler (time.Time...),
// json.Number, embedded fields, duplicate field names, the ",string"
// option, omitzero with an IsZero method, maps whose keys are not
// strings, float32 and float64 values the slow path refuses (NaN, ±Inf,
// integers beyond 64 bits), strings that are not valid UTF-8, channels,
// functions, complex numbers, and nesting near appendMsgpack's 1000 levels.

// maxStructPlans bounds the plan cache: at most this many types (struct
// arguments, and the dynamic types met in interface fields) keep their
// plan; past it a plan is built for each value and dropped. Types come from
// the program, not from peers, but reflect.StructOf can make new ones
// without end.
const maxStructPlans = 1024

var (
	planCache sync.Map // reflect.Type → *encPlan
	planCount atomic.Int64

	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	jsonNumberType    = reflect.TypeFor[json.Number]()
	isZeroerType      = reflect.TypeFor[interface{ IsZero() bool }]()
	mapStringAnyType  = reflect.TypeFor[map[string]any]()
)

type planKind uint8

const (
	planBad planKind = iota
	planBool
	planInt
	planUint
	planFloat64
	planFloat32
	planString
	planBytes // []byte: a base64 string, as encoding/json writes it
	planSlice
	planArray
	planMap // string keys
	planPtr
	planIface
	planStruct
)

// encPlan is how values of one type are written. Plans are immutable once
// built (the cache publishes them).
type encPlan struct {
	kind   planKind
	why    string   // planBad: why the slow path must write it
	elem   *encPlan // planSlice, planArray, planMap (values), planPtr
	fields []fieldPlan
	omits  bool // planStruct: some field has omitempty or omitzero
}

// fieldPlan is one field of a struct, as encoding/json names it.
type fieldPlan struct {
	index     int
	key       []byte // the name as a msgpack str
	omitEmpty bool
	omitZero  bool
	plan      *encPlan
}

func (f *fieldPlan) omitted(v reflect.Value) bool {
	return f.omitEmpty && isEmptyValue(v) || f.omitZero && v.IsZero()
}

// structArg reports whether t is a struct, or a pointer (to a pointer...)
// to one: the values the slow path runs through json.Marshal. A pointer
// type can point to itself (type P *P): the walk is bounded.
func structArg(t reflect.Type) bool {
	for i := 0; t.Kind() == reflect.Pointer && i < maxDepth; i++ {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// appendStructArg writes a struct, or a pointer to one, as op.Normalize
// followed by appendMsgpack would. Errors wrap errNotPlain: the slow path
// then writes the value, or says why it cannot.
func appendStructArg(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if !structFastPath {
		return nil, fmt.Errorf("%w: node: struct %s (the encoding/json of this build is not the one the struct path reproduces)", errNotPlain, v.Type())
	}
	// a pointer's plan is op.Normalize's view too: nil is nil, else the
	// value it points to (and a marshaler falls back either way)
	return planFor(v.Type()).append(b, v, depth)
}

func implementsMarshaler(t reflect.Type) bool {
	return t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType)
}

// planFor returns the cached plan of t, or builds it (and caches it while
// the cache holds fewer than maxStructPlans).
func planFor(t reflect.Type) *encPlan {
	if p, ok := planCache.Load(t); ok {
		return p.(*encPlan)
	}
	p := buildPlan(t, map[reflect.Type]*encPlan{})
	if planCount.Add(1) <= maxStructPlans {
		if _, loaded := planCache.LoadOrStore(t, p); loaded {
			planCount.Add(-1)
		}
	} else {
		planCount.Add(-1)
	}
	return p
}

// buildPlan builds the plan of t; building holds the plans under
// construction, so that recursive types refer to themselves.
func buildPlan(t reflect.Type, building map[reflect.Type]*encPlan) *encPlan {
	if p, ok := building[t]; ok {
		return p
	}
	if p, ok := planCache.Load(t); ok {
		return p.(*encPlan)
	}
	p := &encPlan{}
	building[t] = p
	bad := func(why string) *encPlan {
		*p = encPlan{kind: planBad, why: why}
		return p
	}
	if implementsMarshaler(t) || t.Kind() != reflect.Pointer && implementsMarshaler(reflect.PointerTo(t)) {
		return bad("implements json.Marshaler or encoding.TextMarshaler")
	}
	switch t.Kind() {
	case reflect.Bool:
		p.kind = planBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind = planInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.kind = planUint
	case reflect.Float32:
		p.kind = planFloat32
	case reflect.Float64:
		p.kind = planFloat64
	case reflect.String:
		if t == jsonNumberType {
			return bad("json.Number")
		}
		p.kind = planString
	case reflect.Interface:
		p.kind = planIface
	case reflect.Pointer:
		p.kind, p.elem = planPtr, buildPlan(t.Elem(), building)
	case reflect.Array:
		p.kind, p.elem = planArray, buildPlan(t.Elem(), building)
	case reflect.Slice:
		// encoding/json's condition for base64
		if t.Elem().Kind() == reflect.Uint8 && !implementsMarshaler(reflect.PointerTo(t.Elem())) {
			p.kind = planBytes
		} else {
			p.kind, p.elem = planSlice, buildPlan(t.Elem(), building)
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return bad("map key of kind " + t.Key().Kind().String())
		}
		p.kind, p.elem = planMap, buildPlan(t.Elem(), building)
	case reflect.Struct:
		return buildStructPlan(p, t, building)
	default:
		return bad("type of kind " + t.Kind().String())
	}
	return p
}

// buildStructPlan follows encoding/json's typeFields for structs without
// embedded fields, and orders the fields as appendMsgpack orders the keys
// of the map the slow path decodes.
func buildStructPlan(p *encPlan, t reflect.Type, building map[reflect.Type]*encPlan) *encPlan {
	bad := func(why string) *encPlan {
		*p = encPlan{kind: planBad, why: why}
		return p
	}
	var fields []fieldPlan
	var names []string
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous {
			return bad("embedded field " + sf.Name)
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !isValidTag(name) {
			name = ""
		}
		if name == "" {
			name = sf.Name
		}
		if seen[name] {
			return bad("duplicate field name " + strconv.Quote(name))
		}
		seen[name] = true
		f := fieldPlan{index: i, key: appendStr(nil, name)}
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			switch o {
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = true
			case "string":
				return bad("field " + sf.Name + " has the string option")
			}
		}
		if f.omitZero && (sf.Type.Implements(isZeroerType) || reflect.PointerTo(sf.Type).Implements(isZeroerType)) {
			return bad("omitzero field " + sf.Name + " has an IsZero method")
		}
		f.plan = buildPlan(sf.Type, building)
		p.omits = p.omits || f.omitEmpty || f.omitZero
		fields = append(fields, f)
		names = append(names, name)
	}
	// the slow path's map keys, in jsKeyOrder
	order := make([]int, len(fields))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return jsKeyLess(names[order[i]], names[order[j]]) })
	p.kind = planStruct
	p.fields = make([]fieldPlan, len(fields))
	for i, o := range order {
		p.fields[i] = fields[o]
	}
	return p
}

// jsKeyLess is the order of jsKeyOrder: array-index-like keys ascending,
// then the others sorted.
func jsKeyLess(a, b string) bool {
	ia, ib := isArrayIndex(a), isArrayIndex(b)
	if ia != ib {
		return ia
	}
	if ia {
		x, _ := strconv.ParseUint(a, 10, 32)
		y, _ := strconv.ParseUint(b, 10, 32)
		return x < y
	}
	return a < b
}

// isValidTag is encoding/json's: names it refuses fall back to the Go name.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// isEmptyValue is encoding/json's test for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

var errStructTooDeep = fmt.Errorf("%w: node: struct value nested too deeply for the direct path", errNotPlain)

// append writes v. depth counts containers as appendMsgpack does, and
// pointers and interfaces too: the slow path's limits (appendMsgpack's
// 1000 levels, encoding/json's cycle detection) are never reached here.
func (p *encPlan) append(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errStructTooDeep
	}
	var err error
	switch p.kind {
	case planBool:
		if v.Bool() {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case planInt:
		return appendInt(b, v.Int()), nil
	case planUint:
		return appendUint(b, v.Uint()), nil
	case planFloat64:
		return appendJSONFloat(b, v.Float(), 64)
	case planFloat32:
		return appendJSONFloat(b, v.Float(), 32)
	case planString:
		return appendJSONString(b, v.String())
	case planBytes:
		if v.IsNil() {
			return append(b, 0xc0), nil
		}
		x := v.Bytes()
		b = appendStrHeader(b, base64.StdEncoding.EncodedLen(len(x)))
		return base64.StdEncoding.AppendEncode(b, x), nil
	case planSlice:
		if v.IsNil() {
			return append(b, 0xc0), nil
		}
		fallthrough
	case planArray:
		n := v.Len()
		b = appendLen(b, n, 0x90, 0xdc, 0xdd)
		for i := 0; i < n; i++ {
			if b, err = p.elem.append(b, v.Index(i), depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case planPtr:
		if v.IsNil() {
			return append(b, 0xc0), nil
		}
		return p.elem.append(b, v.Elem(), depth+1)
	case planIface:
		if v.IsNil() {
			return append(b, 0xc0), nil
		}
		return appendJSONAny(b, v.Interface(), depth+1)
	case planMap:
		if v.IsNil() {
			return append(b, 0xc0), nil
		}
		if v.Type() == mapStringAnyType {
			return appendJSONMap(b, v.Interface().(map[string]any), depth)
		}
		return p.appendMap(b, v, depth)
	case planStruct:
		n := len(p.fields)
		if p.omits {
			for i := range p.fields {
				if p.fields[i].omitted(v.Field(p.fields[i].index)) {
					n--
				}
			}
		}
		b = appendLen(b, n, 0x80, 0xde, 0xdf)
		for i := range p.fields {
			f := &p.fields[i]
			fv := v.Field(f.index)
			if f.omitted(fv) {
				continue
			}
			b = append(b, f.key...)
			if b, err = f.plan.append(b, fv, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: node: %s: %s", errNotPlain, v.Type(), p.why)
}

type mapEntry struct {
	k string
	v reflect.Value
}

func (p *encPlan) appendMap(b []byte, v reflect.Value, depth int) ([]byte, error) {
	entries := make([]mapEntry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		entries = append(entries, mapEntry{it.Key().String(), it.Value()})
	}
	if len(entries) > 1 {
		sort.Slice(entries, func(i, j int) bool { return jsKeyLess(entries[i].k, entries[j].k) })
	}
	b = appendLen(b, len(entries), 0x80, 0xde, 0xdf)
	var err error
	for _, e := range entries {
		if b, err = appendJSONString(b, e.k); err != nil {
			return nil, err
		}
		if b, err = p.elem.append(b, e.v, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendJSONAny writes the value of an interface field as the slow path
// does (encoding/json's view of it, not appendMsgpack's: a []byte is a
// base64 string, a float64 follows appendJSONFloat).
func appendJSONAny(b []byte, x any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errStructTooDeep
	}
	switch y := x.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if y {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case string:
		return appendJSONString(b, y)
	case int:
		return appendInt(b, int64(y)), nil
	case int64:
		return appendInt(b, y), nil
	case float64:
		return appendJSONFloat(b, y, 64)
	case map[string]any:
		return appendJSONMap(b, y, depth)
	case []any:
		if y == nil {
			return append(b, 0xc0), nil
		}
		b = appendLen(b, len(y), 0x90, 0xdc, 0xdd)
		var err error
		for _, e := range y {
			if b, err = appendJSONAny(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	v := reflect.ValueOf(x)
	return planFor(v.Type()).append(b, v, depth)
}

// appendJSONMap writes a map[string]any met inside a struct (depth is the
// map's own).
func appendJSONMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, 0xc0), nil
	}
	b = appendLen(b, len(m), 0x80, 0xde, 0xdf)
	var err error
	write := func(k string, v any) {
		if b, err = appendJSONString(b, k); err == nil {
			b, err = appendJSONAny(b, v, depth+1)
		}
	}
	if len(m) == 1 {
		for k, v := range m {
			write(k, v)
		}
	} else {
		for _, k := range jsKeyOrder(m) {
			if write(k, m[k]); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// appendJSONString writes s; encoding/json replaces invalid UTF-8 with
// U+FFFD, which the slow path does, not this one.
func appendJSONString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: node: string is not valid UTF-8", errNotPlain)
	}
	return appendStr(b, s), nil
}

func appendUint(b []byte, u uint64) []byte {
	if u <= math.MaxInt64 {
		return appendInt(b, int64(u))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
}

// appendJSONFloat writes f (of bits 32 or 64) as the slow path does:
// encoding/json writes it (without exponent for 1e-6 <= |f| < 1e21, so
// that integral values are integers), op decodes the number (int64, else
// uint64, else float64) and appendMsgpack writes that.
func appendJSONFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: node: float %v has no JSON form", errNotPlain, f)
	}
	abs := math.Abs(f)
	if bits == 64 {
		switch {
		case abs == 0: // "0" or "-0": the integer 0
			return append(b, 0), nil
		case f != math.Trunc(f) || abs >= 1e21:
			// the text reads back as f; appendFloat keeps it a float
			// (non-integral, or beyond 2^63)
			return appendFloat(b, f), nil
		case abs < 1<<53: // written exactly as an integer
			return appendInt(b, int64(f)), nil
		}
	}
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
		bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	var buf [40]byte
	return appendNumberText(b, strconv.AppendFloat(buf[:0], f, format, -1, bits))
}

// appendNumberText writes a JSON number as op's parseNumber reads it and
// appendMsgpack writes the result; integers beyond 64 bits (a *big.Int
// appendMsgpack refuses) are left to the slow path.
func appendNumberText(b []byte, s []byte) ([]byte, error) {
	if i, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		return appendInt(b, i), nil
	}
	if u, err := strconv.ParseUint(string(s), 10, 64); err == nil {
		return appendUint(b, u), nil
	}
	isInt := len(s) > 0
	for i, c := range s {
		if !(c >= '0' && c <= '9' || (i == 0 && c == '-')) {
			isInt = false
			break
		}
	}
	if isInt {
		return nil, fmt.Errorf("%w: node: integer %s does not fit in 64 bits", errNotPlain, s)
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return nil, fmt.Errorf("%w: node: number %s", errNotPlain, s)
	}
	return appendFloat(b, f), nil
}
