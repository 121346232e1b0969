package ws

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// Valid text split anywhere, even inside a code point, and across any
// number of fragments, is delivered whole; invalid text split the same way
// is refused. utf8Stream must agree with utf8.Valid on the whole message.
func TestUTF8AcrossFragmentBoundaries(t *testing.T) {
	samples := [][]byte{
		[]byte("Hello-µ@ßöäüàá-UTF-8!!"),
		[]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
		[]byte("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf\xed\x9f\xbf\xee\x80\x80"),
		[]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64"),
		[]byte("\xed\xa0\x80"), []byte("\xe0\x80\xaf"), []byte("\xf0\x8f\xbf\xbf"), []byte("a\xe2\x82"),
		[]byte("\xc0\xaf"), []byte("\xf5\x80\x80\x80"), []byte("\x80"), []byte("\xef\xbf"),
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, 1+rnd.IntN(12))
		for i := range b {
			b[i] = []byte{'a', 0x80, 0x8f, 0x90, 0xa0, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff}[rnd.IntN(15)]
		}
		samples = append(samples, b)
	}
	for _, s := range samples {
		want := utf8.Valid(s)
		// every way of cutting s into two or three fragments
		for i := 0; i <= len(s); i++ {
			for j := i; j <= len(s); j++ {
				var u utf8Stream
				got := u.feed(s[:i], false) && u.feed(s[i:j], false) && u.feed(s[j:], true)
				if got != want {
					t.Fatalf("%x cut at %d,%d: %v, utf8.Valid %v", s, i, j, got, want)
				}
			}
		}
		// one byte per fragment, through the Decoder
		var in []byte
		for i, c := range s {
			b0 := byte(0x00)
			if i == 0 {
				b0 = 0x01
			}
			if i == len(s)-1 {
				b0 |= 0x80
			}
			in = append(in, mf(b0, []byte{c})...)
		}
		l := &eventLog{}
		_, err := (&Decoder{Limit: 100}).Decode(in, l)
		if want {
			if err != nil || !sameEvents(l.events, []event{{kind: "msg", op: OpText, data: string(s)}}) {
				t.Fatalf("%x: err %v, events %v", s, err, l)
			}
		} else {
			requireCode(t, err, StatusInvalidPayload)
		}
	}
}
