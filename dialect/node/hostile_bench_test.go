package node

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// array32 returns an array32 header for n elements followed by body.
func array32(n int, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n)), body...)
}

// BenchmarkHostileMsgpack: cost per input byte of the msgpack decoder on a
// broadcast as the Node adapter writes it and on hostile shapes.
func BenchmarkHostileMsgpack(b *testing.B) {
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte {
			// [uid, {type: 2, data: ["chat", msg...], nsp}, opts]
			var data []any
			data = append(data, "chat")
			for size := 0; size < n-150; size += 75 {
				data = append(data, omap{{"user", "alice"}, {"text", "hello, this is a chat message"}, {"n", int64(size)}, {"ok", true}})
			}
			v := []any{"emitter-uid", omap{{"type", int64(2)}, {"data", data}, {"nsp", "/"}},
				omap{{"rooms", []any{"room1"}}, {"except", []any{}}, {"flags", omap{}}}}
			out, err := appendMsgpack(nil, v, 0)
			if err != nil {
				panic(err)
			}
			return out
		}},
		// the input: every level announces the whole rest
		{Name: "nested-array32", Make: func(n int) []byte { return testenv.NestedMsgpackHeaders(n, 0xdd) }, WantErr: true},
		{Name: "nested-map32", Make: func(n int) []byte { return testenv.NestedMsgpackHeaders(n, 0xdf) }, WantErr: true},
		// the most memory per byte: a one-entry map ({"": nil}) every 3 bytes
		{Name: "one-entry-maps", Make: func(n int) []byte {
			return array32((n-5)/3, bytes.Repeat([]byte{0x81, 0xa0, 0xc0}, (n-5)/3))
		}},
		// chains of arrays nested to the depth limit
		{Name: "deep-arrays", Make: func(n int) []byte {
			chain := append([]byte(strings.Repeat("\x91", maxDepth-1)), 0xc0)
			return array32((n-5)/len(chain), bytes.Repeat(chain, (n-5)/len(chain)))
		}},
		// map keys that are numbers become strings
		{Name: "number-keys", Make: func(n int) []byte {
			var body []byte
			k := 0
			for ; len(body)+10 < n; k++ {
				body = binary.BigEndian.AppendUint32(append(body, 0xce), uint32(k)+1<<31)
				body = append(body, 0xc0)
			}
			return append(binary.BigEndian.AppendUint32([]byte{0xdf}, uint32(k)), body...)
		}},
	}, func(in []byte) error {
		_, err := decodeMsgpack(in)
		return err
	})
}

// BenchmarkHostileNodeJSON: cost per input byte of decodeAny on a JSON
// request (what socket.io's emitter and adapter send on the request
// channel) and on hostile shapes.
func BenchmarkHostileNodeJSON(b *testing.B) {
	request := func(n int, item string) []byte {
		return testenv.Fill(n, `{"uid":"emitter","type":4,"requestId":"r","data":["chat",`, item, ",", `]}`)
	}
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte {
			return request(n, `{"user":"alice","text":"hello, this is a chat message","n":12345,"ok":true}`)
		}},
		{Name: "one-entry-objects", Make: func(n int) []byte { return request(n, `{"":0}`) }},
		// the longest integers op.FromJSON accepts (4300 digits)
		{Name: "4300-digit-ints", Make: func(n int) []byte { return request(n, strings.Repeat("9", 4300)) }},
		// nesting just below encoding/json's depth limit (10000)
		{Name: "deep-arrays", Make: func(n int) []byte {
			d := min(9990, (n-60)/2)
			return request(n, strings.Repeat("[", d)+strings.Repeat("]", d))
		}},
	}, func(in []byte) error {
		_, err := decodeAny(in)
		return err
	})
}
