package parser

import (
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// eventOf returns `2["e",item,item,...]` of about n bytes.
func eventOf(n int, item string) []byte { return testenv.Fill(n, `2["e",`, item, ",", "]") }

// BenchmarkHostileParser: cost per input byte of Decoder.Add on a text
// packet (an EVENT with a JSON payload) and on hostile shapes.
func BenchmarkHostileParser(b *testing.B) {
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte {
			return eventOf(n, `{"user":"alice","text":"hello, this is a chat message","n":12345,"ok":true}`)
		}},
		// the most arguments per byte
		{Name: "many-args", Make: func(n int) []byte { return eventOf(n, `0`) }},
		{Name: "empty-objects", Make: func(n int) []byte { return eventOf(n, `{}`) }},
		// nesting just below encoding/json's depth limit (10000)
		{Name: "deep-arrays", Make: func(n int) []byte {
			d := min(9990, n/2-8)
			return eventOf(n, strings.Repeat("[", d)+strings.Repeat("]", d))
		}},
		{Name: "escapes", Make: func(n int) []byte {
			return eventOf(n, `"`+strings.Repeat(`\ud83d\ude00\ud800\n\u00e9`, 16)+`"`)
		}},
		// a long namespace and a long event name
		{Name: "long-namespace", Make: func(n int) []byte {
			return []byte("2/" + strings.Repeat("n", n-10) + `,["e"]`)
		}},
		{Name: "long-event-name", Make: func(n int) []byte {
			return []byte(`2["` + strings.Repeat("e", n-5) + `"]`)
		}},
		// a binary event header; the attachments would follow
		{Name: "binary-header", Make: func(n int) []byte {
			return []byte("510-" + string(eventOf(n-3, `{"_placeholder":true,"num":0}`)[1:]))
		}},
	}, func(in []byte) error {
		var d Decoder
		_, err := d.Add(in, false)
		return err
	})
}
