package jsonstr

import (
	"encoding/json"
	"testing"
)

func check(t *testing.T, s string) {
	want, _ := json.Marshal(s)
	if got := Append([]byte("x"), s); string(got) != "x"+string(want) {
		t.Errorf("Append(%q) = %s, want %s", s, got[1:], want)
	}
}

func TestAppendAsMarshal(t *testing.T) {
	for _, s := range []string{"", "abc-_09XYZ", `a"b`, `a\b`, "a\nb", "<&>", "café", "\xff", "\u2028", "\x7f"} {
		check(t, s)
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("websocket")
	f.Fuzz(check)
}
