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

// ErrString is wrapped by the errors of AppendString other than escapes.
var ErrString = errors.New("invalid JSON string")

// AppendString decodes the JSON string whose contents start at in[pos],
// just after its opening quote: it appends the characters to dst and
// returns dst and the position after the closing quote. Invalid UTF-8
// becomes U+FFFD, as encoding/json decodes it. On error the position is
// where decoding stopped.
func AppendString(dst, in []byte, pos int) ([]byte, int, error) {
	for pos < len(in) {
		c := in[pos]
		switch {
		case c == '"':
			return dst, pos + 1, nil
		case c < 0x20:
			return dst, pos, fmt.Errorf("%w: control character in a string", ErrString)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(in[pos:])
			pos += size
			dst = utf8.AppendRune(dst, r) // RuneError for invalid bytes
		case c != '\\':
			dst = append(dst, c)
			pos++
		default:
			var err error
			if dst, pos, err = AppendEscape(dst, in, pos+1); err != nil {
				return dst, pos, err
			}
		}
	}
	return dst, pos, fmt.Errorf("%w: unterminated string", ErrString)
}
