// Package parser encodes and decodes Socket.IO v5 packets:
// <type>[<attachments>-][<namespace>,][<ack id>][JSON], with binary data
// carried as attachments behind {"_placeholder":true,"num":N} objects.
// Validation follows socket.io-parser 4.2: a packet that does not pass is
// an error, and the server closes that client.
package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Type is a Socket.IO packet type.
type Type byte

// Packet types.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

// MaxAttachments bounds the attachments of one packet (socket.io-parser's
// default since 4.2.6).
const MaxAttachments = 10

// Packet is one Socket.IO packet.
type Packet struct {
	Type      Type
	Namespace string
	// ID is the ack id; HasID tells whether there is one.
	ID    uint64
	HasID bool
	// Data is the JSON payload as sent (placeholders included); empty when
	// the packet has none. Under the MsgPack parser it is the payload
	// translated to JSON, its msgpack bin values as placeholders.
	Data json.RawMessage
	// Attachments are the binary attachments, in placeholder order (the
	// bin values of a msgpack payload).
	Attachments [][]byte
}

// ReservedEvents cannot be sent by clients.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// Encode writes the text part of p (attachments are sent separately).
func Encode(p *Packet) []byte {
	b := make([]byte, 0, 8+len(p.Namespace)+len(p.Data))
	t := p.Type
	if len(p.Attachments) > 0 {
		if t == Event {
			t = BinaryEvent
		} else if t == Ack {
			t = BinaryAck
		}
	}
	b = append(b, '0'+byte(t))
	if t == BinaryEvent || t == BinaryAck {
		b = strconv.AppendInt(b, int64(len(p.Attachments)), 10)
		b = append(b, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		b = append(b, p.Namespace...)
		b = append(b, ',')
	}
	if p.HasID {
		b = strconv.AppendUint(b, p.ID, 10)
	}
	return append(b, p.Data...)
}

// Decoder reassembles packets from Engine.IO messages: a binary packet is
// followed by its attachments as binary messages.
type Decoder struct {
	pending *Packet
	want    int
}

// ErrInvalid is wrapped by every decoding error.
var ErrInvalid = errors.New("socket.io: invalid packet")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Add takes one Engine.IO message; it returns a packet once one is
// complete, nil while attachments are still expected.
func (d *Decoder) Add(data []byte, binary bool) (*Packet, error) {
	if binary {
		if d.pending == nil {
			return nil, invalid("unexpected binary attachment")
		}
		d.pending.Attachments = append(d.pending.Attachments, append([]byte(nil), data...))
		if len(d.pending.Attachments) == d.want {
			p := d.pending
			d.pending = nil
			return p, nil
		}
		return nil, nil
	}
	if d.pending != nil {
		return nil, invalid("text packet while %d attachments are missing", d.want-len(d.pending.Attachments))
	}
	p, n, err := decodeText(data)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		d.pending, d.want = p, n
		return nil, nil
	}
	return p, nil
}

func decodeText(s []byte) (*Packet, int, error) {
	if len(s) == 0 {
		return nil, 0, invalid("empty packet")
	}
	if s[0] < '0' || s[0] > '6' {
		return nil, 0, invalid("unknown packet type %q", s[0])
	}
	p := &Packet{Type: Type(s[0] - '0')}
	i := 1
	attachments := 0
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j >= len(s) || s[j] != '-' || j-i > 3 {
			return nil, 0, invalid("illegal attachments")
		}
		attachments, _ = strconv.Atoi(string(s[i:j]))
		if attachments > MaxAttachments {
			return nil, 0, invalid("too many attachments (%d)", attachments)
		}
		i = j + 1
	}
	p.Namespace = "/"
	if i < len(s) && s[i] == '/' {
		j := bytes.IndexByte(s[i:], ',')
		if j < 0 {
			p.Namespace = string(s[i:])
			i = len(s)
		} else {
			p.Namespace = string(s[i : i+j])
			i += j + 1
		}
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j > i {
		id, err := strconv.ParseUint(string(s[i:j]), 10, 63)
		if err != nil {
			return nil, 0, invalid("invalid ack id")
		}
		p.ID, p.HasID = id, true
		i = j
	}
	if i < len(s) {
		p.Data = json.RawMessage(append([]byte(nil), s[i:]...))
		if !json.Valid(p.Data) {
			return nil, 0, invalid("invalid payload")
		}
	}
	if err := validate(p); err != nil {
		return nil, 0, err
	}
	return p, attachments, nil
}

func validate(p *Packet) error {
	first := byte(0)
	if len(p.Data) > 0 {
		first = bytes.TrimLeft(p.Data, " \t\r\n")[0]
	}
	switch p.Type {
	case Connect:
		if len(p.Data) > 0 && first != '{' {
			return invalid("CONNECT payload must be an object")
		}
	case Disconnect:
		if len(p.Data) > 0 {
			return invalid("DISCONNECT takes no payload")
		}
	case ConnectError:
		if len(p.Data) > 0 && first != '{' && first != '"' {
			return invalid("CONNECT_ERROR payload must be an object or a string")
		}
	case Event, BinaryEvent:
		switch name, kind := eventName(p.Data); kind {
		case notArray:
			return invalid("EVENT payload must be a non-empty array")
		case badName:
			return invalid("event name must be a string or a number")
		case stringName:
			if reservedEvents[string(name)] {
				return invalid("reserved event name %q", name)
			}
		}
	case Ack, BinaryAck:
		if first != '[' {
			return invalid("ACK payload must be an array")
		}
		if !p.HasID {
			return invalid("ACK without id")
		}
	}
	return nil
}

// ------------------------------------------------------------ binary data

// Placeholder is the JSON object that stands for attachment Num.
type placeholder struct {
	Placeholder bool `json:"_placeholder"`
	Num         int  `json:"num"`
}

// Deconstruct replaces every []byte in v (a plain tree of []any,
// map[string]any and values) by a placeholder, depth first, and collects
// the attachments. Values of other types are kept (encoding/json writes
// them; []byte inside structs becomes base64 as usual).
func Deconstruct(v any, atts *[][]byte) any {
	switch x := v.(type) {
	case []byte:
		*atts = append(*atts, x)
		return placeholder{true, len(*atts) - 1}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Deconstruct(e, atts)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			out[k] = Deconstruct(x[k], atts)
		}
		return out
	}
	return v
}

// HasBinary reports whether v holds a []byte in a plain tree.
func HasBinary(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if HasBinary(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if HasBinary(e) {
				return true
			}
		}
	}
	return false
}

// Reconstruct puts attachments back where placeholders stand in a value
// decoded by encoding/json (map[string]any / []any).
func Reconstruct(v any, atts [][]byte) (any, error) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			r, err := Reconstruct(e, atts)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
		return x, nil
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph && len(x) == 2 {
			n, ok := x["num"].(float64)
			if !ok || n < 0 || int(n) >= len(atts) || n != float64(int(n)) {
				return nil, invalid("placeholder without attachment")
			}
			return atts[int(n)], nil
		}
		for k, e := range x {
			r, err := Reconstruct(e, atts)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	}
	return v, nil
}

// IsPlaceholder reports whether raw is a placeholder and returns its
// attachment number.
func IsPlaceholder(raw json.RawMessage) (int, bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || !bytes.Contains(t, []byte("_placeholder")) {
		return 0, false
	}
	var ph placeholder
	if json.Unmarshal(t, &ph) != nil || !ph.Placeholder {
		return 0, false
	}
	return ph.Num, true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// insertion sort: maps here are small
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// EncodeData marshals args (a JSON array) with binary values deconstructed.
func EncodeData(args []any) (json.RawMessage, [][]byte, error) {
	var atts [][]byte
	vals := args
	for _, a := range args {
		if HasBinary(a) {
			vals = Deconstruct(args, &atts).([]any)
			break
		}
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, nil, fmt.Errorf("socket.io: encode arguments: %w", err)
	}
	return b, atts, nil
}
