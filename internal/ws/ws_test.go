package ws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siobridge/siobridge/internal/wstest"
)

// The helpers below are written independently of the package's own
// encoders (AppendClientFrame etc.) so that a bug shared by encoder and
// parser cannot cancel out. Names are chosen not to collide with
// frame_test.go, which lives in the same package.

// encodeMasked builds a client frame (see wstest.ClientFrame): b0 is
// FIN|RSV1-3|opcode, the payload is masked with key.
func encodeMasked(b0 byte, payload []byte, key [4]byte) []byte {
	return wstest.ClientFrame(b0, payload, key)
}

// maskKey returns a random mask key with no zero byte, so that every
// payload byte is really changed by masking.
func maskKey() [4]byte {
	var k [4]byte
	for i := range k {
		k[i] = byte(1 + rand.IntN(255))
	}
	return k
}

// mf is a masked frame with a random key.
func mf(b0 byte, payload []byte) []byte { return encodeMasked(b0, payload, maskKey()) }

// mfs concatenates frames.
func mfs(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// randText returns n random printable ASCII bytes.
func randText(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(' ' + rand.IntN(95))
	}
	return b
}

// closePayload is a close frame payload with code and reason.
func closePayload(code int, reason string) []byte {
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// requireCode fails unless err is a *ProtocolError with the given code.
func requireCode(t *testing.T, err error, code int) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want *ProtocolError with code %d", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("close code %d (%v), want %d", pe.Code, err, code)
	}
}

// ---------------------------------------------------------------- ParseFrame

func TestParseFrameMaskedTextRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		size   int
		lenMrk byte // the 7-bit length field
		hdr    int  // header bytes before the mask key
	}{
		{"0 bytes, 7-bit length", 0, 0, 2},
		{"125 bytes, 7-bit length", 125, 125, 2},
		{"126 bytes, 16-bit length", 126, 126, 4},
		{"65535 bytes, 16-bit length", 65535, 126, 4},
		{"65536 bytes, 64-bit length", 65536, 127, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload := randText(tc.size)
			key := maskKey()
			f := encodeMasked(0x81, payload, key)
			if len(f) != tc.hdr+4+tc.size || f[1]&0x7f != tc.lenMrk {
				t.Fatalf("test encoder: %d bytes, length field %d", len(f), f[1]&0x7f)
			}
			if got := FrameSize(f); got != len(f) {
				t.Fatalf("FrameSize %d, want %d", got, len(f))
			}
			// two bytes of a following frame must be left alone
			in := append(bytes.Clone(f), 0x81, 0x85)
			fr, n, err := ParseFrame(in, tc.size)
			if err != nil || n != len(f) {
				t.Fatalf("ParseFrame: n %d (want %d), err %v", n, len(f), err)
			}
			if !fr.Fin || fr.RSV1 || fr.Op != OpText {
				t.Fatalf("frame fin %v rsv1 %v op %d", fr.Fin, fr.RSV1, fr.Op)
			}
			if !bytes.Equal(fr.Payload, payload) {
				t.Fatalf("payload differs after unmasking (%d bytes)", len(fr.Payload))
			}
			if tc.size > 0 && &fr.Payload[0] != &in[tc.hdr+4] {
				t.Fatal("Payload does not alias the parsed buffer")
			}
			if in[len(f)] != 0x81 || in[len(f)+1] != 0x85 {
				t.Fatal("bytes after the frame were modified")
			}
			// one byte over the limit is refused
			if tc.size > 0 {
				_, n, err := ParseFrame(bytes.Clone(f), tc.size-1)
				if n != 0 {
					t.Fatalf("over the limit: n %d", n)
				}
				requireCode(t, err, StatusTooBig)
			}
		})
	}
}

func TestParseFrameOtherOpcodesAndFlags(t *testing.T) {
	cases := []struct {
		b0   byte
		fin  bool
		rsv1 bool
		op   byte
	}{
		{0x01, false, false, OpText},
		{0x02, false, false, OpBinary},
		{0x00, false, false, OpContinuation},
		{0x80, true, false, OpContinuation},
		{0x82, true, false, OpBinary},
		{0xc1, true, true, OpText}, // RSV1 is the Decoder's business
		{0x41, false, true, OpText},
		{0x88, true, false, OpClose},
		{0x89, true, false, OpPing},
		{0x8a, true, false, OpPong},
	}
	for _, tc := range cases {
		payload := randText(7)
		fr, n, err := ParseFrame(mf(tc.b0, payload), 1000)
		if err != nil || n != 2+4+7 {
			t.Fatalf("b0 %#x: n %d err %v", tc.b0, n, err)
		}
		if fr.Fin != tc.fin || fr.RSV1 != tc.rsv1 || fr.Op != tc.op || !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("b0 %#x: got fin %v rsv1 %v op %d payload %q", tc.b0, fr.Fin, fr.RSV1, fr.Op, fr.Payload)
		}
	}
}

func TestParseFrameIncompletePrefixes(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536} {
		f := mf(0x81, randText(size))
		orig := bytes.Clone(f)
		for cut := 0; cut < len(f); cut++ {
			// cap-limited, so the parser cannot peek at the rest
			fr, n, err := ParseFrame(f[:cut:cut], 1<<20)
			if n != 0 || err != nil || fr.Payload != nil {
				t.Fatalf("size %d, prefix %d: n %d err %v payload %d bytes", size, cut, n, err, len(fr.Payload))
			}
			if fs := FrameSize(f[:cut:cut]); fs != 0 && fs != len(f) {
				t.Fatalf("size %d, prefix %d: FrameSize %d, want 0 or %d", size, cut, fs, len(f))
			}
		}
		if !bytes.Equal(f, orig) {
			t.Fatalf("size %d: parsing incomplete prefixes modified the buffer", size)
		}
		if _, n, err := ParseFrame(f, 1<<20); n != len(f) || err != nil {
			t.Fatalf("size %d: whole frame: n %d err %v", size, n, err)
		}
	}
}

func TestParseFrameProtocolErrors(t *testing.T) {
	const limit = 100
	u64 := func(prefix []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(bytes.Clone(prefix), v) }
	cases := []struct {
		name string
		in   []byte
		code int
	}{
		{"RSV2", mf(0xa1, []byte("x")), StatusProtocolError},
		{"RSV3", mf(0x91, []byte("x")), StatusProtocolError},
		{"RSV2 and RSV3", mf(0xb1, []byte("x")), StatusProtocolError},
		{"RSV2 header only", []byte{0xa1, 0x81}, StatusProtocolError},
		{"opcode 3", mf(0x83, []byte("x")), StatusProtocolError},
		{"opcode 7", mf(0x87, []byte("x")), StatusProtocolError},
		{"opcode 0xB", mf(0x8b, []byte("x")), StatusProtocolError},
		{"opcode 0xF", mf(0x8f, nil), StatusProtocolError},
		{"unmasked text", []byte{0x81, 0x02, 'h', 'i'}, StatusProtocolError},
		{"unmasked empty", []byte{0x81, 0x00}, StatusProtocolError},
		{"fragmented ping", mf(0x09, []byte("x")), StatusProtocolError},
		{"fragmented pong", mf(0x0a, nil), StatusProtocolError},
		{"fragmented close", mf(0x08, closePayload(1000, "")), StatusProtocolError},
		{"ping of 126 bytes", mf(0x89, randText(126)), StatusProtocolError},
		{"close of 126 bytes", mf(0x88, closePayload(1000, string(randText(124)))), StatusProtocolError},
		{"pong with 64-bit length 200", u64([]byte{0x8a, 0x80 | 127}, 200), StatusProtocolError},
		{"64-bit length with MSB set", u64([]byte{0x82, 0x80 | 127}, 1<<63|5), StatusProtocolError},
		{"64-bit length all ones", u64([]byte{0x82, 0x80 | 127}, math.MaxUint64), StatusProtocolError},
		{"over the limit, 7-bit", mf(0x82, make([]byte, limit+1)), StatusTooBig},
		{"over the limit, 16-bit", mf(0x82, make([]byte, 5000)), StatusTooBig},
		{"over the limit, 64-bit", mf(0x81, make([]byte, 70000)), StatusTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fr, n, err := ParseFrame(bytes.Clone(tc.in), limit)
			if n != 0 || fr.Payload != nil {
				t.Fatalf("n %d, payload %d bytes: an invalid frame was consumed", n, len(fr.Payload))
			}
			requireCode(t, err, tc.code)
		})
	}
}

func TestParseFrameTooBigFromHeaderAlone(t *testing.T) {
	cases := []struct {
		name  string
		hdr   []byte // no mask key, no payload yet
		limit int
	}{
		{"7-bit length", []byte{0x82, 0x80 | 125}, 124},
		{"16-bit length", []byte{0x82, 0x80 | 126, 0x03, 0xe9}, 1000}, // 1001
		{"64-bit length", binary.BigEndian.AppendUint64([]byte{0x81, 0x80 | 127}, 1<<40), 1000},
		{"64-bit length, non-final", binary.BigEndian.AppendUint64([]byte{0x01, 0x80 | 127}, 1001), 1000},
		{"continuation", []byte{0x80, 0x80 | 126, 0x03, 0xe9}, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := ParseFrame(tc.hdr, tc.limit)
			if n != 0 {
				t.Fatalf("n %d", n)
			}
			requireCode(t, err, StatusTooBig)
		})
	}
}

// A Decoder Limit is a plain int; a caller who wants "no limit" may well
// write math.MaxInt. A 14-byte header announcing a 2^63-1 byte payload
// must then be an incomplete frame, not a crash.
func TestParseFrameHugeLimit(t *testing.T) {
	hdr := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, math.MaxInt64)
	hdr = append(hdr, 1, 2, 3, 4) // mask key
	var (
		n   int
		err error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("ParseFrame(14-byte header announcing 2^63-1 bytes, math.MaxInt) panics: %v", r)
			}
		}()
		_, n, err = ParseFrame(hdr, math.MaxInt)
	}()
	if n != 0 || err != nil {
		t.Fatalf("n %d err %v, want an incomplete frame", n, err)
	}
}

// ---------------------------------------------------------------- server frames

// parseServerFrame decodes one unmasked server frame.
func parseServerFrame(t *testing.T, b []byte) (fin, rsv1 bool, op byte, payload []byte, n int) {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("short server frame %x", b)
	}
	if b[1]&0x80 != 0 {
		t.Fatalf("server frame is masked")
	}
	fin, rsv1, op = b[0]&0x80 != 0, b[0]&0x40 != 0, b[0]&0x0f
	if b[0]&0x30 != 0 {
		t.Fatalf("server frame has RSV2/RSV3")
	}
	length, pos := uint64(b[1]&0x7f), 2
	switch length {
	case 126:
		length, pos = uint64(binary.BigEndian.Uint16(b[2:])), 4
		if length < 126 {
			t.Fatalf("non-minimal 16-bit length %d", length)
		}
	case 127:
		length, pos = binary.BigEndian.Uint64(b[2:]), 10
		if length <= 0xffff {
			t.Fatalf("non-minimal 64-bit length %d", length)
		}
	}
	if uint64(len(b)-pos) < length {
		t.Fatalf("server frame truncated: %d of %d payload bytes", len(b)-pos, length)
	}
	return fin, rsv1, op, b[pos : pos+int(length)], pos + int(length)
}

func TestAppendHeaderLengthForms(t *testing.T) {
	cases := []struct {
		fin, rsv1 bool
		op        byte
		length    int
		want      []byte
	}{
		{true, false, OpText, 0, []byte{0x81, 0}},
		{true, false, OpBinary, 125, []byte{0x82, 125}},
		{true, false, OpText, 126, []byte{0x81, 126, 0, 126}},
		{false, false, OpText, 65535, []byte{0x01, 126, 0xff, 0xff}},
		{true, true, OpText, 65536, []byte{0xc1, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{false, true, OpBinary, 1 << 32, []byte{0x42, 127, 0, 0, 0, 1, 0, 0, 0, 0}},
		{true, false, OpPong, 3, []byte{0x8a, 3}},
	}
	for _, tc := range cases {
		got := AppendHeader([]byte("pre"), tc.fin, tc.rsv1, tc.op, tc.length)
		if !bytes.Equal(got, append([]byte("pre"), tc.want...)) {
			t.Errorf("AppendHeader(%v, %v, %d, %d) = %x, want pre+%x", tc.fin, tc.rsv1, tc.op, tc.length, got, tc.want)
		}
	}
}

func TestAppendFrameAndClose(t *testing.T) {
	for _, size := range []int{0, 10, 124, 125, 126, 65534, 65535, 70000} {
		payload := randText(size)
		f := AppendFrame([]byte("keep"), OpText, []byte("4"), payload)
		if !bytes.HasPrefix(f, []byte("keep")) {
			t.Fatal("AppendFrame lost dst")
		}
		fin, rsv1, op, p, n := parseServerFrame(t, f[4:])
		if !fin || rsv1 || op != OpText || n != len(f)-4 || !bytes.Equal(p, append([]byte("4"), payload...)) {
			t.Fatalf("%d: fin %v rsv1 %v op %d n %d/%d", size, fin, rsv1, op, n, len(f)-4)
		}
	}
	c := AppendClose(nil, StatusGoingAway)
	if !bytes.Equal(c, []byte{0x88, 2, 0x03, 0xe9}) {
		t.Fatalf("AppendClose = %x", c)
	}
	code, ok := CloseCode(c[2:])
	if !ok || code != StatusGoingAway {
		t.Fatalf("CloseCode(AppendClose) = %d %v", code, ok)
	}
}

func TestCloseCode(t *testing.T) {
	cases := []struct {
		p    []byte
		code int
		ok   bool
	}{
		{nil, StatusNormal, true},
		{[]byte{0x03}, 0, false},
		{closePayload(1000, ""), 1000, true},
		{closePayload(1000, "bye ✓"), 1000, true},
		{closePayload(1001, ""), 1001, true},
		{closePayload(1002, ""), 1002, true},
		{closePayload(1003, ""), 1003, true},
		{closePayload(1007, ""), 1007, true},
		{closePayload(1011, ""), 1011, true},
		{closePayload(1012, ""), 1012, true},
		{closePayload(1013, ""), 1013, true},
		{closePayload(1014, ""), 1014, true},
		{closePayload(1015, ""), 1015, false},
		{closePayload(1016, ""), 1016, false},
		{closePayload(3000, ""), 3000, true},
		{closePayload(4999, "x"), 4999, true},
		{closePayload(999, ""), 999, false},
		{closePayload(1004, ""), 1004, false},
		{closePayload(1005, ""), 1005, false},
		{closePayload(1006, ""), 1006, false},
		{closePayload(2999, ""), 2999, false},
		{closePayload(5000, ""), 5000, false},
		{closePayload(0, ""), 0, false},
		{append(closePayload(1000, ""), 0xff), 1000, false},
	}
	for _, tc := range cases {
		code, ok := CloseCode(tc.p)
		if ok != tc.ok || (ok && code != tc.code) {
			t.Errorf("CloseCode(%x) = %d %v, want %d %v", tc.p, code, ok, tc.code, tc.ok)
		}
	}
}

// ---------------------------------------------------------------- Decoder

// event is one Handler call.
type event struct {
	kind string // "msg", "ping", "close"
	op   byte
	data string
	code int
}

// eventLog is a Handler recording every call in order (payloads copied).
type eventLog struct {
	events []event
	msgErr error // returned by Message when set
}

func (l *eventLog) Message(op byte, p []byte) error {
	l.events = append(l.events, event{kind: "msg", op: op, data: string(p)})
	return l.msgErr
}
func (l *eventLog) Ping(p []byte) { l.events = append(l.events, event{kind: "ping", data: string(p)}) }
func (l *eventLog) Close(code int) {
	l.events = append(l.events, event{kind: "close", code: code})
}

func (l *eventLog) String() string { return fmt.Sprintf("%+v", l.events) }

func sameEvents(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// decodeAll runs d over in at once and requires that all of it is used.
func decodeAll(t *testing.T, d *Decoder, in []byte) *eventLog {
	t.Helper()
	l := &eventLog{}
	used, err := d.Decode(in, l)
	if err != nil || used != len(in) {
		t.Fatalf("Decode: used %d of %d, err %v (events %v)", used, len(in), err, l)
	}
	return l
}

// decodeStream feeds in to a fresh Decoder chunk bytes at a time, the way
// a reader presents an incomplete frame again with more bytes.
func decodeStream(t *testing.T, limit int, deflate bool, in []byte, chunk int) (*eventLog, error) {
	t.Helper()
	d := &Decoder{Limit: limit, Deflate: deflate}
	l := &eventLog{}
	var buf []byte
	for off := 0; off < len(in); off += chunk {
		buf = append(buf, in[off:min(off+chunk, len(in))]...)
		used, err := d.Decode(buf, l)
		if used < 0 || used > len(buf) {
			t.Fatalf("used %d of %d", used, len(buf))
		}
		if err != nil {
			return l, err
		}
		buf = append(buf[:0], buf[used:]...)
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left over", len(buf))
	}
	return l, nil
}

func TestDecoderReassemblesFragmentedText(t *testing.T) {
	// "ö" (c3 b6) is split between the 2nd and 3rd fragment: only the
	// whole message must be valid UTF-8
	in := mfs(
		mf(0x01, []byte("Hel")),
		mf(0x00, []byte("lo, w\xc3")),
		mf(0x80, []byte("\xb6rld")),
	)
	want := []event{{kind: "msg", op: OpText, data: "Hello, wörld"}}
	l := decodeAll(t, &Decoder{Limit: 1000}, bytes.Clone(in))
	if !sameEvents(l.events, want) {
		t.Fatalf("events %v, want %+v", l, want)
	}
	for _, chunk := range []int{1, 2, 5, 13} {
		l, err := decodeStream(t, 1000, false, bytes.Clone(in), chunk)
		if err != nil || !sameEvents(l.events, want) {
			t.Fatalf("chunks of %d: err %v events %v", chunk, err, l)
		}
	}
	// the same decoder goes on with the next message
	d := &Decoder{Limit: 1000}
	decodeAll(t, d, bytes.Clone(in))
	l = decodeAll(t, d, mfs(mf(0x02, []byte{0xff}), mf(0x80, []byte{0xfe}), mf(0x81, []byte("next"))))
	want = []event{{kind: "msg", op: OpBinary, data: "\xff\xfe"}, {kind: "msg", op: OpText, data: "next"}}
	if !sameEvents(l.events, want) {
		t.Fatalf("after a fragmented message: %v", l)
	}
}

func TestDecoderPingInsideFragmentedMessage(t *testing.T) {
	in := mfs(
		mf(0x01, []byte("ab")),
		mf(0x89, []byte("p1")),
		mf(0x00, []byte("cd")),
		mf(0x8a, []byte("pong is ignored")),
		mf(0x89, nil),
		mf(0x80, []byte("ef")),
	)
	want := []event{
		{kind: "ping", data: "p1"},
		{kind: "ping", data: ""},
		{kind: "msg", op: OpText, data: "abcdef"},
	}
	l := decodeAll(t, &Decoder{Limit: 100}, bytes.Clone(in))
	if !sameEvents(l.events, want) {
		t.Fatalf("events %v, want %+v", l, want)
	}
	l, err := decodeStream(t, 100, false, bytes.Clone(in), 3)
	if err != nil || !sameEvents(l.events, want) {
		t.Fatalf("streamed: err %v events %v", err, l)
	}
}

func TestDecoderBinaryIsNotUTF8Checked(t *testing.T) {
	bad := []byte{0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82}
	l := decodeAll(t, &Decoder{Limit: 100}, mfs(mf(0x82, bad), mf(0x02, bad[:3]), mf(0x80, bad[3:])))
	want := []event{{kind: "msg", op: OpBinary, data: string(bad)}, {kind: "msg", op: OpBinary, data: string(bad)}}
	if !sameEvents(l.events, want) {
		t.Fatalf("events %v", l)
	}
}

func TestDecoderProtocolErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		code int
		want []event // delivered before the error
	}{
		{"continuation without start", mf(0x80, []byte("x")), StatusProtocolError, nil},
		{"non-final continuation without start", mf(0x00, []byte("x")), StatusProtocolError, nil},
		{"continuation after a complete message", mfs(mf(0x81, []byte("a")), mf(0x80, []byte("b"))), StatusProtocolError,
			[]event{{kind: "msg", op: OpText, data: "a"}}},
		{"text inside a fragmented message", mfs(mf(0x01, []byte("a")), mf(0x81, []byte("b"))), StatusProtocolError, nil},
		{"binary inside a fragmented message", mfs(mf(0x01, []byte("a")), mf(0x02, []byte("b"))), StatusProtocolError, nil},
		{"invalid UTF-8", mf(0x81, []byte{'o', 'k', 0xc3, 0x28}), StatusInvalidPayload, nil},
		{"lone continuation byte", mf(0x81, []byte{0x80}), StatusInvalidPayload, nil},
		{"truncated sequence at the end", mf(0x81, []byte{'a', 0xe2, 0x82}), StatusInvalidPayload, nil},
		{"UTF-16 surrogate", mf(0x81, []byte{0xed, 0xa0, 0x80}), StatusInvalidPayload, nil},
		{"invalid UTF-8 in fragments", mfs(mf(0x01, []byte("ok")), mf(0x80, []byte{0xff})), StatusInvalidPayload, nil},
		{"close with 1-byte payload", mf(0x88, []byte{0x03}), StatusProtocolError, nil},
		{"close 1005", mf(0x88, closePayload(1005, "")), StatusProtocolError, nil},
		{"close 999", mf(0x88, closePayload(999, "")), StatusProtocolError, nil},
		{"close 1004", mf(0x88, closePayload(1004, "")), StatusProtocolError, nil},
		{"close 1006", mf(0x88, closePayload(1006, "")), StatusProtocolError, nil},
		{"close reason not UTF-8", mf(0x88, append(closePayload(1000, ""), 0xc3)), StatusInvalidPayload, nil},
		{"RSV1 without deflate", mf(0xc1, []byte("x")), StatusProtocolError, nil},
		{"RSV1 on binary without deflate", mf(0xc2, []byte("x")), StatusProtocolError, nil},
		{"fragments over the limit", mfs(mf(0x02, make([]byte, 60)), mf(0x80, make([]byte, 60))), StatusTooBig, nil},
		{"three fragments over the limit", mfs(mf(0x01, randText(40)), mf(0x00, randText(40)), mf(0x80, randText(40))), StatusTooBig, nil},
		{"single frame over the limit", mf(0x81, randText(101)), StatusTooBig, nil},
		{"frame error after a good message", mfs(mf(0x81, []byte("good")), mf(0x83, nil)), StatusProtocolError,
			[]event{{kind: "msg", op: OpText, data: "good"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &eventLog{}
			_, err := (&Decoder{Limit: 100}).Decode(bytes.Clone(tc.in), l)
			requireCode(t, err, tc.code)
			if !sameEvents(l.events, tc.want) {
				t.Fatalf("events before the error %v, want %+v", l, tc.want)
			}
			// the same error when the bytes trickle in
			_, err = decodeStream(t, 100, false, bytes.Clone(tc.in), 1)
			requireCode(t, err, tc.code)
		})
	}
}

func TestDecoderFragmentsAtTheLimit(t *testing.T) {
	// exactly Limit bytes in total is fine
	l := decodeAll(t, &Decoder{Limit: 120}, mfs(mf(0x01, randText(60)), mf(0x80, randText(60))))
	if len(l.events) != 1 || len(l.events[0].data) != 120 {
		t.Fatalf("events %v", l)
	}
}

func TestDecoderCloseFrames(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		code    int
	}{
		{"1000 with reason", closePayload(1000, "bye"), 1000},
		{"empty payload", nil, 1000},
		{"1001 no reason", closePayload(1001, ""), 1001},
		{"4000 application code", closePayload(4000, "app"), 4000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := mf(0x88, tc.payload)
			after := mf(0x81, []byte("after close"))
			l := &eventLog{}
			used, err := (&Decoder{Limit: 100}).Decode(mfs(cl, after), l)
			if err != nil || used != len(cl) {
				t.Fatalf("used %d (want %d), err %v", used, len(cl), err)
			}
			want := []event{{kind: "close", code: tc.code}}
			if !sameEvents(l.events, want) {
				t.Fatalf("events %v, want %+v (nothing after the close frame)", l, want)
			}
		})
	}
}

func TestDecoderLeavesTrailingBytes(t *testing.T) {
	first := mf(0x81, []byte("first"))
	secondPayload := randText(300) // 16-bit length
	second := mf(0x82, secondPayload)
	secondOrig := bytes.Clone(second)
	for cut := 0; cut < len(second); cut++ {
		in := mfs(first, second[:cut])
		l := &eventLog{}
		d := &Decoder{Limit: 1000}
		used, err := d.Decode(in, l)
		if err != nil || used != len(first) {
			t.Fatalf("cut %d: used %d, want %d, err %v", cut, used, len(first), err)
		}
		if !bytes.Equal(in[len(first):], secondOrig[:cut]) {
			t.Fatalf("cut %d: the unused bytes were modified", cut)
		}
		if len(l.events) != 1 || l.events[0].data != "first" {
			t.Fatalf("cut %d: events %v", cut, l)
		}
		// presented again with the rest, the second frame is decoded
		rest := append(bytes.Clone(in[used:]), secondOrig[cut:]...)
		used, err = d.Decode(rest, l)
		if err != nil || used != len(rest) {
			t.Fatalf("cut %d: second pass used %d of %d, err %v", cut, used, len(rest), err)
		}
		if len(l.events) != 2 || l.events[1].op != OpBinary || l.events[1].data != string(secondPayload) {
			t.Fatalf("cut %d: second message wrong (%d events)", cut, len(l.events))
		}
	}
	if used, err := (&Decoder{Limit: 10}).Decode(nil, &eventLog{}); used != 0 || err != nil {
		t.Fatalf("empty input: %d %v", used, err)
	}
}

func TestDecoderMessageErrorIsReturned(t *testing.T) {
	boom := errors.New("handler refused")
	l := &eventLog{msgErr: boom}
	_, err := (&Decoder{Limit: 100}).Decode(mfs(mf(0x81, []byte("a")), mf(0x81, []byte("b"))), l)
	if !errors.Is(err, boom) || len(l.events) != 1 {
		t.Fatalf("err %v, events %v: want the handler's error after the first message", err, l)
	}
}

// ---------------------------------------------------------------- deflate

// compressLikeClient compresses a message the way a browser does with no
// context takeover: a fresh raw DEFLATE stream, flushed, sync tail removed.
func compressLikeClient(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flush without the sync tail: %x", out)
	}
	return bytes.Clone(out[:len(out)-4])
}

// inflateIndependently decompresses a permessage-deflate payload with
// compress/flate directly (not with Inflate).
func inflateIndependently(t *testing.T, z []byte) []byte {
	t.Helper()
	r := flate.NewReader(bytes.NewReader(append(bytes.Clone(z), 0, 0, 0xff, 0xff)))
	out, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

func big200K() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 200_000; i++ {
		fmt.Fprintf(&b, "42[\"event\",{\"n\":%d,\"room\":\"r%d\"}]", i, i%17)
	}
	return b.Bytes()
}

func TestDeflateInflateRoundTrip(t *testing.T) {
	random := make([]byte, 200_000) // incompressible
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	cases := []struct {
		name            string
		prefix, payload []byte
	}{
		{"empty", nil, nil},
		{"small", nil, []byte("hello, hello, hello")},
		{"small with prefix", []byte("4"), []byte("hello")},
		{"prefix only", []byte("4"), nil},
		{"200 KB text", []byte("4"), big200K()},
		{"200 KB random", nil, random},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := append(bytes.Clone(tc.prefix), tc.payload...)
			z := Deflate(nil, tc.prefix, tc.payload)
			if bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
				t.Fatalf("the sync tail was not removed: %x", z[max(0, len(z)-8):])
			}
			got, err := Inflate(z, len(want))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Inflate: %d bytes (want %d), err %v", len(got), len(want), err)
			}
			if got := inflateIndependently(t, z); !bytes.Equal(got, want) {
				t.Fatalf("compress/flate reads %d bytes, want %d", len(got), len(want))
			}
			// appended to dst, which is kept
			dst := []byte("frame header")
			z2 := Deflate(dst, tc.prefix, tc.payload)
			if !bytes.HasPrefix(z2, []byte("frame header")) {
				t.Fatal("Deflate lost dst")
			}
			if got, err := Inflate(z2[len("frame header"):], len(want)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("after dst: %d bytes, %v", len(got), err)
			}
			// what a client compresses, Inflate reads
			if got, err := Inflate(compressLikeClient(t, want), len(want)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("client-compressed: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestInflateLimit(t *testing.T) {
	bomb := compressLikeClient(t, make([]byte, 1<<20)) // 1 MiB of zeros, ~1 KB compressed
	if len(bomb) > 10_000 {
		t.Fatalf("compressed bomb is %d bytes", len(bomb))
	}
	out, err := Inflate(bomb, 1000)
	if out != nil {
		t.Fatalf("%d bytes returned with the error", len(out))
	}
	requireCode(t, err, StatusTooBig)
	msg := []byte("exactly the limit")
	z := compressLikeClient(t, msg)
	if got, err := Inflate(z, len(msg)); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("at the limit: %q %v", got, err)
	}
	_, err = Inflate(z, len(msg)-1)
	requireCode(t, err, StatusTooBig)
	// garbage is an invalid payload (BTYPE 11 is reserved)
	_, err = Inflate([]byte{0xff, 0xff, 0xff}, 1000)
	requireCode(t, err, StatusInvalidPayload)
}

// With a Limit meaning "anything" (math.MaxInt), the limit arithmetic must
// not turn into "nothing".
func TestInflateHugeLimit(t *testing.T) {
	msg := []byte("hello, hello, hello")
	got, err := Inflate(compressLikeClient(t, msg), math.MaxInt)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestDecoderInflatesClientCompressedFrames(t *testing.T) {
	big := big200K()
	zBig := compressLikeClient(t, big)
	in := mfs(
		mf(0xc1, compressLikeClient(t, []byte("héllo"))),    // one RSV1 text frame
		mf(0x81, []byte("plain")),                           // not compressed
		mf(0xc2, compressLikeClient(t, []byte{0, 1, 2, 3})), // compressed binary
		mf(0x41, zBig[:1000]),                               // fragmented: RSV1 on the first frame only
		mf(0x89, []byte("ping")),
		mf(0x00, zBig[1000:2000]),
		mf(0x80, zBig[2000:]),
		mf(0xc1, compressLikeClient(t, []byte("héllo"))), // a fresh stream each message
		mf(0xc1, []byte{0x00}),                           // empty message as browsers send it
	)
	want := []event{
		{kind: "msg", op: OpText, data: "héllo"},
		{kind: "msg", op: OpText, data: "plain"},
		{kind: "msg", op: OpBinary, data: "\x00\x01\x02\x03"},
		{kind: "ping", data: "ping"},
		{kind: "msg", op: OpText, data: string(big)},
		{kind: "msg", op: OpText, data: "héllo"},
		{kind: "msg", op: OpText, data: ""},
	}
	l := decodeAll(t, &Decoder{Limit: 1 << 20, Deflate: true}, bytes.Clone(in))
	if !sameEvents(l.events, want) {
		t.Fatalf("got %d events, want %d (first: %.80v)", len(l.events), len(want), l)
	}
	ls, err := decodeStream(t, 1<<20, true, bytes.Clone(in), 4096)
	if err != nil || !sameEvents(ls.events, want) {
		t.Fatalf("streamed: err %v, %d events", err, len(ls.events))
	}
}

func TestDecoderDeflateErrors(t *testing.T) {
	cases := []struct {
		name    string
		deflate bool
		limit   int
		in      []byte
		code    int
	}{
		{"RSV1 when deflate was not negotiated", false, 1 << 20, mf(0xc1, compressLikeClient(t, []byte("x"))), StatusProtocolError},
		{"RSV1 on a continuation", true, 1 << 20, mfs(mf(0x41, []byte{}), mf(0xc0, []byte("x"))), StatusProtocolError},
		{"RSV1 on a ping", true, 1 << 20, mf(0xc9, nil), StatusProtocolError},
		{"RSV1 on a close", true, 1 << 20, mf(0xc8, closePayload(1000, "")), StatusProtocolError},
		{"compressed bomb over the limit", true, 10_000, mf(0xc2, compressLikeClient(t, make([]byte, 1<<20))), StatusTooBig},
		{"compressed invalid UTF-8", true, 1 << 20, mf(0xc1, compressLikeClient(t, []byte{'a', 0xff})), StatusInvalidPayload},
		{"corrupt compressed data", true, 1 << 20, mf(0xc1, []byte{0xff, 0xff, 0xff}), StatusInvalidPayload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &eventLog{}
			_, err := (&Decoder{Limit: tc.limit, Deflate: tc.deflate}).Decode(tc.in, l)
			requireCode(t, err, tc.code)
			if len(l.events) != 0 {
				t.Fatalf("events %v", l)
			}
		})
	}
}

// ---------------------------------------------------------------- Accept

type acceptResult struct {
	u   *Upgraded
	err error
}

// rawUpgrade starts a server whose handler calls Accept, sends the given
// request head (and pipelined bytes in the same write) over a raw TCP
// connection and returns the parsed response, the reader positioned after
// it, and what Accept returned. serve, if set, runs with the upgraded
// connection before it is closed.
func rawUpgrade(t *testing.T, allowDeflate bool, head string, pipelined []byte, serve func(*Upgraded)) (*http.Response, *bufio.Reader, acceptResult) {
	t.Helper()
	results := make(chan acceptResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := Accept(w, r, allowDeflate)
		if err == nil {
			if serve != nil {
				serve(u)
			}
			u.Conn.Close()
		}
		results <- acceptResult{u, err}
	}))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(append([]byte(head+"\r\n"), pipelined...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res acceptResult
	select {
	case res = <-results:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not return")
	}
	return resp, br, res
}

const rfcKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 section 1.3

func upgradeHead(extra ...string) string {
	h := "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: " + rfcKey + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h
}

const deflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

func TestAcceptHandshake(t *testing.T) {
	resp, br, res := rawUpgrade(t, true, upgradeHead(), nil, func(u *Upgraded) {
		u.Conn.Write(AppendFrame(nil, OpText, []byte("4"), []byte("hello")))
		u.Conn.Write(AppendClose(nil, StatusNormal))
	})
	if res.err != nil || res.u == nil {
		t.Fatalf("Accept: %v", res.err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("Upgrade %q Connection %q", resp.Header.Get("Upgrade"), resp.Header.Get("Connection"))
	}
	if v := resp.Header.Values("Sec-WebSocket-Extensions"); len(v) != 0 || res.u.Deflate {
		t.Fatalf("extensions %q / Deflate %v without an offer", v, res.u.Deflate)
	}
	if len(res.u.Buffered) != 0 {
		t.Fatalf("Buffered %q with nothing pipelined", res.u.Buffered)
	}
	// the server's frames follow the response on the wire
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	fin, _, op, p, n := parseServerFrame(t, rest)
	if !fin || op != OpText || string(p) != "4hello" {
		t.Fatalf("first frame op %d %q", op, p)
	}
	_, _, op, p, n2 := parseServerFrame(t, rest[n:])
	if op != OpClose || n+n2 != len(rest) {
		t.Fatalf("second frame op %d, %d trailing bytes", op, len(rest)-n-n2)
	}
	if code, ok := CloseCode(p); !ok || code != StatusNormal {
		t.Fatalf("close code %d %v", code, ok)
	}
}

func TestAcceptKeyIsHashed(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	head := strings.Replace(upgradeHead(), rfcKey, key, 1)
	resp, _, res := rawUpgrade(t, false, head, nil, nil)
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if res.err != nil || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("accept %q, err %v", resp.Header.Get("Sec-WebSocket-Accept"), res.err)
	}
}

func TestAcceptDeflateNegotiation(t *testing.T) {
	cases := []struct {
		name  string
		allow bool
		offer string // "" = no Sec-WebSocket-Extensions header
		want  bool
	}{
		{"plain offer", true, "permessage-deflate", true},
		{"offer with client_max_window_bits", true, "permessage-deflate; client_max_window_bits", true},
		{"offer with both no_context_takeover", true, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"server_max_window_bits=15", true, "permessage-deflate; server_max_window_bits=15", true},
		{"second offer acceptable", true, "permessage-deflate; server_max_window_bits=10, permessage-deflate", true},
		{"deflate not allowed", false, "permessage-deflate; client_max_window_bits", false},
		{"not offered", true, "", false},
		{"server_max_window_bits=10", true, "permessage-deflate; server_max_window_bits=10", false},
		{"other extension", true, "x-webkit-deflate-frame", false},
		{"unknown parameter", true, "permessage-deflate; foo=bar", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.offer != "" {
				extra = append(extra, "Sec-WebSocket-Extensions: "+tc.offer)
			}
			resp, _, res := rawUpgrade(t, tc.allow, upgradeHead(extra...), nil, nil)
			if res.err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, err %v", resp.StatusCode, res.err)
			}
			got := resp.Header.Values("Sec-WebSocket-Extensions")
			if tc.want {
				if len(got) != 1 || got[0] != deflateResponse || !res.u.Deflate {
					t.Fatalf("extensions %q, Deflate %v; want %q", got, res.u.Deflate, deflateResponse)
				}
			} else if len(got) != 0 || res.u.Deflate {
				t.Fatalf("extensions %q, Deflate %v; want none", got, res.u.Deflate)
			}
		})
	}
}

func TestAcceptPipelinedFrame(t *testing.T) {
	early := mfs(mf(0x81, []byte("2probe")), mf(0x81, []byte("5")))
	want := bytes.Clone(early)
	resp, _, res := rawUpgrade(t, false, upgradeHead(), early, nil)
	if res.err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, err %v", resp.StatusCode, res.err)
	}
	if !bytes.Equal(res.u.Buffered, want) {
		t.Fatalf("Buffered %x, want %x", res.u.Buffered, want)
	}
	l := decodeAll(t, &Decoder{Limit: 100}, res.u.Buffered)
	if len(l.events) != 2 || l.events[0].data != "2probe" || l.events[1].data != "5" {
		t.Fatalf("decoded %v", l)
	}
}

func TestAcceptRejects(t *testing.T) {
	good := upgradeHead()
	cases := []struct {
		name   string
		head   string
		status int
	}{
		{"version 8", strings.Replace(good, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 1), http.StatusBadRequest},
		{"no version", strings.Replace(good, "Sec-WebSocket-Version: 13\r\n", "", 1), http.StatusBadRequest},
		{"no Upgrade header", strings.Replace(good, "Upgrade: websocket\r\n", "", 1), http.StatusUpgradeRequired},
		{"Upgrade not websocket", strings.Replace(good, "Upgrade: websocket", "Upgrade: h2c", 1), http.StatusUpgradeRequired},
		{"Connection without upgrade", strings.Replace(good, "Connection: keep-alive, Upgrade", "Connection: keep-alive", 1), http.StatusUpgradeRequired},
		{"no key", strings.Replace(good, "Sec-WebSocket-Key: "+rfcKey+"\r\n", "", 1), http.StatusBadRequest},
		{"key not 16 bytes", strings.Replace(good, rfcKey, base64.StdEncoding.EncodeToString([]byte("short")), 1), http.StatusBadRequest},
		{"key not base64", strings.Replace(good, rfcKey, "!!!!!!!!!!!!!!!!!!!!!!!=", 1), http.StatusBadRequest},
		{"POST", strings.Replace(good, "GET ", "POST ", 1) + "Content-Length: 0\r\n", http.StatusMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, res := rawUpgrade(t, true, tc.head, nil, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if res.err == nil || res.u != nil {
				t.Fatalf("Accept returned %v, %v; want an error", res.u, res.err)
			}
			if resp.Header.Get("Sec-WebSocket-Accept") != "" {
				t.Fatal("Sec-WebSocket-Accept on a refused handshake")
			}
			if tc.status == http.StatusBadRequest && strings.Contains(tc.name, "version") && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("Sec-WebSocket-Version %q, want 13 (RFC 6455 4.4)", resp.Header.Get("Sec-WebSocket-Version"))
			}
		})
	}
}
