package jsonstr

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrEscape is wrapped by the errors of AppendEscape.
var ErrEscape = errors.New("invalid JSON escape")

// AppendEscape decodes the escape sequence of a JSON string that starts at
// in[pos], just after its backslash, appends the character to dst and
// returns dst and the position after the sequence. A UTF-16 surrogate pair
// written as two \u escapes becomes one character; a lone surrogate
// becomes U+FFFD, as encoding/json decodes it (the escape after it, if
// any, is left for the next call).
func AppendEscape(dst, in []byte, pos int) ([]byte, int, error) {
	if pos >= len(in) {
		return dst, pos, fmt.Errorf("%w: unterminated escape", ErrEscape)
	}
	e := in[pos]
	pos++
	switch e {
	case '"', '\\', '/':
		return append(dst, e), pos, nil
	case 'b':
		return append(dst, '\b'), pos, nil
	case 'f':
		return append(dst, '\f'), pos, nil
	case 'n':
		return append(dst, '\n'), pos, nil
	case 'r':
		return append(dst, '\r'), pos, nil
	case 't':
		return append(dst, '\t'), pos, nil
	case 'u':
		r, ok := hex4(in, pos)
		if !ok {
			return dst, pos, fmt.Errorf("%w: invalid \\u escape", ErrEscape)
		}
		pos += 4
		if utf16.IsSurrogate(r) {
			if len(in)-pos >= 6 && in[pos] == '\\' && in[pos+1] == 'u' {
				if r2, ok := hex4(in, pos+2); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						return utf8.AppendRune(dst, dec), pos + 6, nil
					}
				}
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(dst, r), pos, nil
	}
	return dst, pos, fmt.Errorf("%w: invalid escape \\%c", ErrEscape, e)
}

// hex4 reads the four hexadecimal digits at in[pos:].
func hex4(in []byte, pos int) (rune, bool) {
	if len(in)-pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range in[pos : pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
