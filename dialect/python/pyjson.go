package python

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/siobridge/siobridge/internal/jsonstr"
)

// odict is a JSON object with a fixed key order (python dicts keep
// insertion order, and the message keys are written in python's order).
type odict []kv

type kv struct {
	k string
	v any
}

// appendPyJSON writes v the way python's json.dumps does with its default
// arguments: ", " and ": " separators, ensure_ascii escapes, float repr,
// NaN/Infinity. Go maps are written with sorted keys.
func appendPyJSON(b []byte, v any, depth int) ([]byte, error) {
	if depth > 1000 {
		return nil, errors.New("python: value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case *big.Int:
		return x.Append(b, 10), nil
	case float64:
		return appendPyFloat(b, x), nil
	case string:
		return appendPyString(b, x), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			var err error
			if b, err = appendPyJSON(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, e)
		}
		return append(b, ']'), nil
	case map[string]any:
		b = append(b, '{')
		var err error
		if len(x) == 1 { // the common case needs no ordering
			for k, v := range x {
				b = appendPyString(b, k)
				b = append(b, ": "...)
				if b, err = appendPyJSON(b, v, depth+1); err != nil {
					return nil, err
				}
			}
			return append(b, '}'), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, k)
			b = append(b, ": "...)
			if b, err = appendPyJSON(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case odict:
		b = append(b, '{')
		for i, e := range x {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, e.k)
			b = append(b, ": "...)
			var err error
			if b, err = appendPyJSON(b, e.v, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []byte:
		return nil, errors.New("python: binary value outside the placeholder pass")
	}
	return nil, fmt.Errorf("python: cannot encode a value of type %T", v)
}

// appendPyFloat writes repr(float).
func appendPyFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	// shortest round-trip digits and decimal exponent
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expS, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expS)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	if neg {
		b = append(b, '-')
	}
	if exp < -4 || exp >= 16 {
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	if exp < 0 {
		b = append(b, "0."...)
		b = append(b, strings.Repeat("0", -exp-1)...)
		return append(b, digits...)
	}
	if len(digits) <= exp+1 {
		b = append(b, digits...)
		b = append(b, strings.Repeat("0", exp+1-len(digits))...)
		return append(b, ".0"...)
	}
	b = append(b, digits[:exp+1]...)
	b = append(b, '.')
	return append(b, digits[exp+1:]...)
}

const hexDigits = "0123456789abcdef"

// appendPyString writes a JSON string with ensure_ascii=True escapes.
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			if r == 0x7f {
				b = append(b, byte(r))
				continue
			}
			b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			for _, c := range []rune{r1, r2} {
				b = append(b, '\\', 'u', hexDigits[c>>12&0xf], hexDigits[c>>8&0xf], hexDigits[c>>4&0xf], hexDigits[c&0xf])
			}
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

// ------------------------------------------------------------------ parser

// parsePyJSON parses one JSON text as python's json.loads does: NaN,
// Infinity and -Infinity are accepted, integers keep their exact value
// (int64, uint64 or *big.Int), integers longer than 100 digits are refused
// (engineio.json's limit), objects become map[string]any.
func parsePyJSON(b []byte) (any, error) {
	p := jparser{in: b}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.in) {
		return nil, p.errf("trailing data")
	}
	return v, nil
}

type jparser struct {
	in  []byte
	pos int
}

func (p *jparser) errf(format string, a ...any) error {
	return fmt.Errorf("json at byte %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *jparser) ws() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) lit(s string) bool {
	if strings.HasPrefix(string(p.in[p.pos:min(len(p.in), p.pos+len(s))]), s) {
		p.pos += len(s)
		return true
	}
	return false
}

func (p *jparser) value(depth int) (any, error) {
	if depth > 1000 {
		return nil, p.errf("nested too deeply")
	}
	if p.pos >= len(p.in) {
		return nil, p.errf("unexpected end of input")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		p.pos++
		m := map[string]any{}
		p.ws()
		if p.pos < len(p.in) && p.in[p.pos] == '}' {
			p.pos++
			return m, nil
		}
		for {
			p.ws()
			if p.pos >= len(p.in) || p.in[p.pos] != '"' {
				return nil, p.errf("object key must be a string")
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.pos >= len(p.in) || p.in[p.pos] != ':' {
				return nil, p.errf("missing ':'")
			}
			p.pos++
			p.ws()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			p.ws()
			if p.pos >= len(p.in) {
				return nil, p.errf("unterminated object")
			}
			if p.in[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.in[p.pos] == '}' {
				p.pos++
				return m, nil
			}
			return nil, p.errf("expected ',' or '}'")
		}
	case c == '[':
		p.pos++
		l := []any{}
		p.ws()
		if p.pos < len(p.in) && p.in[p.pos] == ']' {
			p.pos++
			return l, nil
		}
		for {
			p.ws()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			p.ws()
			if p.pos >= len(p.in) {
				return nil, p.errf("unterminated array")
			}
			if p.in[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.in[p.pos] == ']' {
				p.pos++
				return l, nil
			}
			return nil, p.errf("expected ',' or ']'")
		}
	case c == '"':
		return p.str()
	case p.lit("true"):
		return true, nil
	case p.lit("false"):
		return false, nil
	case p.lit("null"):
		return nil, nil
	case p.lit("NaN"):
		return math.NaN(), nil
	case p.lit("Infinity"):
		return math.Inf(1), nil
	case p.lit("-Infinity"):
		return math.Inf(-1), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, p.errf("unexpected character %q", p.in[p.pos])
}

func (p *jparser) number() (any, error) {
	start := p.pos
	if p.in[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits {
		return nil, p.errf("invalid number")
	}
	if p.in[digits] == '0' && p.pos-digits > 1 {
		return nil, p.errf("leading zero")
	}
	isFloat := false
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		isFloat = true
		p.pos++
		f := p.pos
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == f {
			return nil, p.errf("invalid fraction")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		isFloat = true
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		e := p.pos
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == e {
			return nil, p.errf("invalid exponent")
		}
	}
	s := string(p.in[start:p.pos])
	if isFloat {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, p.errf("invalid number %q", s)
		}
		return f, nil
	}
	if p.pos-digits > 100 {
		return nil, p.errf("integer of %d digits exceeds the 100-digit limit", p.pos-digits)
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	x, _ := new(big.Int).SetString(s, 10)
	return x, nil
}

func (p *jparser) str() (string, error) {
	p.pos++ // opening quote
	var sb []byte
	start := p.pos
	for {
		if p.pos >= len(p.in) {
			return "", p.errf("unterminated string")
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			s := append(sb, p.in[start:p.pos]...)
			p.pos++
			if !utf8.Valid(s) {
				return "", p.errf("invalid UTF-8 in string")
			}
			return string(s), nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c == '\\':
			sb = append(sb, p.in[start:p.pos]...)
			p.pos++
			var err error
			if sb, p.pos, err = jsonstr.AppendEscape(sb, p.in, p.pos); err != nil {
				return "", p.errf("%v", err)
			}
			start = p.pos
		default:
			p.pos++
		}
	}
}

func sortStrings(s []string) { sort.Strings(s) }
