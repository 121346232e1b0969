package ws

import (
	"bytes"
	"compress/flate"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// discard is a Handler that drops everything.
type discard struct{}

func (discard) Message(byte, []byte) error { return nil }
func (discard) Ping([]byte)                {}
func (discard) Close(int)                  {}

// hostileLimit is the message limit of the benchmark: Engine.IO's default
// MaxPayload.
const hostileLimit = 1_000_000

var benchKey = [4]byte{1, 2, 3, 4}

// framesOf returns client frames (b0, payload) repeated to about n bytes.
func framesOf(n int, b0 byte, payload []byte) []byte {
	one := AppendClientFrame(nil, b0, payload, benchKey)
	return bytes.Repeat(one, max(1, n/len(one)))
}

// bomb returns a permessage-deflate payload that inflates to hostileLimit
// zero bytes, compressed as tightly as deflate allows.
func bomb() []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(make([]byte, hostileLimit))
	fw.Flush()
	return bytes.TrimSuffix(buf.Bytes(), deflateTail)
}

// BenchmarkHostileFrames: cost per input byte of Decoder.Decode on client
// frames (the caller's buffer holds them all) and on hostile shapes.
func BenchmarkHostileFrames(b *testing.B) {
	msg := []byte(`42["chat",{"user":"alice","text":"hello, this is a chat message","n":12345}]`)
	deflated := Deflate(nil, nil, bytes.Repeat(msg, 10))
	big := bomb()
	cases := []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte { return framesOf(n, 0x81, msg) }},
		{Name: "benign-deflate", Make: func(n int) []byte { return framesOf(n, 0xc1, deflated) }},
		{Name: "one-frame", Make: func(n int) []byte { return framesOf(n, 0x82, make([]byte, min(n-14, hostileLimit))) }},
		// the most frames per byte
		{Name: "empty-text-frames", Make: func(n int) []byte { return framesOf(n, 0x81, nil) }},
		{Name: "empty-pings", Make: func(n int) []byte { return framesOf(n, 0x89, nil) }},
		// one message in one-byte fragments
		{Name: "1-byte-fragments", Make: func(n int) []byte {
			k := n / 7
			out := AppendClientFrame(nil, 0x01, []byte("a"), benchKey)
			out = append(out, bytes.Repeat(AppendClientFrame(nil, 0x00, []byte("a"), benchKey), k-2)...)
			return AppendClientFrame(out, 0x80, []byte("a"), benchKey)
		}},
		// the most output per byte: deflate bombs inflating to the limit
		{Name: "deflate-bombs", Make: func(n int) []byte { return framesOf(n, 0xc2, big) }},
		{Name: "invalid-utf8", Make: func(n int) []byte {
			return framesOf(n, 0x81, []byte(strings.Repeat("a", n-15)+"\xff"))
		}, WantErr: true},
	}
	scratch := make([]byte, 2<<20)
	testenv.BenchHostile(b, cases, func(in []byte) error {
		buf := scratch[:copy(scratch, in)] // Decode unmasks in place
		d := Decoder{Limit: hostileLimit, Deflate: true}
		used, err := d.Decode(buf, discard{})
		if err == nil && used != len(in) {
			b.Fatalf("used %d of %d bytes", used, len(in))
		}
		return err
	})
	// A frame that arrives 100 bytes at a time, Decode called after each
	// piece: an incomplete frame costs a header parse, not a rescan. (The
	// caller's buffering is server/engineio's.)
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "trickled-frame-100B", Make: func(n int) []byte { return framesOf(n, 0x82, make([]byte, min(n-14, hostileLimit))) }},
	}, func(in []byte) error {
		buf := scratch[:copy(scratch, in)]
		d := Decoder{Limit: hostileLimit}
		for k := 100; ; k += 100 {
			used, err := d.Decode(buf[:min(k, len(buf))], discard{})
			if err != nil || used == len(buf) {
				return err
			}
		}
	})
}
