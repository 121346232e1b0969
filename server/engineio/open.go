package engineio

import (
	"strconv"

	"github.com/siobridge/siobridge/internal/jsonstr"
)

// openJSON is the JSON of the open packet, byte for byte as json.Marshal
// of the struct {sid, upgrades, pingInterval, pingTimeout, maxPayload}
// writes it, without reflection (every connection sends one).
func openJSON(sid string, upgrades []string, pingInterval, pingTimeout int64, maxPayload int) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"sid":`...)
	b = jsonstr.Append(b, sid)
	b = append(b, `,"upgrades":[`...)
	for i, u := range upgrades {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, u)
	}
	b = append(b, `],"pingInterval":`...)
	b = strconv.AppendInt(b, pingInterval, 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, pingTimeout, 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(maxPayload), 10)
	return append(b, '}')
}
