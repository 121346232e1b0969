// Package jsonstr appends JSON strings as encoding/json writes them,
// without reflection, for the few JSON objects that every connection sends
// (the Engine.IO open packet, the Socket.IO CONNECT reply); and decodes
// their escape sequences (AppendEscape) for the project's hand-written
// JSON readers (sioemit's line reader, the python dialect's decoder).
package jsonstr

import "encoding/json"

// Append appends s as a JSON string, byte for byte as json.Marshal(s).
func Append(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // escapes: the rare case
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
