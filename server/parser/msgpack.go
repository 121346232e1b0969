package parser

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/siobridge/siobridge/server/engineio"
)

// MsgPack is socket.io-msgpack-parser's format (version 3, the one of
// socket.io-client 4 and of python-socketio's serializer='msgpack'): a
// packet is ONE binary Engine.IO message holding a msgpack map
// {"type", "data", "nsp", "id"} ("data" and "id" only when the packet has
// them), binary values inline as msgpack bin, no attachments; packet
// types 0 to 4 only.
//
// Decoding translates the map into the Packet every parser gives (a JSON
// payload, bin values as attachments behind placeholders); encoding does
// the reverse, keeping the payload's key order. msgpack values JSON cannot
// hold become: integer map keys their decimal string, JavaScript Dates
// and msgpack timestamps an RFC 3339 string with milliseconds in UTC
// (JSON.stringify's form), JavaScript ArrayBuffers binary, undefined, NaN
// and infinities null. Other map keys and extensions
// are refused. Decoding costs time and memory in proportion to the
// message: lengths are checked against the bytes left before anything is
// allocated; data nested deeper than MaxMsgpackDepth, or with more than
// MaxMsgpackBinaries binary values, is refused.
var MsgPack Parser = msgpackParser{}

// Bounds of a msgpack packet's data; a packet past them is invalid.
const (
	// MaxMsgpackDepth bounds the nesting of arrays and maps (as the node
	// dialect's msgpack decoder does).
	MaxMsgpackDepth = 1000
	// MaxMsgpackBinaries bounds the binary values (bin, ArrayBuffer) of
	// one packet. Each becomes an attachment and a placeholder, about 80
	// bytes for as few as 2 bytes of input; socket.io-parser allows 10
	// attachments per JSON packet (MaxAttachments), this bound is looser
	// since msgpack clients send binary values inline.
	MaxMsgpackBinaries = 1000
)

type msgpackParser struct{}

func (msgpackParser) Name() string { return "msgpack" }

func (msgpackParser) NewDecoder() PacketDecoder { return msgpackDecoder{} }

func (msgpackParser) Encode(p *Packet) ([]engineio.Message, error) {
	b, err := EncodeMsgpack(p)
	if err != nil {
		return nil, err
	}
	return []engineio.Message{{Data: b, Binary: true}}, nil
}

type msgpackDecoder struct{}

func (msgpackDecoder) Add(data []byte, binary bool) (*Packet, error) {
	if !binary {
		return nil, invalid("text message under the msgpack parser")
	}
	return DecodeMsgpack(data)
}

// ---------------------------------------------------------------- decode

// DecodeMsgpack decodes one socket.io-msgpack-parser packet. The packet's
// Data is JSON; each msgpack bin of its data is an attachment, replaced by
// a placeholder. Errors wrap ErrInvalid.
func DecodeMsgpack(in []byte) (*Packet, error) {
	m := mpReader{in: in}
	m.r.Reset(in)
	m.d = msgpack.GetDecoder()
	m.d.Reset(&m.r)
	defer msgpack.PutDecoder(m.d)
	p, err := m.packet()
	if err != nil {
		return nil, fmt.Errorf("%w: msgpack: %w (at byte %d)", ErrInvalid, err, m.pos())
	}
	if err := validate(p); err != nil {
		return nil, err
	}
	return p, nil
}

// mpReader walks a msgpack message with the library's decoder, reading
// strings and bins straight from the input once their length is checked
// against what is left.
type mpReader struct {
	in   []byte
	r    bytes.Reader
	d    *msgpack.Decoder
	atts [][]byte
}

var (
	errTruncated = errors.New("truncated")
	errTooDeep   = fmt.Errorf("nested deeper than %d levels", MaxMsgpackDepth)
)

func (m *mpReader) pos() int { return len(m.in) - m.r.Len() }

// take returns the next n bytes of the input (not a copy).
func (m *mpReader) take(n int) ([]byte, error) {
	if n < 0 || n > m.r.Len() {
		return nil, errTruncated
	}
	p := m.pos()
	m.r.Seek(int64(n), io.SeekCurrent)
	return m.in[p : p+n : p+n], nil
}

func (m *mpReader) peek() (byte, error) {
	c, err := m.d.PeekCode()
	if err != nil {
		return 0, errTruncated
	}
	return c, nil
}

// str reads a msgpack str.
func (m *mpReader) str() ([]byte, error) {
	c, err := m.peek()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsString(c) {
		return nil, fmt.Errorf("a string expected, code 0x%02x", c)
	}
	n, err := m.d.DecodeBytesLen()
	if err != nil {
		return nil, errTruncated
	}
	return m.take(n)
}

func (m *mpReader) packet() (*Packet, error) {
	c, err := m.peek()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return nil, fmt.Errorf("a packet is a map, not code 0x%02x", c)
	}
	n, err := m.d.DecodeMapLen()
	if err != nil {
		return nil, errTruncated
	}
	if 2*n > m.r.Len() {
		return nil, errTruncated
	}
	p := &Packet{Type: 255}
	hasNsp := false
	for range n {
		key, err := m.str()
		if err != nil {
			return nil, fmt.Errorf("packet key: %w", err)
		}
		switch string(key) {
		case "type":
			t, ok, err := m.integer()
			if err != nil {
				return nil, err
			}
			if !ok || t < int64(Connect) || t > int64(ConnectError) {
				return nil, errors.New("invalid packet type")
			}
			p.Type = Type(t)
		case "nsp":
			ns, err := m.str()
			if err != nil {
				return nil, fmt.Errorf("nsp: %w", err)
			}
			p.Namespace, hasNsp = string(ns), true
		case "id":
			if m.null() {
				p.ID, p.HasID = 0, false
				continue
			}
			id, ok, err := m.integer()
			if err != nil {
				return nil, err
			}
			if !ok || id < 0 {
				return nil, errors.New("invalid packet id")
			}
			p.ID, p.HasID = uint64(id), true
		case "data":
			m.atts = nil // a repeated key: the last one counts
			if m.null() {
				p.Data = nil
				continue
			}
			data, err := m.value(nil, 1)
			if err != nil {
				return nil, err
			}
			p.Data, p.Attachments = data, m.atts
		default: // ignored ("options" of socket.io-client's packets)
			atts := m.atts
			if _, err := m.value(nil, 1); err != nil {
				return nil, err
			}
			m.atts = atts
		}
	}
	if m.r.Len() > 0 {
		return nil, fmt.Errorf("%d trailing bytes", m.r.Len())
	}
	if p.Type == 255 {
		return nil, errors.New("no packet type")
	}
	if !hasNsp {
		return nil, errors.New("no namespace")
	}
	return p, nil
}

// null consumes a nil and reports whether there was one.
func (m *mpReader) null() bool {
	if c, err := m.peek(); err == nil && c == msgpcode.Nil {
		m.d.DecodeNil()
		return true
	}
	return false
}

// integer reads a number; ok is false when it is not an integer (a float
// with a fraction, or not a number at all: notepack.io and JavaScript
// take 2.0 for 2).
func (m *mpReader) integer() (v int64, ok bool, err error) {
	c, err := m.peek()
	if err != nil {
		return 0, false, err
	}
	switch {
	case msgpcode.IsFixedNum(c) || c >= msgpcode.Int8 && c <= msgpcode.Int64 || c >= msgpcode.Uint8 && c <= msgpcode.Uint32:
		v, err := m.d.DecodeInt64()
		if err != nil {
			return 0, false, errTruncated
		}
		return v, true, nil
	case c == msgpcode.Uint64:
		u, err := m.d.DecodeUint64()
		if err != nil {
			return 0, false, errTruncated
		}
		return int64(min(u, math.MaxInt64)), u <= math.MaxInt64, nil
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := m.d.DecodeFloat64()
		if err != nil {
			return 0, false, errTruncated
		}
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false, nil
		}
		return int64(f), true, nil
	}
	return 0, false, nil
}

// value appends the next msgpack value to out as JSON; bins become
// placeholders and are appended to m.atts. depth is the level of an
// array or map there.
func (m *mpReader) value(out []byte, depth int) ([]byte, error) {
	c, err := m.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		m.d.DecodeNil()
		return append(out, "null"...), nil
	case c == msgpcode.False || c == msgpcode.True:
		m.d.DecodeBool()
		return strconv.AppendBool(out, c == msgpcode.True), nil
	case msgpcode.IsFixedNum(c) || c >= msgpcode.Int8 && c <= msgpcode.Int64 || c >= msgpcode.Uint8 && c <= msgpcode.Uint32:
		v, err := m.d.DecodeInt64()
		if err != nil {
			return nil, errTruncated
		}
		return strconv.AppendInt(out, v, 10), nil
	case c == msgpcode.Uint64:
		v, err := m.d.DecodeUint64()
		if err != nil {
			return nil, errTruncated
		}
		return strconv.AppendUint(out, v, 10), nil
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := m.d.DecodeFloat64()
		if err != nil {
			return nil, errTruncated
		}
		return appendJSONFloat(out, f), nil
	case msgpcode.IsString(c):
		s, err := m.str()
		if err != nil {
			return nil, err
		}
		return appendJSONString(out, s), nil
	case msgpcode.IsBin(c):
		n, err := m.d.DecodeBytesLen()
		if err != nil {
			return nil, errTruncated
		}
		b, err := m.take(n)
		if err != nil {
			return nil, err
		}
		return m.attachment(out, b)
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		if depth > MaxMsgpackDepth {
			return nil, errTooDeep
		}
		n, err := m.d.DecodeArrayLen()
		if err != nil || n > m.r.Len() { // every element takes a byte at least
			return nil, errTruncated
		}
		out = append(out, '[')
		for i := range n {
			if i > 0 {
				out = append(out, ',')
			}
			if out, err = m.value(out, depth+1); err != nil {
				return nil, err
			}
		}
		return append(out, ']'), nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		if depth > MaxMsgpackDepth {
			return nil, errTooDeep
		}
		n, err := m.d.DecodeMapLen()
		if err != nil || 2*n > m.r.Len() {
			return nil, errTruncated
		}
		out = append(out, '{')
		for i := range n {
			if i > 0 {
				out = append(out, ',')
			}
			if out, err = m.key(out); err != nil {
				return nil, err
			}
			out = append(out, ':')
			if out, err = m.value(out, depth+1); err != nil {
				return nil, err
			}
		}
		return append(out, '}'), nil
	case msgpcode.IsExt(c):
		return m.ext(out, c)
	}
	return nil, fmt.Errorf("invalid code 0x%02x", c)
}

// key appends a map key as a JSON string: a str, or an integer as its
// decimal string (as JavaScript objects take it).
func (m *mpReader) key(out []byte) ([]byte, error) {
	c, err := m.peek()
	if err != nil {
		return nil, err
	}
	if msgpcode.IsString(c) {
		s, err := m.str()
		if err != nil {
			return nil, err
		}
		return appendJSONString(out, s), nil
	}
	if msgpcode.IsFixedNum(c) || c >= msgpcode.Uint8 && c <= msgpcode.Int64 {
		out = append(out, '"')
		out, err = m.value(out, 0)
		return append(out, '"'), err
	}
	return nil, fmt.Errorf("a map key of code 0x%02x (only strings and integers are taken)", c)
}

// timestampExt is msgpack's timestamp extension type.
const timestampExt = -1

// ext appends an extension as JSON. notepack.io 2 (socket.io-msgpack-parser
// 3's) uses type 0: fixext 1 for undefined (null here), fixext 8 for a
// Date (milliseconds since 1970; an RFC 3339 string here, as
// JSON.stringify writes Dates), ext 8/16/32 for an ArrayBuffer (binary
// here, as bin); msgpack's timestamp (type -1, of python's msgpack and
// notepack.io 3) is a string too.
func (m *mpReader) ext(out []byte, c byte) ([]byte, error) {
	start := m.pos()
	id, n, err := m.d.DecodeExtHeader()
	if err != nil {
		return nil, errTruncated
	}
	body, err := m.take(n)
	if err != nil {
		return nil, err
	}
	var t time.Time
	switch {
	case id == 0 && c == msgpcode.FixExt1:
		return append(out, "null"...), nil
	case id == 0 && c == msgpcode.FixExt8:
		t = time.UnixMilli(int64(binary.BigEndian.Uint64(body)))
	case id == 0 && (c == msgpcode.Ext8 || c == msgpcode.Ext16 || c == msgpcode.Ext32):
		return m.attachment(out, body)
	case id == timestampExt && (n == 4 || n == 8 || n == 12):
		m.r.Seek(int64(start), io.SeekStart) // the library decodes the timestamp from its first byte
		if t, err = m.d.DecodeTime(); err != nil {
			return nil, fmt.Errorf("timestamp: %w", err)
		}
	default:
		return nil, fmt.Errorf("unsupported extension type %d of %d bytes", id, n)
	}
	out = append(out, '"')
	out = t.UTC().AppendFormat(out, "2006-01-02T15:04:05.000Z07:00") // Date.prototype.toJSON
	return append(out, '"'), nil
}

// attachment keeps a copy of b as the next attachment and appends its
// placeholder.
func (m *mpReader) attachment(out, b []byte) ([]byte, error) {
	if len(m.atts) >= MaxMsgpackBinaries {
		return nil, fmt.Errorf("more than %d binary values", MaxMsgpackBinaries)
	}
	m.atts = append(m.atts, bytes.Clone(b))
	out = append(out, `{"_placeholder":true,"num":`...)
	out = strconv.AppendInt(out, int64(len(m.atts)-1), 10)
	return append(out, '}'), nil
}

// appendJSONFloat writes f as a JSON number that stays a float (1.0, not
// 1); NaN and infinities, which JSON lacks, as null (JSON.stringify's
// choice).
func appendJSONFloat(out []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(out, "null"...)
	}
	start := len(out)
	out = strconv.AppendFloat(out, f, 'g', -1, 64)
	if bytes.IndexAny(out[start:], ".eE") < 0 {
		out = append(out, ".0"...)
	}
	return out
}

// appendJSONString writes s (msgpack str: meant to be UTF-8) as a JSON
// string, as encoding/json would (invalid UTF-8 as U+FFFD).
func appendJSONString(out []byte, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(string(s)) // escapes, or to check UTF-8: the rare case
			return append(out, q...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

// ---------------------------------------------------------------- encode

// EncodeMsgpack encodes p as socket.io-msgpack-parser does: a map
// {"type", "data", "nsp", "id"} (without "data" when p has no payload,
// without "id" when it has no id), BINARY_EVENT and BINARY_ACK sent as
// EVENT and ACK with the attachments in place of their placeholders as
// msgpack bin.
func EncodeMsgpack(p *Packet) ([]byte, error) {
	size := 32 + len(p.Namespace) + len(p.Data)
	for _, a := range p.Attachments {
		size += 5 + len(a)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	e := msgpack.GetEncoder()
	e.Reset(buf)
	defer msgpack.PutEncoder(e)
	t := p.Type
	switch t {
	case BinaryEvent:
		t = Event
	case BinaryAck:
		t = Ack
	}
	fields := 2
	if len(p.Data) > 0 {
		fields++
	}
	if p.HasID {
		fields++
	}
	e.EncodeMapLen(fields)
	e.EncodeString("type")
	e.EncodeUint(uint64(t))
	if len(p.Data) > 0 {
		e.EncodeString("data")
		if err := jsonToMsgpack(e, p.Data, p.Attachments); err != nil {
			return nil, fmt.Errorf("socket.io: msgpack encoding: %w", err)
		}
	}
	ns := p.Namespace
	if ns == "" {
		ns = "/"
	}
	e.EncodeString("nsp")
	e.EncodeString(ns)
	if p.HasID {
		e.EncodeString("id")
		e.EncodeUint(p.ID)
	}
	return buf.Bytes(), nil
}

// jsonToMsgpack writes the JSON value data as msgpack, placeholders
// {"_placeholder":true,"num":N} (as Deconstruct writes them) as
// attachment N. msgpack wants the length of an array or a map before its
// elements: a first pass counts them, the second writes. Both walk the
// text once, without recursion.
func jsonToMsgpack(e *msgpack.Encoder, data []byte, atts [][]byte) error {
	w := jsonWalker{data: data, atts: atts}
	if err := w.walk(nil); err != nil {
		return err
	}
	w.next = 0
	return w.walk(e)
}

type jsonWalker struct {
	data   []byte
	atts   [][]byte
	counts []int // elements of each container, in the order they open
	next   int   // the next container's index in counts (second pass)
}

type openContainer struct {
	object bool
	index  int // in counts
}

// walk scans data; without e it counts the containers' elements, with e
// it writes them.
func (w *jsonWalker) walk(e *msgpack.Encoder) error {
	var stack []openContainer
	expectKey := false
	d := w.data
	i := 0
	for {
		for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r' || d[i] == ',' || d[i] == ':') {
			i++
		}
		if i == len(d) {
			if len(stack) > 0 {
				return errors.New("unterminated JSON")
			}
			return nil
		}
		c := d[i]
		if c == ']' || c == '}' {
			if len(stack) == 0 {
				return fmt.Errorf("unexpected %q", c)
			}
			stack = stack[:len(stack)-1]
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
			i++
			continue
		}
		isKey := expectKey
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if e == nil && (!top.object || isKey) {
				w.counts[top.index]++
			}
			expectKey = top.object && !isKey
		}
		var err error
		switch {
		case c == '[' || c == '{':
			if n, end, ok := w.placeholder(i); ok {
				if e != nil {
					a := w.atts[n]
					if a == nil {
						a = []byte{}
					}
					err = e.EncodeBytes(a)
				}
				i = end
				break
			}
			idx := w.next
			w.next++
			if e == nil {
				w.counts = append(w.counts, 0)
			} else if c == '[' {
				err = e.EncodeArrayLen(w.counts[idx])
			} else {
				err = e.EncodeMapLen(w.counts[idx])
			}
			stack = append(stack, openContainer{c == '{', idx})
			expectKey = c == '{'
			i++
		case c == '"':
			end, escaped := stringEnd(d, i)
			if end < 0 {
				return errors.New("unterminated JSON string")
			}
			if e != nil {
				err = encodeJSONString(e, d[i:end], escaped)
			}
			i = end
		default:
			end := i
			for end < len(d) && !isJSONDelim(d[end]) {
				end++
			}
			if end == i {
				return fmt.Errorf("unexpected %q in JSON", c)
			}
			if isKey {
				return errors.New("a JSON key that is not a string")
			}
			if e != nil {
				err = encodeJSONScalar(e, d[i:end])
			}
			i = end
		}
		if err != nil {
			return err
		}
	}
}

func isJSONDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', ']', '}', '[', '{', '"':
		return true
	}
	return false
}

// placeholder reports whether an object at i is a placeholder of an
// attachment, as Deconstruct writes it, and where it ends.
func (w *jsonWalker) placeholder(i int) (n, end int, ok bool) {
	const prefix = `{"_placeholder":true,"num":`
	if len(w.atts) == 0 || !bytes.HasPrefix(w.data[i:], []byte(prefix)) {
		return 0, 0, false
	}
	j := i + len(prefix)
	k := j
	for k < len(w.data) && k-j < 4 && w.data[k] >= '0' && w.data[k] <= '9' {
		k++
	}
	if k == j || k >= len(w.data) || w.data[k] != '}' {
		return 0, 0, false
	}
	n, _ = strconv.Atoi(string(w.data[j:k]))
	if n >= len(w.atts) {
		return 0, 0, false
	}
	return n, k + 1, true
}

// stringEnd returns the index after the JSON string starting at i, and
// whether it has escapes; -1 when it does not end.
func stringEnd(d []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

func encodeJSONString(e *msgpack.Encoder, q []byte, escaped bool) error {
	if !escaped {
		return e.EncodeString(string(q[1 : len(q)-1]))
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return fmt.Errorf("JSON string: %w", err)
	}
	return e.EncodeString(s)
}

// encodeJSONScalar writes a number (an integer when it has no fraction or
// exponent and fits 64 bits), true, false or null.
func encodeJSONScalar(e *msgpack.Encoder, lit []byte) error {
	switch string(lit) {
	case "null":
		return e.EncodeNil()
	case "true":
		return e.EncodeBool(true)
	case "false":
		return e.EncodeBool(false)
	}
	if bytes.IndexAny(lit, ".eE") < 0 {
		if v, err := strconv.ParseInt(string(lit), 10, 64); err == nil {
			return e.EncodeInt(v)
		}
		if v, err := strconv.ParseUint(string(lit), 10, 64); err == nil {
			return e.EncodeUint(v)
		}
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return fmt.Errorf("JSON literal %q", lit)
	}
	return e.EncodeFloat64(f)
}
