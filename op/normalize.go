package op

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
)

// Normalize turns an arbitrary Go value into the plain data tree that
// dialects encode: nil, bool, int64, uint64, *big.Int, float64, string,
// []byte, []any and map[string]any.
//
// []byte (and byte arrays) stay binary. Maps need string (or integer, or
// encoding.TextMarshaler) keys. Structs, and values implementing
// json.Marshaler, are converted the way encoding/json would write them, so
// struct tags apply; a []byte field inside a struct therefore becomes a
// base64 string, as with encoding/json. Channels, functions and complex
// numbers are refused with an error.
func Normalize(v any) (any, error) {
	if canonical(v, 0) {
		return v, nil
	}
	return normalize(v, 0)
}

// NormalizeArgs normalizes every argument of an argument list. Arguments
// that are already plain data are kept as they are (not copied): the
// result may share the slice and values of args.
func NormalizeArgs(args []any) ([]any, error) {
	all := true
	for _, a := range args {
		if !canonical(a, 0) {
			all = false
			break
		}
	}
	if all {
		return args, nil
	}
	out := make([]any, len(args))
	for i, a := range args {
		n, err := normalize(a, 0)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		out[i] = n
	}
	return out, nil
}

const maxDepth = 1000

// canonical reports whether v is already a plain data tree (no copy needed).
func canonical(v any, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch x := v.(type) {
	case nil, bool, int, int64, uint64, float64, string, []byte:
		return true
	case *big.Int:
		return x != nil && !x.IsInt64()
	case []any:
		for _, e := range x {
			if !canonical(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !canonical(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("op: value nested deeper than %d levels", maxDepth)
	}
	// Fast paths for the canonical types.
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool, int64, uint64, string, []byte:
		return x, nil
	case float64:
		return x, nil
	case int:
		return int64(x), nil
	case *big.Int:
		if x == nil {
			return nil, nil
		}
		if x.IsInt64() {
			return x.Int64(), nil
		}
		return x, nil
	case json.RawMessage:
		return decodeJSONValue(x)
	case json.Number:
		return parseNumber(string(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	}
	return normalizeReflect(reflect.ValueOf(v), depth)
}

func normalizeReflect(rv reflect.Value, depth int) (any, error) {
	t := rv.Type()
	if t.Implements(jsonMarshalerType) && !(rv.Kind() == reflect.Pointer && rv.IsNil()) {
		b, err := rv.Interface().(json.Marshaler).MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("op: %s: %w", t, err)
		}
		return decodeJSONValue(b)
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return normalize(rv.Elem().Interface(), depth+1)
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u <= math.MaxInt64 {
			return int64(u), nil
		}
		return u, nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice:
		if rv.IsNil() {
			return nil, nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return bytes.Clone(rv.Bytes()), nil
		}
		fallthrough
	case reflect.Array:
		if rv.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return b, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			n, err := normalize(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case reflect.Map:
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			k, err := mapKey(iter.Key())
			if err != nil {
				return nil, err
			}
			n, err := normalize(iter.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case reflect.Struct:
		b, err := json.Marshal(rv.Interface())
		if err != nil {
			return nil, fmt.Errorf("op: %s: %w", t, err)
		}
		return decodeJSONValue(b)
	}
	return nil, fmt.Errorf("op: cannot send a value of type %s", t)
}

func mapKey(k reflect.Value) (string, error) {
	if k.Type().Implements(textMarshalerType) {
		b, err := k.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	switch k.Kind() {
	case reflect.String:
		return k.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("op: map key of type %s is not supported", k.Type())
}

// decodeJSONValue parses one JSON text into the plain data tree, keeping
// integers exact (int64, uint64 or *big.Int).
func decodeJSONValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("op: invalid JSON: %w", err)
	}
	return FromJSON(v)
}

// FromJSON converts a value decoded by encoding/json with UseNumber into the
// plain data tree (json.Number becomes int64, uint64, *big.Int or float64).
func FromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return parseNumber(string(x))
	case []any:
		for i, e := range x {
			n, err := FromJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			n, err := FromJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	}
	return v, nil
}

func parseNumber(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	isInt := s != ""
	for i, c := range s {
		if !(c >= '0' && c <= '9' || (i == 0 && c == '-')) {
			isInt = false
			break
		}
	}
	if isInt {
		if len(s) > 4300 {
			return nil, fmt.Errorf("op: integer of %d digits is too long", len(s))
		}
		b, ok := new(big.Int).SetString(s, 10)
		if ok {
			return b, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("op: invalid number %q", s)
	}
	return f, nil
}
