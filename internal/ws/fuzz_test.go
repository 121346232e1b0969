package ws

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// payloadWithin reports whether the non-empty p lies inside buf[:n].
func payloadWithin(p, buf []byte, n int) bool {
	if len(p) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	ps := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return ps >= start && ps+uintptr(len(p)) <= start+uintptr(n)
}

// fuzzKey is a fixed mask key, so seeds are reproducible.
var fuzzKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func fk(b0 byte, payload []byte) []byte { return encodeMasked(b0, payload, fuzzKey) }

// fuzzCompress compresses like a client (see compressLikeClient).
func fuzzCompress(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(p)
	w.Flush()
	return bytes.Clone(b.Bytes()[:b.Len()-4])
}

func fuzzSeeds() [][]byte {
	return [][]byte{
		fk(0x81, []byte("Hello")),
		fk(0x82, nil),
		fk(0x81, bytes.Repeat([]byte("x"), 126)),
		fk(0x82, bytes.Repeat([]byte{0xaa}, 300)),
		mfs(fk(0x01, []byte("Hel")), fk(0x89, []byte("ping")), fk(0x80, []byte("lo"))),
		mfs(fk(0x02, []byte{1}), fk(0x00, []byte{2}), fk(0x8a, nil), fk(0x80, []byte{3})),
		fk(0x88, closePayload(1000, "bye")),
		fk(0x88, nil),
		fk(0x88, []byte{0x03}),
		fk(0x88, closePayload(1005, "")),
		mfs(fk(0x81, []byte("a")), fk(0x88, closePayload(1001, "")), fk(0x81, []byte("after"))),
		fk(0xc1, fuzzCompress([]byte("compressed hello hello hello"))),
		mfs(fk(0x41, fuzzCompress([]byte("fragmented and compressed"))[:5]), fk(0x80, fuzzCompress([]byte("fragmented and compressed"))[5:])),
		fk(0xc1, []byte{0xff, 0xff}),
		fk(0x81, []byte{0xc3, 0x28}),
		fk(0x91, []byte("rsv3")),
		fk(0x83, nil),
		{0x81, 0x02, 'h', 'i'},
		binary.BigEndian.AppendUint64([]byte{0x82, 0xff}, 1<<63|1),
		binary.BigEndian.AppendUint64([]byte{0x82, 0xff}, 70000),
		fk(0x81, bytes.Repeat([]byte("y"), 70000))[:20],
		mfs(fk(0x81, []byte("whole")), fk(0x81, []byte("partial"))[:7]),
	}
}

func FuzzParseFrame(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, uint32(1<<16))
		if i%3 == 0 {
			f.Add(s, uint32(4))
		}
	}
	f.Fuzz(func(t *testing.T, orig []byte, lim uint32) {
		limit := int(lim % (1 << 24))
		in := bytes.Clone(orig)
		fr, n, err := ParseFrame(in, limit)
		if n < 0 || n > len(in) {
			t.Fatalf("n %d outside [0, %d]", n, len(in))
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || (pe.Code != StatusProtocolError && pe.Code != StatusTooBig) {
				t.Fatalf("error %v is not a 1002/1009 ProtocolError", err)
			}
			if n != 0 {
				t.Fatalf("n %d with error %v", n, err)
			}
		}
		if n == 0 {
			if fr.Payload != nil {
				t.Fatalf("payload of %d bytes without a frame", len(fr.Payload))
			}
			if !bytes.Equal(in, orig) {
				t.Fatal("input modified although no frame was used")
			}
			if err == nil {
				if fs := FrameSize(orig); fs != 0 && fs <= len(orig) {
					t.Fatalf("incomplete, but FrameSize %d <= %d", fs, len(orig))
				}
			}
			return
		}
		// a whole frame
		if len(fr.Payload) > limit {
			t.Fatalf("payload %d over the limit %d", len(fr.Payload), limit)
		}
		if !payloadWithin(fr.Payload, in, n) {
			t.Fatal("Payload is not within the used input")
		}
		plen := len(fr.Payload)
		if n < 6+plen {
			t.Fatalf("n %d too small for a %d-byte payload", n, plen)
		}
		if plen > 0 && &fr.Payload[plen-1] != &in[n-1] {
			t.Fatal("Payload does not end where the frame ends")
		}
		if fs := FrameSize(orig); fs != n {
			t.Fatalf("FrameSize %d, ParseFrame used %d", fs, n)
		}
		key := orig[n-plen-4 : n-plen]
		for i := range plen {
			if fr.Payload[i] != orig[n-plen+i]^key[i%4] {
				t.Fatalf("payload byte %d not unmasked", i)
			}
		}
		if !bytes.Equal(in[:n-plen], orig[:n-plen]) || !bytes.Equal(in[n:], orig[n:]) {
			t.Fatal("bytes outside the payload were modified")
		}
		if fr.Op != orig[0]&0x0f || fr.Fin != (orig[0]&0x80 != 0) || fr.RSV1 != (orig[0]&0x40 != 0) {
			t.Fatalf("frame flags %+v do not match first byte %#x", fr, orig[0])
		}
		// one byte less is an incomplete frame, not an error
		if _, n2, err2 := ParseFrame(bytes.Clone(orig[:n-1]), limit); n2 != 0 || err2 != nil {
			t.Fatalf("prefix of %d bytes: n %d err %v", n-1, n2, err2)
		}
	})
}

// streamDecode feeds in chunk bytes at a time to a fresh Decoder, stopping
// at the first error or close, and returns the events and the error.
func streamDecode(t *testing.T, limit int, deflate bool, in []byte, chunk int) ([]event, error) {
	d := &Decoder{Limit: limit, Deflate: deflate}
	l := &eventLog{}
	var buf []byte
	for off := 0; off < len(in); off += chunk {
		buf = append(buf, in[off:min(off+chunk, len(in))]...)
		used, err := d.Decode(buf, l)
		if used < 0 || used > len(buf) {
			t.Fatalf("streamed Decode used %d of %d", used, len(buf))
		}
		if err != nil {
			return l.events, err
		}
		if k := len(l.events); k > 0 && l.events[k-1].kind == "close" {
			return l.events, nil
		}
		buf = append(buf[:0], buf[used:]...)
	}
	return l.events, nil
}

func sameCode(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	var pa, pb *ProtocolError
	return errors.As(a, &pa) && errors.As(b, &pb) && pa.Code == pb.Code
}

// FuzzDecodeStream is the Decoder fuzz target. (frame_test.go already holds
// a FuzzDecoder; a second one in the package would not compile, and a name
// containing "FuzzDecoder" would make -fuzz FuzzDecoder ambiguous.)
func FuzzDecodeStream(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, false, uint8(0))
		f.Add(s, true, uint8(6))
	}
	f.Fuzz(func(t *testing.T, orig []byte, deflate bool, chunk uint8) {
		const limit = 1 << 12
		// frame boundaries, from ParseFrame alone
		bounds := map[int]bool{0: true}
		for pos, scratch := 0, bytes.Clone(orig); ; {
			_, n, err := ParseFrame(scratch[pos:], limit)
			if n == 0 || err != nil {
				break
			}
			pos += n
			bounds[pos] = true
		}

		in := bytes.Clone(orig)
		l := &eventLog{}
		used, err := (&Decoder{Limit: limit, Deflate: deflate}).Decode(in, l)
		if used < 0 || used > len(in) {
			t.Fatalf("Decode used %d of %d", used, len(in))
		}
		if !bounds[used] {
			t.Fatalf("Decode used %d bytes, not a frame boundary", used)
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ProtocolError", err)
			}
		}
		for i, e := range l.events {
			switch e.kind {
			case "msg":
				if len(e.data) > limit {
					t.Fatalf("message of %d bytes over the limit", len(e.data))
				}
				if e.op == OpText && !utf8.ValidString(e.data) {
					t.Fatal("invalid UTF-8 delivered as text")
				}
				if e.op != OpText && e.op != OpBinary {
					t.Fatalf("message with opcode %d", e.op)
				}
			case "ping":
				if len(e.data) > 125 {
					t.Fatalf("ping of %d bytes", len(e.data))
				}
			case "close":
				if i != len(l.events)-1 || err != nil {
					t.Fatal("decoding went on after a close frame")
				}
			}
		}
		closed := len(l.events) > 0 && l.events[len(l.events)-1].kind == "close"
		if err == nil && !closed {
			// what is left is an incomplete frame
			if _, n, perr := ParseFrame(bytes.Clone(orig[used:]), limit); n != 0 || perr != nil {
				t.Fatalf("Decode stopped at %d of %d, but a frame follows (n %d, err %v)", used, len(orig), n, perr)
			}
		}

		// the same bytes arriving in pieces give the same result
		streamed, serr := streamDecode(t, limit, deflate, bytes.Clone(orig), 1+int(chunk%32))
		if !sameEvents(streamed, l.events) || !sameCode(serr, err) {
			t.Fatalf("streamed in chunks of %d: %d events, err %v; at once: %d events, err %v",
				1+int(chunk%32), len(streamed), serr, len(l.events), err)
		}
	})
}
