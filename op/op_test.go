package op

import "testing"

func TestHasBinary(t *testing.T) {
	deep := any([]byte{1})
	for range 1200 {
		deep = []any{deep}
	}
	for _, c := range []struct {
		v    any
		want bool
	}{
		{nil, false}, {"x", false}, {[]byte{}, true}, {[]any{1, map[string]any{"a": []byte{1}}}, true},
		{map[string]any{"a": []any{"b"}}, false}, {deep, true},
	} {
		if got := HasBinary(c.v); got != c.want {
			t.Errorf("HasBinary(%T) = %v", c.v, got)
		}
	}
	type box struct{ v any }
	more := func(x any) ([]any, bool) {
		b, ok := x.(box)
		return []any{b.v}, ok
	}
	if !HasBinaryIn([]any{box{[]byte{1}}}, more) || HasBinaryIn(box{"x"}, more) || HasBinary(box{[]byte{1}}) {
		t.Error("HasBinaryIn")
	}
}
