package op

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"testing"
)

type point struct {
	X int    `json:"x"`
	Y string `json:"y,omitempty"`
}

type textKey int

func (k textKey) MarshalText() ([]byte, error) { return []byte("k" + string(rune('0'+int(k)))), nil }

func TestNormalize(t *testing.T) {
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	cases := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"int (kept: encoders take int)", 42, 42},
		{"int8", int8(-3), int64(-3)},
		{"uint big", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"uint small", uint32(7), int64(7)},
		{"float32", float32(1.5), 1.5},
		{"string", "héllo", "héllo"},
		{"bytes", []byte{0, 255}, []byte{0, 255}},
		{"byte array", [3]byte{1, 2, 3}, []byte{1, 2, 3}},
		{"big int small", big.NewInt(5), int64(5)},
		{"big int", big1, big1},
		{"slice", []int{1, 2}, []any{int64(1), int64(2)}},
		{"nested", map[string]any{"a": []any{1, "b", map[string]int{"c": 3}}},
			map[string]any{"a": []any{int64(1), "b", map[string]any{"c": int64(3)}}}},
		{"struct", point{X: 1}, map[string]any{"x": int64(1)}},
		{"struct pointer", &point{X: 2, Y: "z"}, map[string]any{"x": int64(2), "y": "z"}},
		{"nil pointer", (*point)(nil), nil},
		{"int map keys", map[int]bool{1: true}, map[string]any{"1": true}},
		{"text map keys", map[textKey]int{1: 1}, map[string]any{"k1": int64(1)}},
		{"raw json", json.RawMessage(`{"n":[1,2.5,"x",null,true,99999999999999999999]}`),
			map[string]any{"n": []any{int64(1), 2.5, "x", nil, true, mustBig("99999999999999999999")}}},
		{"json number", json.Number("12"), int64(12)},
		{"bytes in slice", []any{[]byte("a")}, []any{[]byte("a")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Normalize(c.in)
			if err != nil {
				t.Fatalf("Normalize(%#v): %v", c.in, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Normalize(%#v) = %#v, want %#v", c.in, got, c.want)
			}
		})
	}
}

func mustBig(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return b
}

func TestNormalizeRefuses(t *testing.T) {
	for name, v := range map[string]any{
		"chan":      make(chan int),
		"func":      func() {},
		"complex":   complex(1, 2),
		"bad key":   map[[2]int]int{{1, 2}: 3},
		"nested fn": []any{1, map[string]any{"f": func() {}}},
	} {
		if _, err := Normalize(v); err == nil {
			t.Errorf("%s: Normalize accepted %T", name, v)
		}
	}
}

func TestNormalizeDepthLimit(t *testing.T) {
	var v any = "leaf"
	for i := 0; i < maxDepth+10; i++ {
		v = []any{v}
	}
	if _, err := Normalize(v); err == nil {
		t.Fatal("Normalize accepted a value nested deeper than the limit")
	}
}

func TestNormalizeArgsNamesTheArgument(t *testing.T) {
	_, err := NormalizeArgs([]any{1, make(chan int)})
	if err == nil || err.Error()[:10] != "argument 2" {
		t.Fatalf("error = %v, want it to name argument 2", err)
	}
}

func TestValidateEvent(t *testing.T) {
	for _, ok := range []string{"news", "message", "x y"} {
		if err := ValidateEvent(ok); err != nil {
			t.Errorf("ValidateEvent(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"} {
		if err := ValidateEvent(bad); err == nil {
			t.Errorf("ValidateEvent(%q) accepted a reserved name", bad)
		}
	}
	for name := range ReservedEvents { // the switch of ValidateEvent follows the map
		if err := ValidateEvent(name); err == nil {
			t.Errorf("ValidateEvent(%q) accepted a reserved name", name)
		}
	}
}

func TestNamespaceOrRoot(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "chat": "/chat", "/chat": "/chat"} {
		if got := NamespaceOrRoot(in); got != want {
			t.Errorf("NamespaceOrRoot(%q) = %q, want %q", in, got, want)
		}
	}
}
