package server

import (
	"encoding/json"

	"github.com/siobridge/siobridge/internal/jsonstr"
)

// sidPayload is the payload of the CONNECT reply, {"sid":id}, as
// json.Marshal of map[string]string{"sid": id} writes it (every connection
// gets one).
func sidPayload(id string) json.RawMessage {
	b := append(make([]byte, 0, 12+len(id)), `{"sid":`...)
	return append(jsonstr.Append(b, id), '}')
}
