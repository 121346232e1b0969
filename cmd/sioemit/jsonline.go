package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/siobridge/siobridge/internal/jsonstr"
	"github.com/siobridge/siobridge/op"
)

// batchLine is one line of a --batch file:
//
//	{"event":..,"args":[..],"to":[..],"except":[..],"namespace":..}
//
// A missing or null "to" or "except" takes the command line's --to and
// --except; an empty list means none.
type batchLine struct {
	event            string
	args             []any
	argsJSON         []byte // the args' text, in raw mode (lineParser.raw), instead of args
	to, except       []string
	hasTo, hasExcept bool
	namespace        string
}

// Limits of one --batch line. Decoding a line allocates at most
// maxLineCost times its size (the worst case is a list of maps of one
// member: a Go map takes some 400 bytes for the 7 of `{"":0},`);
// maxLineBytes bounds that size.
const (
	maxLineBytes  = 1 << 20 // longer lines are refused (Socket.IO clients take 1 MB by default)
	maxLineCost   = 80
	maxLineDepth  = 1000 // nesting of arrays and objects, as op and the dialects allow
	maxInternLen  = 64   // strings up to this length are shared between lines...
	maxInternSize = 4096 // ...up to this many distinct ones
)

// lineParser decodes --batch lines in one pass over their bytes, into the
// plain data trees of package op (integers exact: int64, uint64, *big.Int;
// {"$binary":"<base64>"} as []byte), without encoding/json's reflection or
// a decoder per line. It reuses its buffers between lines: the args (and
// the maps in them) and rooms of a batchLine stay valid until the next
// parse only. It is not safe for concurrent use.
type lineParser struct {
	b     []byte
	pos   int
	stack []any    // elements of the arrays being parsed; the line's args at its start
	rooms []string // the line's to and except (reused)
	esc   []byte   // unescaped string scratch
	names map[string]string
	// The maps of the last line are cleared and reused by the next (the
	// dialects encode an emit's arguments and keep none of them): making
	// a map costs more than the rest of a small line.
	maps, free []map[string]any
	// raw makes parse keep the args as their JSON text (batchLine.argsJSON)
	// for a dialect that writes them straight from it, unless they hold a
	// {"$binary":...} object (then parse decodes them after all).
	raw       bool
	sawBinary bool
	recent    [16]string // the last strings interned, by a hash of length and middle byte
}

// Bounds of the reused maps.
const (
	maxFreeMaps   = 256 // maps kept for the next lines...
	maxReusedSize = 8   // ...of at most this many members
)

// errSyntax is wrapped by every error of an invalid line.
var errSyntax = errors.New("invalid JSON line")

func (p *lineParser) fail(format string, a ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", errSyntax, p.pos+1, fmt.Sprintf(format, a...))
}

// parse decodes line into l.
func (p *lineParser) parse(line []byte, l *batchLine) error {
	p.b, p.pos = line, 0
	clear(p.stack) // the last line's args
	p.stack = p.stack[:0]
	if cap(p.stack) > 1<<16 {
		p.stack = nil // a long line's list is not kept
	}
	p.rooms = p.rooms[:0]
	for _, m := range p.maps {
		if len(m) <= maxReusedSize && len(p.free) < maxFreeMaps {
			clear(m)
			p.free = append(p.free, m)
		}
	}
	clear(p.maps)
	p.maps = p.maps[:0]
	if cap(p.maps) > 1<<12 {
		p.maps = nil
	}
	*l = batchLine{}
	p.ws()
	if !p.eat('{') {
		return p.fail("a line must be a JSON object")
	}
	var to, except [2]int // bounds of to and except in p.rooms
	err := p.list('}', func() error {
		key, err := p.memberName()
		if err != nil {
			return err
		}
		switch string(key) {
		case "event":
			if l.event, err = p.optString("event"); err != nil {
				return err
			}
		case "namespace":
			if l.namespace, err = p.optString("namespace"); err != nil {
				return err
			}
		case "args":
			if p.raw {
				start := p.pos
				p.sawBinary = false
				if err := p.skip(0); err != nil {
					return err
				}
				if !p.sawBinary {
					l.argsJSON = p.b[start:p.pos]
					if len(l.argsJSON) > 0 && l.argsJSON[0] != '[' && string(l.argsJSON) != "null" {
						p.pos = start
						return p.fail("args must be an array")
					}
					return nil
				}
				p.pos = start // decode them: binary arguments
			}
			if l.args, err = p.argList(); err != nil {
				return err
			}
		case "to":
			if to, l.hasTo, err = p.stringList("to"); err != nil {
				return err
			}
		case "except":
			if except, l.hasExcept, err = p.stringList("except"); err != nil {
				return err
			}
		default:
			return p.fail("unknown field %q (want event, args, to, except, namespace)", key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.ws()
	if p.pos != len(p.b) {
		return p.fail("data after the object")
	}
	if l.hasTo {
		l.to = p.rooms[to[0]:to[1]:to[1]]
	}
	if l.hasExcept {
		l.except = p.rooms[except[0]:except[1]:except[1]]
	}
	return nil
}

// list reads the elements of an array or the members of an object, the
// opening bracket already read, up to close: item reads one.
func (p *lineParser) list(close byte, item func() error) error {
	p.ws()
	if p.eat(close) {
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		p.ws()
		if p.eat(close) {
			return nil
		}
		if !p.eat(',') {
			return p.fail("want , or %c", close)
		}
		p.ws()
	}
}

func (p *lineParser) ws() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return
		}
	}
}

func (p *lineParser) eat(c byte) bool {
	if p.pos < len(p.b) && p.b[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *lineParser) literal(word string) bool {
	if len(p.b)-p.pos >= len(word) && string(p.b[p.pos:p.pos+len(word)]) == word {
		p.pos += len(word)
		return true
	}
	return false
}

// optString reads a string or null ("").
func (p *lineParser) optString(field string) (string, error) {
	if p.literal("null") {
		return "", nil
	}
	if p.pos >= len(p.b) || p.b[p.pos] != '"' {
		return "", p.fail("%s must be a string", field)
	}
	return p.str()
}

// argList reads the args array (or null) onto p.stack, where it stays
// until the next line.
func (p *lineParser) argList() ([]any, error) {
	if p.literal("null") {
		return nil, nil
	}
	if p.pos >= len(p.b) || p.b[p.pos] != '[' {
		return nil, p.fail("args must be an array")
	}
	start := len(p.stack)
	if err := p.elements(0); err != nil {
		return nil, err
	}
	return p.stack[start:len(p.stack):len(p.stack)], nil
}

// stringList reads an array of strings, or null (set false), into p.rooms
// and returns its bounds there.
func (p *lineParser) stringList(field string) (bounds [2]int, set bool, err error) {
	if p.literal("null") {
		return bounds, false, nil
	}
	if !p.eat('[') {
		return bounds, false, p.fail("%s must be an array of strings", field)
	}
	bounds[0] = len(p.rooms)
	err = p.list(']', func() error {
		if p.pos >= len(p.b) || p.b[p.pos] != '"' {
			return p.fail("%s must be an array of strings", field)
		}
		s, err := p.str()
		p.rooms = append(p.rooms, s)
		return err
	})
	bounds[1] = len(p.rooms)
	return bounds, err == nil, err
}

// value reads any JSON value at nesting depth.
func (p *lineParser) value(depth int) (any, error) {
	if p.pos >= len(p.b) {
		return nil, p.fail("unexpected end of line")
	}
	switch c := p.b[p.pos]; {
	case c == '"':
		return p.str()
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		start := len(p.stack)
		if err := p.elements(depth + 1); err != nil {
			return nil, err
		}
		a := make([]any, len(p.stack)-start)
		copy(a, p.stack[start:])
		clear(p.stack[start:])
		p.stack = p.stack[:start]
		return a, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	default:
		return nil, p.fail("invalid character %q looking for a value", c)
	}
}

// elements reads an array's elements onto p.stack.
func (p *lineParser) elements(depth int) error {
	if depth > maxLineDepth {
		return p.fail("nested deeper than %d levels", maxLineDepth)
	}
	p.pos++ // [
	return p.list(']', func() error {
		v, err := p.value(depth)
		p.stack = append(p.stack, v)
		return err
	})
}

// object reads an object; {"$binary":"<base64>"} becomes []byte.
func (p *lineParser) object(depth int) (any, error) {
	if depth > maxLineDepth {
		return nil, p.fail("nested deeper than %d levels", maxLineDepth)
	}
	p.pos++ // {
	var m map[string]any
	if n := len(p.free); n > 0 {
		m = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		m = map[string]any{}
	}
	p.maps = append(p.maps, m)
	err := p.list('}', func() error {
		name, err := p.memberName()
		if err != nil {
			return err
		}
		k := p.intern(name) // before the value's strings reuse p.esc
		v, err := p.value(depth)
		m[k] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	if b64, ok := m["$binary"].(string); ok && len(m) == 1 {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, usagef("invalid $binary base64: %v", err)
		}
		return b, nil
	}
	return m, nil
}

// number reads a JSON number: int64 when it fits (no allocation for the
// common small integers), else what op.FromJSON makes of it (uint64,
// *big.Int or float64).
func (p *lineParser) number() (any, error) {
	start := p.pos
	digits, integer, err := p.scanNumber()
	if err != nil {
		return nil, err
	}
	if integer && p.pos-digits <= 18 {
		var n int64
		for _, c := range p.b[digits:p.pos] {
			n = n*10 + int64(c-'0')
		}
		if digits > start {
			n = -n
		}
		return n, nil
	}
	v, err := op.FromJSON(json.Number(p.b[start:p.pos]))
	if err != nil {
		return nil, p.fail("%v", err)
	}
	return v, nil
}

// scanNumber moves past a JSON number and returns where its digits start
// (after a minus sign) and whether it is an integer.
func (p *lineParser) scanNumber() (digits int, integer bool, err error) {
	p.eat('-')
	digits = p.pos
	if p.eat('0') {
		// no leading zeros
	} else {
		for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
			p.pos++
		}
	}
	if p.pos == digits {
		return 0, false, p.fail("invalid number")
	}
	integer = true
	if p.eat('.') {
		integer = false
		if !p.digits() {
			return 0, false, p.fail("invalid number")
		}
	}
	if p.eat('e') || p.eat('E') {
		integer = false
		if !p.eat('+') {
			p.eat('-')
		}
		if !p.digits() {
			return 0, false, p.fail("invalid number")
		}
	}
	return digits, integer, nil
}

// skip validates the JSON value at p.pos and moves past it, noting a
// member named "$binary" in p.sawBinary.
func (p *lineParser) skip(depth int) error {
	if p.pos >= len(p.b) {
		return p.fail("unexpected end of line")
	}
	switch c := p.b[p.pos]; {
	case c == '"':
		_, err := p.rawString()
		return err
	case c == '[' || c == '{':
		if depth > maxLineDepth {
			return p.fail("nested deeper than %d levels", maxLineDepth)
		}
		p.pos++
		if c == '[' {
			return p.list(']', func() error { return p.skip(depth + 1) })
		}
		return p.list('}', func() error {
			name, err := p.memberName()
			if err != nil {
				return err
			}
			if string(name) == "$binary" {
				p.sawBinary = true
			}
			return p.skip(depth + 1)
		})
	case c == '-' || c >= '0' && c <= '9':
		_, _, err := p.scanNumber()
		return err
	case p.literal("true"), p.literal("false"), p.literal("null"):
		return nil
	}
	return p.fail("invalid character %q looking for a value", p.b[p.pos])
}

func (p *lineParser) digits() bool {
	start := p.pos
	for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// memberName reads an object member's name and its colon; the name is
// valid until the next string is read.
func (p *lineParser) memberName() ([]byte, error) {
	if p.pos >= len(p.b) || p.b[p.pos] != '"' {
		return nil, p.fail("object keys must be strings")
	}
	k, err := p.rawString()
	if err != nil {
		return nil, err
	}
	p.ws()
	if !p.eat(':') {
		return nil, p.fail("want :")
	}
	p.ws()
	return k, nil
}

// str reads a string value.
func (p *lineParser) str() (string, error) {
	b, err := p.rawString()
	if err != nil {
		return "", err
	}
	return p.intern(b), nil
}

// intern returns b as a string; short strings are shared between lines.
func (p *lineParser) intern(b []byte) string {
	if len(b) == 0 || len(b) > maxInternLen {
		return string(b)
	}
	// a line mostly repeats the last lines' strings: a small
	// direct-mapped cache answers them without hashing
	slot := &p.recent[(len(b)+int(b[len(b)/2]))%len(p.recent)]
	if *slot == string(b) {
		return *slot
	}
	if s, ok := p.names[string(b)]; ok {
		*slot = s
		return s
	}
	s := string(b)
	if p.names == nil {
		p.names = map[string]string{}
	}
	if len(p.names) < maxInternSize {
		p.names[s] = s
	}
	*slot = s
	return s
}

// rawString reads a string and returns its unescaped bytes, valid until
// the next call: a slice of the line when it has no escape, else of
// p.esc. Invalid UTF-8 and lone surrogates become U+FFFD, as with
// encoding/json.
func (p *lineParser) rawString() ([]byte, error) {
	if !p.eat('"') {
		return nil, p.fail("want a string")
	}
	start := p.pos
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			p.pos++
			return p.b[start : p.pos-1], nil
		case c == '\\' || c >= utf8.RuneSelf:
			return p.slowString(start)
		case c < 0x20:
			return nil, p.fail("control character in a string")
		}
		p.pos++
	}
	return nil, p.fail("unterminated string")
}

func (p *lineParser) slowString(start int) ([]byte, error) {
	out, pos, err := jsonstr.AppendString(append(p.esc[:0], p.b[start:p.pos]...), p.b, p.pos)
	p.esc = out[:0]
	p.pos = pos
	if err != nil {
		return nil, p.fail("%v", err)
	}
	return out, nil
}
