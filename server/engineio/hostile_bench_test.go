package engineio

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// recordsOf returns about n bytes of rec records.
func recordsOf(n int, rec string) []byte { return testenv.Fill(n, "", rec, "\x1e", "") }

// BenchmarkHostilePayload: cost per input byte of decodePayload (a polling
// POST body) on messages and on hostile shapes.
func BenchmarkHostilePayload(b *testing.B) {
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte {
			return recordsOf(n, `42["chat",{"user":"alice","text":"hello, this is a chat message","n":12345}]`)
		}},
		{Name: "benign-binary", Make: func(n int) []byte {
			return recordsOf(n, "b"+base64.StdEncoding.EncodeToString(make([]byte, 96)))
		}},
		// the most records per byte: one-byte packets
		{Name: "tiny-records", Make: func(n int) []byte { return recordsOf(n, "6") }},
		{Name: "tiny-binary", Make: func(n int) []byte { return recordsOf(n, "bAA==") }},
		{Name: "one-record", Make: func(n int) []byte { return []byte("4" + strings.Repeat("x", n-1)) }},
	}, func(in []byte) error {
		_, err := decodePayload(in)
		return err
	})
}
