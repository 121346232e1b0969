package jsonstr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// unquote decodes the JSON string literal q with AppendEscape for its
// escapes (q is known to hold no control characters or quotes inside).
func unquote(q string) (string, error) {
	in := []byte(q)
	var out []byte
	for pos := 1; pos < len(in)-1; {
		if in[pos] != '\\' {
			out = append(out, in[pos])
			pos++
			continue
		}
		var err error
		if out, pos, err = AppendEscape(out, in, pos+1); err != nil {
			return "", err
		}
	}
	return string(out), nil
}

// TestAppendEscapeAsUnmarshal: every escape, surrogate pairs, lone and
// reversed surrogates decode as encoding/json decodes them; bad escapes
// are refused.
func TestAppendEscapeAsUnmarshal(t *testing.T) {
	for _, q := range []string{
		`"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u20ac"`, `"\ud83d\ude00"`, `"\uD83D\uDE00x"`,
		`"\ud83d"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`, `"\ud83dx"`, `"a\ud83d\ud83d\ude00"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(q), &want); err != nil {
			t.Fatal(err)
		}
		got, err := unquote(q)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", q, got, err, want)
		}
	}
	for _, q := range []string{`"\x"`, `"\u12"`, `"\u12g4"`, `"\ud83d\u12"`} {
		if _, err := unquote(q + `"`); !errors.Is(err, ErrEscape) {
			t.Errorf("%s: %v, want ErrEscape", q, err)
		}
	}
}

func FuzzAppendEscape(f *testing.F) {
	f.Add(`\ud83d\ude00`)
	f.Add(`\u00e9\n`)
	f.Fuzz(func(t *testing.T, s string) {
		q := `"` + s + `"`
		var want string
		wantErr := json.Unmarshal([]byte(q), &want) != nil
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c >= 0x80 {
				return // AppendEscape's callers handle these
			}
		}
		if strings.HasSuffix(s, `\`) {
			return // would escape the closing quote: unterminated, the callers' case
		}
		got, err := unquote(q)
		if (err != nil) != wantErr || err == nil && got != want {
			t.Fatalf("%s: %q %v, encoding/json %q (error %v)", q, got, err, want, wantErr)
		}
	})
}
