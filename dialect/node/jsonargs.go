package node

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/siobridge/siobridge/dialect"
	"github.com/siobridge/siobridge/internal/jsonstr"
)

// Arguments given as JSON text (dialect.EmitAppender) are transcoded to
// msgpack in two passes over the text, each linear in its size: the first
// validates it and counts the elements of every array and object (msgpack
// writes a count before the contents), the second writes. The result is
// the bytes appendMsgpack writes for the values encoding/json would decode
// (integers exact, integral floats as integers, invalid UTF-8 as U+FFFD),
// with object members in the order of the text, as JSON.parse and notepack
// keep them. What that rule and Object.keys order could disagree on is
// left to the value path (dialect.ErrNoFastPath): objects with
// array-index-like, escaped or repeated member names, or more than
// maxFastMembers members; integers past 18 digits; nesting past 1000.

// maxFastMembers bounds the members of an object on the fast path (the
// repeated-name check compares each name with the ones before it).
const maxFastMembers = 16

// jsonArgs is the state of both passes.
type jsonArgs struct {
	in  []byte
	pos int
	// element counts of the containers, in the order they open: the
	// first ones in fixed (on the stack), the others in more
	fixed [32]int
	more  []int
	n     int // containers opened
	next  int // second pass: the next container to write
	esc   []byte
}

// open records a new container and returns its slot.
func (j *jsonArgs) open() int {
	if j.n >= len(j.fixed) {
		j.more = append(j.more, 0)
	}
	j.n++
	return j.n - 1
}

func (j *jsonArgs) setCount(slot, n int) {
	if slot < len(j.fixed) {
		j.fixed[slot] = n
	} else {
		j.more[slot-len(j.fixed)] = n
	}
}

// count returns the element count of the next container.
func (j *jsonArgs) count() int {
	slot := j.next
	j.next++
	if slot < len(j.fixed) {
		return j.fixed[slot]
	}
	return j.more[slot-len(j.fixed)]
}

func (j *jsonArgs) fail(format string, a ...any) error {
	return fmt.Errorf("node: invalid JSON arguments at byte %d: %s", j.pos+1, fmt.Sprintf(format, a...))
}

// appendJSONArgs writes the packet data [event, args...] with the
// arguments from the JSON text of an array (or null).
func appendJSONArgs(b []byte, event string, args []byte) ([]byte, error) {
	j := jsonArgs{in: args}
	j.ws()
	if j.literal("null") {
		j.ws()
		if j.pos != len(args) {
			return b, j.fail("data after the arguments")
		}
		return appendStr(append(b, 0x91), event), nil
	}
	if j.pos >= len(args) || args[j.pos] != '[' {
		return b, j.fail("the arguments must be a JSON array")
	}
	if err := j.scan(0); err != nil {
		return b, err
	}
	j.ws()
	if j.pos != len(args) {
		return b, j.fail("data after the arguments")
	}
	j.pos = 0
	j.ws()
	j.pos++ // [
	n := j.count()
	b = appendLen(b, 1+n, 0x90, 0xdc, 0xdd)
	b = appendStr(b, event)
	return j.writeElements(b, n), nil
}

func (j *jsonArgs) ws() {
	for j.pos < len(j.in) {
		switch j.in[j.pos] {
		case ' ', '\t', '\r', '\n':
			j.pos++
		default:
			return
		}
	}
}

func (j *jsonArgs) literal(word string) bool {
	if len(j.in)-j.pos >= len(word) && string(j.in[j.pos:j.pos+len(word)]) == word {
		j.pos += len(word)
		return true
	}
	return false
}

// scan validates the value at j.pos and records container counts.
func (j *jsonArgs) scan(depth int) error {
	if j.pos >= len(j.in) {
		return j.fail("unexpected end of the arguments")
	}
	switch c := j.in[j.pos]; {
	case c == '"':
		_, err := j.scanString()
		return err
	case c == '[' || c == '{':
		if depth >= 1000 {
			return dialect.ErrNoFastPath
		}
		slot := j.open()
		j.pos++
		n, err := j.scanContainer(c == '{', depth)
		j.setCount(slot, n)
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, _, _, err := j.number()
		return err
	case j.literal("true"), j.literal("false"), j.literal("null"):
		return nil
	default:
		return j.fail("invalid character %q looking for a value", c)
	}
}

// scanContainer validates the elements of an array, or the members of an
// object, after the opening bracket, and returns how many there are.
func (j *jsonArgs) scanContainer(object bool, depth int) (int, error) {
	closing := byte(']')
	if object {
		closing = '}'
	}
	var names [maxFastMembers][2]int // the member names so far
	n := 0
	j.ws()
	if j.pos < len(j.in) && j.in[j.pos] == closing {
		j.pos++
		return 0, nil
	}
	for {
		if object {
			if j.pos >= len(j.in) || j.in[j.pos] != '"' {
				return n, j.fail("object keys must be strings")
			}
			start := j.pos + 1
			plain, err := j.scanString()
			if err != nil {
				return n, err
			}
			name := j.in[start : j.pos-1]
			if !plain || n == maxFastMembers || len(name) > 0 && name[0] >= '0' && name[0] <= '9' && isArrayIndex(string(name)) {
				return n, dialect.ErrNoFastPath
			}
			for _, s := range names[:n] {
				if string(j.in[s[0]:s[1]]) == string(name) {
					return n, dialect.ErrNoFastPath
				}
			}
			names[n] = [2]int{start, j.pos - 1}
			j.ws()
			if j.pos >= len(j.in) || j.in[j.pos] != ':' {
				return n, j.fail("want :")
			}
			j.pos++
			j.ws()
		}
		if err := j.scan(depth + 1); err != nil {
			return n, err
		}
		n++
		j.ws()
		if j.pos < len(j.in) && j.in[j.pos] == closing {
			j.pos++
			return n, nil
		}
		if j.pos >= len(j.in) || j.in[j.pos] != ',' {
			return n, j.fail("want , or %c", closing)
		}
		j.pos++
		j.ws()
	}
}

// scanString validates the string at j.pos; plain is true when it has no
// escape and only ASCII, so that its bytes are its contents.
func (j *jsonArgs) scanString() (plain bool, err error) {
	j.pos++
	for i := j.pos; i < len(j.in); i++ {
		c := j.in[i]
		switch {
		case c == '"':
			j.pos = i + 1
			return true, nil
		case c < 0x20:
			j.pos = i
			return false, j.fail("control character in a string")
		case c == '\\' || c >= utf8.RuneSelf:
			var err error
			j.esc, j.pos, err = jsonstr.AppendString(j.esc[:0], j.in, i)
			if err != nil {
				return false, j.fail("%v", err)
			}
			return false, nil
		}
	}
	j.pos = len(j.in)
	return false, j.fail("unterminated string")
}

// number reads the number at j.pos: an integer of at most 18 digits, or a
// float (integral floats are written as integers, as notepack does).
// Longer integers take the value path.
func (j *jsonArgs) number() (i int64, f float64, isFloat bool, err error) {
	start := j.pos
	if j.in[j.pos] == '-' {
		j.pos++
	}
	digits := j.pos
	if j.pos < len(j.in) && j.in[j.pos] == '0' {
		j.pos++
	} else {
		j.digits()
	}
	if j.pos == digits {
		return 0, 0, false, j.fail("invalid number")
	}
	integer := true
	if j.pos < len(j.in) && j.in[j.pos] == '.' {
		integer = false
		j.pos++
		if !j.digits() {
			return 0, 0, false, j.fail("invalid number")
		}
	}
	if j.pos < len(j.in) && (j.in[j.pos] == 'e' || j.in[j.pos] == 'E') {
		integer = false
		j.pos++
		if j.pos < len(j.in) && (j.in[j.pos] == '+' || j.in[j.pos] == '-') {
			j.pos++
		}
		if !j.digits() {
			return 0, 0, false, j.fail("invalid number")
		}
	}
	if integer {
		if j.pos-digits > 18 {
			return 0, 0, false, dialect.ErrNoFastPath
		}
		for _, c := range j.in[digits:j.pos] {
			i = i*10 + int64(c-'0')
		}
		if digits > start {
			i = -i
		}
		return i, 0, false, nil
	}
	f, err = strconv.ParseFloat(string(j.in[start:j.pos]), 64)
	if err != nil {
		return 0, 0, false, dialect.ErrNoFastPath // out of range: the value path says why
	}
	return 0, f, true, nil
}

func (j *jsonArgs) digits() bool {
	start := j.pos
	for j.pos < len(j.in) && j.in[j.pos] >= '0' && j.in[j.pos] <= '9' {
		j.pos++
	}
	return j.pos > start
}

// write writes the value at j.pos (validated by scan).
func (j *jsonArgs) write(b []byte) []byte {
	switch c := j.in[j.pos]; c {
	case '"':
		return j.writeString(b)
	case '[':
		n := j.count()
		j.pos++
		return j.writeElements(appendLen(b, n, 0x90, 0xdc, 0xdd), n)
	case '{':
		n := j.count()
		j.pos++
		b = appendLen(b, n, 0x80, 0xde, 0xdf)
		for k := 0; k < n; k++ {
			j.ws()
			b = j.writeString(b)
			j.ws()
			j.pos++ // :
			j.ws()
			b = j.write(b)
			j.ws()
			j.pos++ // , or }
		}
		if n == 0 {
			j.ws()
			j.pos++ // }
		}
		return b
	case 't':
		j.pos += 4
		return append(b, 0xc3)
	case 'f':
		j.pos += 5
		return append(b, 0xc2)
	case 'n':
		j.pos += 4
		return append(b, 0xc0)
	}
	i, f, isFloat, _ := j.number()
	if isFloat {
		return appendFloat(b, f)
	}
	return appendInt(b, i)
}

// writeElements writes n elements and the closing bracket after them.
func (j *jsonArgs) writeElements(b []byte, n int) []byte {
	for k := 0; k < n; k++ {
		j.ws()
		b = j.write(b)
		j.ws()
		j.pos++ // , or ]
	}
	if n == 0 {
		j.ws()
		j.pos++ // ]
	}
	return b
}

func (j *jsonArgs) writeString(b []byte) []byte {
	j.pos++
	for i := j.pos; i < len(j.in); i++ {
		switch c := j.in[i]; {
		case c == '"':
			b = append(appendStrHeader(b, i-j.pos), j.in[j.pos:i]...)
			j.pos = i + 1
			return b
		case c == '\\' || c >= utf8.RuneSelf:
			j.esc, j.pos, _ = jsonstr.AppendString(append(j.esc[:0], j.in[j.pos:i]...), j.in, i)
			return append(appendStrHeader(b, len(j.esc)), j.esc...)
		}
	}
	return b // not reached: scan validated the string
}
