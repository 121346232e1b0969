package ws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// clientFrame encodes a frame the way a client does (masked).
func clientFrame(b0 byte, payload []byte) []byte {
	var key [4]byte
	rand.Read(key[:])
	return AppendClientFrame(nil, b0, payload, key)
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error %v, want close code %d", err, code)
	}
}

func TestParseFrameLengths(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		payload := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		f := clientFrame(0x81, payload)
		if FrameSize(f) != len(f) {
			t.Fatalf("%d: FrameSize %d, want %d", n, FrameSize(f), len(f))
		}
		// every strict prefix is incomplete, never an error
		for _, cut := range []int{0, 1, 2, 3, len(f) / 2, len(f) - 1} {
			if cut >= len(f) {
				continue
			}
			if _, used, err := ParseFrame(append([]byte(nil), f[:cut]...), 1<<20); used != 0 || err != nil {
				t.Fatalf("%d bytes, prefix %d: used %d err %v", n, cut, used, err)
			}
		}
		buf := append(append([]byte(nil), f...), 0x81) // and a byte of the next frame
		fr, used, err := ParseFrame(buf, 1<<20)
		if err != nil || used != len(f) {
			t.Fatalf("%d bytes: used %d of %d, err %v", n, used, len(f), err)
		}
		if !fr.Fin || fr.Op != OpText || !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("%d bytes: frame %+v", n, fr.Op)
		}
	}
}

func TestParseFrameErrors(t *testing.T) {
	unmasked := []byte{0x81, 2, 'h', 'i'}
	long := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, 1<<63|5)
	cases := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"RSV2", clientFrame(0xa1, []byte("x")), StatusProtocolError},
		{"RSV3", clientFrame(0x91, []byte("x")), StatusProtocolError},
		{"opcode 3", clientFrame(0x83, []byte("x")), StatusProtocolError},
		{"unmasked", unmasked, StatusProtocolError},
		{"fragmented ping", clientFrame(0x09, []byte("x")), StatusProtocolError},
		{"long ping", clientFrame(0x89, bytes.Repeat([]byte("x"), 126)), StatusProtocolError},
		{"length MSB", long, StatusProtocolError},
		{"over the limit", clientFrame(0x82, make([]byte, 101)), StatusTooBig},
	}
	for _, tc := range cases {
		_, _, err := ParseFrame(tc.frame, 100)
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		wantCode(t, err, tc.code)
	}
	// too big is known from the header alone, before the payload arrives
	hdr := clientFrame(0x82, make([]byte, 5000))[:8]
	if _, _, err := ParseFrame(hdr, 100); err == nil {
		t.Fatal("an oversize frame was buffered before being refused")
	}
}

// recorder is a Handler that keeps what it gets.
type recorder struct {
	msgs   []string
	ops    []byte
	pings  []string
	closes []int
}

func (r *recorder) Message(op byte, p []byte) error {
	r.msgs = append(r.msgs, string(p))
	r.ops = append(r.ops, op)
	return nil
}
func (r *recorder) Ping(p []byte)  { r.pings = append(r.pings, string(p)) }
func (r *recorder) Close(code int) { r.closes = append(r.closes, code) }

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func TestDecoderFragmentsAndControlFrames(t *testing.T) {
	d := &Decoder{Limit: 1000}
	r := &recorder{}
	in := cat(
		clientFrame(0x01, []byte("hel")),
		clientFrame(0x89, []byte("ping!")),
		clientFrame(0x00, []byte("lo ")),
		clientFrame(0x80, []byte("world")),
		clientFrame(0x82, []byte{0xff, 0xfe}), // binary: no UTF-8 check
		clientFrame(0x8A, []byte("pong")),     // ignored
	)
	next := clientFrame(0x81, []byte("next"))
	used, err := d.Decode(append(in, next[:3]...), r)
	if err != nil || used != len(in) {
		t.Fatalf("used %d of %d, err %v", used, len(in), err)
	}
	if len(r.msgs) != 2 || r.msgs[0] != "hello world" || r.ops[0] != OpText || r.msgs[1] != "\xff\xfe" || r.ops[1] != OpBinary {
		t.Fatalf("messages %q ops %v", r.msgs, r.ops)
	}
	if len(r.pings) != 1 || r.pings[0] != "ping!" {
		t.Fatalf("pings %q", r.pings)
	}
	// the close frame stops decoding; what follows is not used
	closeFrame := clientFrame(0x88, append([]byte{0x03, 0xe8}, "bye"...))
	used, err = d.Decode(cat(closeFrame, next), r)
	if err != nil || used != len(closeFrame) || len(r.closes) != 1 || r.closes[0] != 1000 {
		t.Fatalf("close: used %d err %v closes %v", used, err, r.closes)
	}
	if _, err := d.Decode(clientFrame(0x88, nil), r); err != nil || r.closes[1] != StatusNormal {
		t.Fatalf("empty close: %v %v", err, r.closes)
	}
}

func TestDecoderErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		code int
	}{
		{"continuation first", clientFrame(0x80, []byte("x")), StatusProtocolError},
		{"text inside a fragmented message", cat(clientFrame(0x01, []byte("a")), clientFrame(0x81, []byte("b"))), StatusProtocolError},
		{"invalid UTF-8", clientFrame(0x81, []byte{0xc3, 0x28}), StatusInvalidPayload},
		{"invalid UTF-8 across fragments", cat(clientFrame(0x01, []byte{0xe2, 0x82}), clientFrame(0x80, []byte{0x28})), StatusInvalidPayload},
		{"fragments over the limit", cat(clientFrame(0x02, make([]byte, 60)), clientFrame(0x80, make([]byte, 60))), StatusTooBig},
		{"close with 1 byte", clientFrame(0x88, []byte{3}), StatusProtocolError},
		{"close 1005", clientFrame(0x88, []byte{0x03, 0xed}), StatusProtocolError},
		{"close 999", clientFrame(0x88, []byte{0x03, 0xe7}), StatusProtocolError},
		{"close 1004", clientFrame(0x88, []byte{0x03, 0xec}), StatusProtocolError},
		{"close reason not UTF-8", clientFrame(0x88, []byte{0x03, 0xe8, 0xff}), StatusInvalidPayload},
		{"RSV1 without deflate", clientFrame(0xc1, []byte("x")), StatusProtocolError},
	}
	for _, tc := range cases {
		_, err := (&Decoder{Limit: 100}).Decode(tc.in, &recorder{})
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		wantCode(t, err, tc.code)
	}
}

// clientDeflate compresses like a browser: raw DEFLATE, flushed, without
// the 00 00 ff ff tail.
func clientDeflate(t *testing.T, p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write(p)
	w.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("flate flush without the sync tail")
	}
	return out[:len(out)-4]
}

func TestDeflate(t *testing.T) {
	big := bytes.Repeat([]byte("siobridge fan-out "), 12000) // ~200 KB
	for _, p := range [][]byte{nil, []byte("4hello"), big} {
		z := Deflate(nil, p[:min(1, len(p))], p[min(1, len(p)):])
		got, err := Inflate(z, 1<<20)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: round trip gave %d bytes, %v", len(p), len(got), err)
		}
	}
	// what a client compresses, the decoder inflates (RSV1 on the first frame)
	d := &Decoder{Limit: 1 << 20, Deflate: true}
	r := &recorder{}
	z := clientDeflate(t, big)
	in := cat(clientFrame(0x41, z[:100]), clientFrame(0x80, z[100:]), clientFrame(0x81, []byte("plain")))
	if _, err := d.Decode(in, r); err != nil || len(r.msgs) != 2 || r.msgs[0] != string(big) || r.msgs[1] != "plain" {
		t.Fatalf("deflated message: %v, %d messages", err, len(r.msgs))
	}
	if _, err := Inflate(clientDeflate(t, big), 1000); err == nil {
		t.Fatal("a bomb passed the limit")
	} else {
		wantCode(t, err, StatusTooBig)
	}
	if _, err := (&Decoder{Limit: 100, Deflate: true}).Decode(clientFrame(0xc0, []byte("x")), &recorder{}); err == nil {
		t.Fatal("RSV1 on a continuation frame accepted")
	}
}

// handshake sends a raw upgrade request to a server running Accept and
// returns the response and what Accept returned.
func handshake(t *testing.T, deflate bool, headers string, extra []byte) (*http.Response, *Upgraded) {
	t.Helper()
	got := make(chan *Upgraded, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := Accept(w, r, deflate)
		if u != nil {
			// wait until the pipelined bytes were sent with the request
			time.Sleep(50 * time.Millisecond)
			u.Conn.Close()
		}
		got <- u
	}))
	defer hs.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", headers)
	conn.Write(append([]byte(req), extra...))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, <-got
}

const goodHeaders = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

func TestAccept(t *testing.T) {
	frame := clientFrame(0x81, []byte("early"))
	resp, u := handshake(t, true, goodHeaders+"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", frame)
	if resp.StatusCode != 101 || u == nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" { // RFC 6455 section 1.3
		t.Fatalf("accept %q", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate; server_no_context_takeover; client_no_context_takeover" || !u.Deflate {
		t.Fatalf("extensions %q deflate %v", got, u.Deflate)
	}
	if !bytes.Equal(u.Buffered, frame) {
		t.Fatalf("pipelined frame: %q", u.Buffered)
	}
	// deflate not allowed, or an offer we cannot honour: no extension
	for _, tc := range []struct {
		allow bool
		offer string
	}{
		{false, "permessage-deflate"},
		{true, "permessage-deflate; server_max_window_bits=10"},
		{true, "x-webkit-deflate-frame"},
	} {
		resp, u := handshake(t, tc.allow, goodHeaders+"Sec-WebSocket-Extensions: "+tc.offer+"\r\n", nil)
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Extensions") != "" || u.Deflate {
			t.Fatalf("%v %q: status %d, extensions %q", tc.allow, tc.offer, resp.StatusCode, resp.Header.Get("Sec-WebSocket-Extensions"))
		}
	}
	// bad requests
	for _, tc := range []struct {
		headers string
		status  int
	}{
		{strings.Replace(goodHeaders, "Version: 13", "Version: 8", 1), 400},
		{strings.Replace(goodHeaders, "Upgrade: websocket\r\n", "", 1), 426},
		{strings.Replace(goodHeaders, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1), 400},
	} {
		resp, u := handshake(t, true, tc.headers, nil)
		if resp.StatusCode != tc.status || u != nil {
			t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
		}
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add(clientFrame(0x81, []byte("4hello")), false)
	f.Add(cat(clientFrame(0x01, []byte("a")), clientFrame(0x89, nil), clientFrame(0x80, []byte("b"))), false)
	f.Add(clientFrame(0x88, []byte{0x03, 0xe8}), false)
	f.Add(clientFrame(0xc1, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), true)
	f.Fuzz(func(t *testing.T, in []byte, deflate bool) {
		orig := append([]byte(nil), in...)
		fr, n, err := ParseFrame(orig, 1<<16)
		if n < 0 || n > len(in) || (err != nil && n != 0) {
			t.Fatalf("ParseFrame used %d of %d (err %v)", n, len(in), err)
		}
		if n > 0 && len(fr.Payload) > n {
			t.Fatalf("payload longer than the frame")
		}
		used, _ := (&Decoder{Limit: 1 << 16, Deflate: deflate}).Decode(in, &recorder{})
		if used < 0 || used > len(in) {
			t.Fatalf("Decode used %d of %d", used, len(in))
		}
	})
}
