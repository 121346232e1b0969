package parser

import (
	"bytes"
	"encoding/json"
)

// What eventName found first in an EVENT payload.
const (
	notArray   = iota // not an array, or an empty one
	badName           // a first element that is neither a string nor a number
	stringName        // a string: the event name
	numberName        // a number
)

// eventName reads the start of an EVENT packet's payload (valid JSON
// already): a non-empty array whose first element is the event name, a
// string (returned) or a number. It reads up to the end of that element only, where
// decoding the whole array allocated for every element of every event.
func eventName(data []byte) (name []byte, kind int) {
	b := bytes.TrimLeft(data, " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return nil, notArray
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] == ']' {
		return nil, notArray
	}
	switch c := b[0]; {
	case c == '"':
		end, escaped := 1, false
		for ; end < len(b) && b[end] != '"'; end++ {
			if b[end] == '\\' {
				escaped = true
				end++ // the escaped byte
			}
		}
		if end >= len(b) {
			return nil, badName
		}
		if !escaped {
			return b[1:end], stringName
		}
		var s string
		if err := json.Unmarshal(b[:end+1], &s); err != nil {
			return nil, badName
		}
		return []byte(s), stringName
	case c == '-' || c >= '0' && c <= '9':
		return nil, numberName
	}
	return nil, badName // an object, an array, true, false, null (socket.io-parser refuses null too)
}
