package ws

import (
	"bytes"
	"testing"
)

// Regression tests for RFC 6455 details (issue #8, defect 10).

// Close codes 1012-1014 (Service Restart, Try Again Later, Bad Gateway) are
// registered by IANA for use in close frames; 1015 (TLS handshake) must
// never be sent.
func TestCloseCodesFromTheIANARegistry(t *testing.T) {
	for _, code := range []int{1012, 1013, 1014} {
		l := decodeAll(t, &Decoder{Limit: 100}, mf(0x88, closePayload(code, "restart")))
		if !sameEvents(l.events, []event{{kind: "close", code: code}}) {
			t.Errorf("close %d: events %v", code, l)
		}
	}
	for _, code := range []int{1015, 1016, 1100, 2000} {
		_, err := (&Decoder{Limit: 100}).Decode(mf(0x88, closePayload(code, "")), &eventLog{})
		requireCode(t, err, StatusProtocolError)
	}
}

// A close reason that is not UTF-8 is an invalid payload (1007), not a
// protocol error (RFC 6455 section 8.1; Autobahn case 7.5.1).
func TestCloseReasonInvalidUTF8Is1007(t *testing.T) {
	for _, reason := range []string{"\xff", "ok\xc3", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"} {
		_, err := (&Decoder{Limit: 200}).Decode(mf(0x88, closePayload(1000, reason)), &eventLog{})
		requireCode(t, err, StatusInvalidPayload)
	}
	// a bad code is still reported as such, whatever the reason
	_, err := (&Decoder{Limit: 200}).Decode(mf(0x88, closePayload(1004, "\xff")), &eventLog{})
	requireCode(t, err, StatusProtocolError)
}

// A fragmented text message is refused at the fragment that makes it
// invalid, before the rest arrives (Autobahn 6.4.1-6.4.2 "fail fast").
func TestUTF8FailFastPerFragment(t *testing.T) {
	cases := []struct {
		name  string
		frags [][]byte // the message's first fragments; it never ends
	}{
		{"invalid byte in the 2nd fragment", [][]byte{[]byte("ok"), {0xff}}},
		{"invalid code point in one fragment", [][]byte{[]byte("\xce\xba\xe1\xbd\xb9"), []byte("\xf4\x90\x80\x80")}},
		{"invalid continuation of a split code point", [][]byte{[]byte("\xce\xba\xf4"), []byte("\x90")}},
		{"invalid start at the end of the 1st fragment", [][]byte{[]byte("ok\xf4\x90")}},
		{"surrogate split in two", [][]byte{{'a', 0xed}, {0xa0, 0x80}}},
		{"ASCII where a continuation must be", [][]byte{{'a', 0xe2}, {0x82, 'b'}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Decoder{Limit: 1000}
			l := &eventLog{}
			var err error
			for i, p := range tc.frags {
				b0 := byte(0x00)
				if i == 0 {
					b0 = 0x01
				}
				if _, err = d.Decode(mf(b0, p), l); err != nil {
					if i != len(tc.frags)-1 {
						t.Fatalf("error at fragment %d of %d: %v", i+1, len(tc.frags), err)
					}
					break
				}
			}
			requireCode(t, err, StatusInvalidPayload)
			if len(l.events) != 0 {
				t.Fatalf("events %v", l)
			}
		})
	}
}

// A permessage-deflate message cut short (it ends inside a deflate block)
// is an invalid payload, not a shorter message.
func TestInflateRejectsTruncatedStream(t *testing.T) {
	msg := bytes.Repeat([]byte("a truncated deflate stream must not pass, "), 40)
	z := compressLikeClient(t, msg)
	if got, err := Inflate(z, 1<<20); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("whole stream: %d bytes, %v", len(got), err)
	}
	for cut := 1; cut < len(z); cut++ {
		got, err := Inflate(z[:len(z)-cut], 1<<20)
		if err == nil {
			t.Fatalf("stream cut by %d of %d bytes: accepted, %d of %d bytes out", cut, len(z), len(got), len(msg))
		}
		requireCode(t, err, StatusInvalidPayload)
	}
	// and through the Decoder
	_, err := (&Decoder{Limit: 1 << 20, Deflate: true}).Decode(mf(0xc1, z[:len(z)/2]), &eventLog{})
	requireCode(t, err, StatusInvalidPayload)
}

// A continuation frame that would take the message over the limit is
// refused from its header, as a single frame over the limit is, not after
// up to Limit more bytes were buffered for it (found by FuzzDifferential:
// gobwas/ws and gorilla refuse it from the header).
func TestDecoderRefusesContinuationOverTheLimitFromItsHeader(t *testing.T) {
	first := mf(0x02, make([]byte, 150))
	next := mf(0x80, make([]byte, 100)) // 150+100 > 200
	for _, cut := range []int{2, 6, len(next) - 1} {
		l := &eventLog{}
		_, err := (&Decoder{Limit: 200}).Decode(mfs(first, next[:cut]), l)
		if err == nil {
			t.Fatalf("continuation header + %d bytes: no error yet", cut)
		}
		requireCode(t, err, StatusTooBig)
	}
	// a continuation within the budget, and a ping inside the message, wait
	// for their bytes
	d := &Decoder{Limit: 200}
	if _, err := d.Decode(mfs(first, mf(0x89, make([]byte, 100)), mf(0x80, make([]byte, 50))[:10]), &eventLog{}); err != nil {
		t.Fatal(err)
	}
}

// A control frame announcing a 16- or 64-bit length is refused from its
// first two bytes, not after the length bytes arrive (found by
// FuzzDifferential: gorilla refuses 0x88 0xff at once).
func TestParseFrameRefusesLongControlFrameFromTwoBytes(t *testing.T) {
	for _, in := range [][]byte{{0x88, 0xff}, {0x89, 0xfe}, {0x8a, 0xfe, 0x00}} {
		_, n, err := ParseFrame(in, 1<<20)
		if n != 0 {
			t.Fatalf("%x: n %d", in, n)
		}
		requireCode(t, err, StatusProtocolError)
	}
}

// RSV1 where no extension allows it is refused from the frame's first
// byte, not once the whole frame has arrived (found by FuzzDifferential:
// gobwas/ws and gorilla refuse 0x41 0x93 ... from the header).
func TestDecoderRefusesRSV1FromTheFirstByte(t *testing.T) {
	cases := []struct {
		deflate bool
		in      []byte
	}{
		{false, mf(0xc1, []byte("no deflate negotiated"))[:2]},
		{false, []byte{0x41}},
		{true, mfs(mf(0x41, []byte{0x00}), mf(0xc0, []byte("rsv1 on a continuation"))[:3])},
		{true, mf(0xc9, []byte("rsv1 on a ping"))[:1]},
	}
	for i, tc := range cases {
		_, err := (&Decoder{Limit: 1000, Deflate: tc.deflate}).Decode(tc.in, &eventLog{})
		if err == nil {
			t.Fatalf("case %d (%x): no error yet", i, tc.in)
		}
		requireCode(t, err, StatusProtocolError)
	}
}

// A continuation with nothing to continue, or a new message inside a
// fragmented one, is refused from the frame's first byte (found by
// FuzzDifferential: gorilla refuses 0x80 0x82 at once), and as a protocol
// error even when the frame is also over the limit (as gobwas/ws and
// gorilla, which check the fragmentation state first).
func TestDecoderRefusesBadFragmentationFromTheFirstByte(t *testing.T) {
	cases := [][]byte{
		{0x80},
		mf(0x00, []byte("nothing to continue"))[:2],
		mfs(mf(0x01, []byte("a")), []byte{0x81}),
		mfs(mf(0x01, []byte("a")), mf(0x82, make([]byte, 300))), // also over the limit
		mf(0x80, make([]byte, 300)),                             // also over the limit
	}
	for i, in := range cases {
		_, err := (&Decoder{Limit: 200}).Decode(in, &eventLog{})
		if err == nil {
			t.Fatalf("case %d (%x): no error yet", i, in)
		}
		requireCode(t, err, StatusProtocolError)
	}
}
