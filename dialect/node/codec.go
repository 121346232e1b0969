package node

import "github.com/siobridge/siobridge/op"

// The codec of Node's adapters, exported for the other dialects of Node
// peers (dialect/nodesharded): JSON as JSON.stringify writes it, msgpack as
// notepack.io 3 writes it, and the adapters' "JSON if it starts with {,
// msgpack otherwise" reading.

// Map is an object whose keys keep their order on the wire, as
// JSON.stringify and notepack.io write a JavaScript object's keys in
// insertion order. Values are plain data (see package op), Maps, or
// []string.
type Map []Field

// Field is one key of a Map.
type Field struct {
	Key   string
	Value any
}

// AppendMsgpack appends v encoded as notepack.io 3 does (smallest integer
// forms, []byte as bin, map[string]any keys in JavaScript's Object.keys
// order). Values nested deeper than 1000 levels are refused. A struct (or
// a pointer to one) is written as op.Normalize makes it (its encoding/json
// form) when that can be done from its fields directly; otherwise it is
// refused: normalize it first.
func AppendMsgpack(b []byte, v any) ([]byte, error) { return appendMsgpack(b, v, 0) }

// AppendJSON appends v as compact JSON, as JSON.stringify writes it (keys in
// order, no HTML escaping). Binary values have no JSON form: they are
// refused with an error wrapping dialect.ErrUnsupported.
func AppendJSON(b []byte, v any) ([]byte, error) { return appendJSON(b, v, 0) }

// DecodeMsgpack decodes one msgpack value that fills b exactly, into plain
// data (maps become map[string]any). Memory is bounded by len(b) times a
// constant, and nesting deeper than 1000 levels is refused.
func DecodeMsgpack(b []byte) (any, error) { return decodeMsgpack(b) }

// DecodeObject decodes what Node's adapters read from a request channel:
// a JSON object when b starts with '{', otherwise a msgpack map.
func DecodeObject(b []byte) (map[string]any, error) { return decodeAny(b) }

// RoomNames reads a list of room names as Node peers write them: strings,
// or numbers (socket.io allows them; they become their decimal text). A
// missing or empty list is nil.
func RoomNames(v any) ([]string, error) { return strs(v) }

// RoomList returns rooms as the []any of a JSON array (never null).
func RoomList(rooms []string) []any { return strList(rooms) }

// Number reads a JavaScript number decoded by DecodeObject.
func Number(v any) (float64, bool) { return number(v) }

// DecodeTarget reads the sockets an adapter's opts object {rooms, except,
// flags} selects in namespace ns. Errors wrap dialect.ErrMalformed.
func DecodeTarget(o map[string]any, ns string) (op.Target, error) {
	t := op.Target{Namespace: ns}
	var err error
	if t.Rooms, err = strs(o["rooms"]); err != nil {
		return t, malformed("opts.rooms: %v", err)
	}
	if t.Except, err = strs(o["except"]); err != nil {
		return t, malformed("opts.except: %v", err)
	}
	return t, nil
}

// DecodeSocket reads one socket of a fetchSockets answer {id, handshake,
// rooms, data}. Errors wrap dialect.ErrMalformed.
func DecodeSocket(s map[string]any) (op.SocketInfo, error) {
	id, _ := s["id"].(string)
	rooms, err := strs(s["rooms"])
	if id == "" || err != nil {
		return op.SocketInfo{}, malformed("socket without id or with bad rooms")
	}
	hs, _ := s["handshake"].(map[string]any)
	return op.SocketInfo{ID: id, Rooms: rooms, Data: s["data"], Handshake: hs}, nil
}
