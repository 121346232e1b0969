package queue

import "testing"

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"socket.io#/#*", "socket.io#/#", true},
		{"socket.io#/#*", "socket.io#/#room1#", true},
		{"socket.io#/#*", "socket.io#/admin#", false},
		{"*", "", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"h[ae]llo", "hello", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"a**b", "ab", true},
		{"abc", "abcd", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, c := range cases {
		if got := MatchPattern(c.p, c.s); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	for _, lit := range []string{"plain", "a*b", "x?y", "[r]", `back\slash`, "socket.io#/#"} {
		p := EscapeGlob(lit) + "*"
		if !MatchPattern(p, lit+"tail") {
			t.Errorf("escaped %q does not match itself as a prefix", lit)
		}
		if lit != "plain" && lit != "socket.io#/#" && MatchPattern(EscapeGlob(lit), "zzz") {
			t.Errorf("escaped %q matches an unrelated string", lit)
		}
	}
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("socket.io#/#*", "socket.io#/#room#")
	f.Add("h[^a-c]?*\\", "hdxyz")
	f.Fuzz(func(t *testing.T, p, s string) {
		MatchPattern(p, s) // must not panic or loop forever
		if !MatchPattern(EscapeGlob(s), s) {
			t.Fatalf("escaped %q does not match itself", s)
		}
	})
}
