package python

import (
	"bytes"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// jsonList returns `{"method": "emit", "data": [item, item, ...]}` of
// about n bytes.
func jsonList(n int, item string) []byte {
	return testenv.Fill(n, `{"method": "emit", "event": "e", "data": [`, item, ",", `]}`)
}

// BenchmarkHostilePyJSON: cost per input byte of the python JSON parser on
// an emit as python-socketio writes it and on hostile shapes.
func BenchmarkHostilePyJSON(b *testing.B) {
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte {
			return jsonList(n, `{"user": "alice", "text": "hello, this is a chat message", "n": 12345, "ok": true}`)
		}},
		// the most memory per byte: empty and one-entry objects
		{Name: "empty-objects", Make: func(n int) []byte { return jsonList(n, `{}`) }},
		{Name: "one-entry-objects", Make: func(n int) []byte { return jsonList(n, `{"":0}`) }},
		// arrays nested to just below the depth limit, again and again
		{Name: "deep-arrays", Make: func(n int) []byte {
			return jsonList(n, strings.Repeat("[", 990)+strings.Repeat("]", 990))
		}},
		// the longest integers allowed (100 digits) and long float texts
		{Name: "100-digit-ints", Make: func(n int) []byte { return jsonList(n, strings.Repeat("9", 100)) }},
		{Name: "long-float", Make: func(n int) []byte { return jsonList(n, "0."+strings.Repeat("1", n)) }},
		// escapes and surrogates, lone ones included
		{Name: "escapes", Make: func(n int) []byte {
			return jsonList(n, `"`+strings.Repeat(`\ud83d\ude00\ud800\n\u00e9`, 16)+`"`)
		}},
		{Name: "literals", Make: func(n int) []byte { return jsonList(n, `-Infinity,NaN,null,false`) }},
		// one long key repeated: each insertion hashes it
		{Name: "duplicate-long-keys", Make: func(n int) []byte {
			item := `"` + strings.Repeat("k", 1000) + `": 0`
			return append(bytes.TrimSuffix(jsonList(n-2, "0"), []byte("]}")), []byte(`], "x": {`+strings.Repeat(item+",", n/len(item))+item+`}}`)...)
		}},
	}, func(in []byte) error {
		_, err := parsePyJSON(in)
		return err
	})
}
