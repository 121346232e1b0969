// Package ws is the server side of RFC 6455 WebSocket that the Engine.IO
// transport needs, written so that an idle connection costs no goroutine and
// no buffer: Accept performs the opening handshake and hijacks the
// connection, and the frame functions parse and build frames in caller
// buffers. permessage-deflate (RFC 7692) is supported without context
// takeover, so a compressed broadcast can be compressed once for everyone.
package ws

import (
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"
)

// Opcodes.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Close status codes used by the server.
const (
	StatusNormal          = 1000
	StatusGoingAway       = 1001
	StatusProtocolError   = 1002
	StatusInvalidPayload  = 1007
	StatusPolicyViolation = 1008
	StatusTooBig          = 1009
)

// ProtocolError is a violation of RFC 6455 by the peer; Code is the close
// status to answer with.
type ProtocolError struct {
	Code   int
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

func protoErr(code int, reason string) error { return &ProtocolError{Code: code, Reason: reason} }

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Upgraded is a hijacked connection after a successful handshake.
type Upgraded struct {
	Conn net.Conn
	// Buffered holds bytes the client sent after its handshake request
	// that were already read from the connection.
	Buffered []byte
	// Deflate is true when permessage-deflate was negotiated (no context
	// takeover in either direction).
	Deflate bool
}

// headerHasToken reports whether a comma-separated header contains token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// negotiateDeflate returns the extension response when one of the client's
// permessage-deflate offers can be accepted without context takeover with a
// 32 KiB server window (compress/flate's only window size).
func negotiateDeflate(h http.Header) (string, bool) {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
	offers:
		for _, offer := range strings.Split(v, ",") {
			params := strings.Split(offer, ";")
			if strings.TrimSpace(params[0]) != "permessage-deflate" {
				continue
			}
			for _, p := range params[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				switch strings.TrimSpace(k) {
				case "server_no_context_takeover", "client_no_context_takeover", "client_max_window_bits":
				case "server_max_window_bits":
					if strings.Trim(strings.TrimSpace(val), `"`) != "15" {
						continue offers // we cannot shrink our window
					}
				default:
					continue offers
				}
			}
			return "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true
		}
	}
	return "", false
}

// Accept validates a WebSocket opening handshake, answers 101 and hijacks
// the connection. On a bad request it answers with an HTTP error and
// returns an error. deflate allows permessage-deflate when offered.
func Accept(w http.ResponseWriter, r *http.Request, deflate bool) (*Upgraded, error) {
	u, resp, err := Upgrade(w, r, deflate)
	if err != nil {
		return nil, err
	}
	if _, err := u.Conn.Write(resp); err != nil {
		u.Conn.Close()
		return nil, fmt.Errorf("websocket: write handshake response: %w", err)
	}
	return u, nil
}

// Upgrade is Accept without the answer: it returns the 101 response for
// the caller to write, so that the first frames can go with it in one
// write (one system call, one packet).
func Upgrade(w http.ResponseWriter, r *http.Request, deflate bool) (u *Upgraded, resp []byte, err error) {
	fail := func(code int, msg string) (*Upgraded, []byte, error) {
		http.Error(w, msg, code)
		return nil, nil, fmt.Errorf("websocket: bad handshake: %s", msg)
	}
	if r.Method != http.MethodGet {
		return fail(http.StatusMethodNotAllowed, "WebSocket handshake must be a GET")
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return fail(http.StatusUpgradeRequired, "WebSocket protocol violation: Connection/Upgrade headers missing")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return fail(http.StatusBadRequest, "unsupported WebSocket version (want 13)")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return fail(http.StatusBadRequest, "invalid Sec-WebSocket-Key")
	}
	ext, useDeflate := "", false
	if deflate {
		ext, useDeflate = negotiateDeflate(r.Header)
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return fail(http.StatusInternalServerError, "response does not support hijacking")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: hijack: %w", err)
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
		buffered = bytes.Clone(buffered)
	}
	sum := sha1.Sum([]byte(key + acceptGUID))
	resp = make([]byte, 0, 384) // room for the caller's first frames
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = base64.StdEncoding.AppendEncode(resp, sum[:])
	resp = append(resp, "\r\n"...)
	if useDeflate {
		resp = append(resp, "Sec-WebSocket-Extensions: "...)
		resp = append(resp, ext...)
		resp = append(resp, "\r\n"...)
	}
	resp = append(resp, "\r\n"...)
	return &Upgraded{Conn: conn, Buffered: buffered, Deflate: useDeflate}, resp, nil
}

// Frame is one parsed frame; Payload is unmasked in place and aliases the
// parsed buffer.
type Frame struct {
	Fin     bool
	RSV1    bool
	Op      byte
	Payload []byte
}

// ParseFrame parses one client frame at the start of buf. It returns the
// frame and the bytes it used, or n == 0 when buf does not hold a whole
// frame yet. A frame whose payload is longer than limit is refused with
// StatusTooBig before it is buffered.
func ParseFrame(buf []byte, limit int) (f Frame, n int, err error) {
	if len(buf) < 2 {
		return f, 0, nil
	}
	b0, b1 := buf[0], buf[1]
	f.Fin = b0&0x80 != 0
	f.RSV1 = b0&0x40 != 0
	f.Op = b0 & 0x0f
	if b0&0x30 != 0 {
		return f, 0, protoErr(StatusProtocolError, "reserved bits set")
	}
	switch f.Op {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		if !f.Fin {
			return f, 0, protoErr(StatusProtocolError, "fragmented control frame")
		}
	default:
		return f, 0, protoErr(StatusProtocolError, fmt.Sprintf("unknown opcode %d", f.Op))
	}
	if b1&0x80 == 0 {
		return f, 0, protoErr(StatusProtocolError, "unmasked client frame")
	}
	length := uint64(b1 & 0x7f)
	if f.Op >= OpClose && length > 125 { // a 16- or 64-bit length: refused before it arrives
		return f, 0, protoErr(StatusProtocolError, "control frame too long")
	}
	pos := 2
	switch length {
	case 126:
		if len(buf) < 4 {
			return f, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(buf[2:]))
		pos = 4
	case 127:
		if len(buf) < 10 {
			return f, 0, nil
		}
		length = binary.BigEndian.Uint64(buf[2:])
		pos = 10
		if length>>63 != 0 {
			return f, 0, protoErr(StatusProtocolError, "invalid payload length")
		}
	}
	if length > uint64(limit) {
		return f, 0, protoErr(StatusTooBig, "message too big")
	}
	if len(buf) < pos+4 || uint64(len(buf)-pos-4) < length { // no int overflow for huge lengths
		return f, 0, nil
	}
	var key [4]byte
	copy(key[:], buf[pos:pos+4])
	pos += 4
	f.Payload = buf[pos : pos+int(length)]
	mask(f.Payload, key)
	return f, pos + int(length), nil
}

// FrameSize returns how many bytes the frame starting at buf needs in
// total, or 0 if its header is incomplete.
func FrameSize(buf []byte) int {
	if len(buf) < 2 {
		return 0
	}
	length, pos := int(buf[1]&0x7f), 2
	switch length {
	case 126:
		if len(buf) < 4 {
			return 0
		}
		length, pos = int(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return 0
		}
		length, pos = int(binary.BigEndian.Uint64(buf[2:])&(1<<62-1)), 10
	}
	if buf[1]&0x80 != 0 {
		pos += 4
	}
	return pos + length
}

func mask(b []byte, key [4]byte) {
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// AppendHeader appends an unmasked server frame header.
func AppendHeader(dst []byte, fin, rsv1 bool, op byte, length int) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	switch {
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// AppendClientFrame appends a frame as a client sends it: first byte b0
// (FIN, RSV and opcode bits), payload masked with key. Servers never send
// these; load generators and tests do.
func AppendClientFrame(dst []byte, b0 byte, payload []byte, key [4]byte) []byte {
	dst = AppendHeader(dst, b0&0x80 != 0, b0&0x40 != 0, b0&0x0f, len(payload))
	dst[len(dst)-headerLenBytes(len(payload))] |= b0 & 0x30 // RSV2/RSV3, for tests that send them
	dst[len(dst)-headerLenBytes(len(payload))+1] |= 0x80    // MASK
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	mask(dst[start:], key)
	return dst
}

// headerLenBytes is the size of an unmasked header for a payload of n bytes.
func headerLenBytes(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// AppendFrame appends a whole unfragmented server frame carrying prefix
// followed by payload (prefix lets Engine.IO add its packet type without a
// copy of its own).
func AppendFrame(dst []byte, op byte, prefix, payload []byte) []byte {
	dst = AppendHeader(dst, true, false, op, len(prefix)+len(payload))
	dst = append(dst, prefix...)
	return append(dst, payload...)
}

// AppendClose appends a close frame with code.
func AppendClose(dst []byte, code int) []byte {
	dst = AppendHeader(dst, true, false, OpClose, 2)
	return append(dst, byte(code>>8), byte(code))
}

// CloseCode returns the status code of a close frame payload and whether
// the payload is valid (RFC 6455 section 7.4).
func CloseCode(p []byte) (int, bool) {
	code, err := ParseClose(p)
	return code, err == nil
}

// ParseClose returns the status code of a close frame payload, or a
// *ProtocolError with the code to answer: 1002 for a missing or invalid
// status code, 1007 for a reason that is not UTF-8 (RFC 6455 section 8.1).
// Valid codes are those the IANA registry defines for use in a close frame
// (1000-1003, 1007-1014) and the ranges for libraries and applications
// (3000-4999); 1004-1006 and 1015 must never be sent.
func ParseClose(p []byte) (int, error) {
	switch {
	case len(p) == 0:
		return StatusNormal, nil
	case len(p) == 1:
		return 0, protoErr(StatusProtocolError, "close frame with a 1-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	switch {
	case code >= 3000 && code <= 4999:
	case code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006:
	default:
		return code, protoErr(StatusProtocolError, fmt.Sprintf("invalid close code %d", code))
	}
	if !utf8.Valid(p[2:]) {
		return code, protoErr(StatusInvalidPayload, "invalid UTF-8 in a close reason")
	}
	return code, nil
}

// ---------------------------------------------------------------- deflate

var (
	flateWriters sync.Pool
	flateReaders sync.Pool
	deflateTail  = []byte{0x00, 0x00, 0xff, 0xff}
)

// Deflate compresses a message for permessage-deflate without context
// takeover and appends it, tail removed, to dst.
func Deflate(dst []byte, prefix, payload []byte) []byte {
	buf := bytes.NewBuffer(dst)
	fw, _ := flateWriters.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(buf, flate.BestSpeed)
	} else {
		fw.Reset(buf)
	}
	fw.Write(prefix)
	fw.Write(payload)
	fw.Flush()
	flateWriters.Put(fw)
	out := buf.Bytes()
	if bytes.HasSuffix(out, deflateTail) {
		out = out[:len(out)-4]
	}
	return out
}

// Inflate decompresses one permessage-deflate message, refusing output
// longer than limit.
func Inflate(p []byte, limit int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail), bytes.NewReader([]byte{0x01, 0x00, 0x00, 0xff, 0xff}))
	fr, _ := flateReaders.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else {
		fr.(flate.Resetter).Reset(src, nil)
	}
	defer flateReaders.Put(fr)
	max := int64(limit)
	if max < math.MaxInt64 {
		max++ // one byte more tells "over the limit" from "exactly the limit"
	}
	out, err := io.ReadAll(io.LimitReader(fr, max))
	if err != nil {
		// io.ErrUnexpectedEOF included: the message ended inside a deflate
		// block, before the empty stored block the sender must end it with
		// (and we append for it): it is truncated.
		return nil, protoErr(StatusInvalidPayload, "bad compressed message")
	}
	if len(out) > limit {
		return nil, protoErr(StatusTooBig, "message too big")
	}
	return out, nil
}

// ---------------------------------------------------------------- messages

// Handler receives what a Decoder finds.
type Handler interface {
	// Message gets a whole data message (OpText or OpBinary). p aliases
	// the decoded buffer: copy it to keep it.
	Message(op byte, p []byte) error
	// Ping gets a ping's payload (answer with a pong).
	Ping(p []byte)
	// Close gets the status of a close frame (answer, then close).
	Close(code int)
}

// Decoder turns client frames into messages, reassembling fragments and
// decompressing. It holds memory only while a fragmented message is in
// flight.
type Decoder struct {
	Limit   int  // the largest message accepted
	Deflate bool // permessage-deflate was negotiated

	frag    []byte
	fragOp  byte
	fragZip bool
	inFrag  bool
	text    utf8Stream // an uncompressed fragmented text message, checked per fragment
}

// utf8Stream checks UTF-8 a fragment at a time, so an invalid text message
// is refused at the fragment that makes it invalid (RFC 6455 section 8.1,
// "fail fast"), while a code point split across fragments is fine.
type utf8Stream struct {
	tail [utf8.UTFMax]byte // the start of a code point the next fragment completes
	n    int
}

// feed checks the next fragment p; fin says it is the last one. It reports
// false as soon as the text so far cannot be the start of valid UTF-8.
func (u *utf8Stream) feed(p []byte, fin bool) bool {
	if u.n > 0 {
		need := 4
		switch {
		case u.tail[0] < 0xe0:
			need = 2
		case u.tail[0] < 0xf0:
			need = 3
		}
		for u.n < need && len(p) > 0 {
			u.tail[u.n] = p[0]
			u.n++
			p = p[1:]
		}
		if u.n < need {
			// still incomplete: fine if it is a valid start
			return !fin && !utf8.FullRune(u.tail[:u.n])
		}
		if !utf8.Valid(u.tail[:u.n]) {
			return false
		}
		u.n = 0
	}
	// keep an incomplete but so far valid code point at the end for later
	cut := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		if !utf8.RuneStart(p[i]) {
			continue
		}
		if !utf8.FullRune(p[i:]) {
			cut = i
		}
		break
	}
	if !utf8.Valid(p[:cut]) {
		return false
	}
	u.n = copy(u.tail[:], p[cut:])
	return !fin || u.n == 0
}

// Decode handles every whole frame at the start of buf and returns how many
// bytes it used; the rest is an incomplete frame to present again with
// more bytes. It stops at a close frame. A *ProtocolError means the
// connection must be closed with its code.
func (d *Decoder) Decode(buf []byte, h Handler) (int, error) {
	used := 0
	for {
		if len(buf) > used {
			if err := d.checkFirstByte(buf[used]); err != nil {
				return used, err
			}
		}
		limit := d.Limit
		if d.inFrag && len(buf) > used && buf[used]&0x0f == OpContinuation {
			// what is left of the message's budget: a continuation over
			// it is refused from its header, before it is buffered
			limit -= len(d.frag)
		}
		f, n, err := ParseFrame(buf[used:], limit)
		if err != nil || n == 0 {
			return used, err
		}
		used += n
		switch f.Op {
		case OpPing:
			h.Ping(f.Payload)
			continue
		case OpPong:
			continue
		case OpClose:
			code, err := ParseClose(f.Payload)
			if err != nil {
				return used, err
			}
			h.Close(code)
			return used, nil
		case OpText, OpBinary:
			if !f.Fin {
				d.inFrag, d.fragOp, d.fragZip = true, f.Op, f.RSV1
				if f.Op == OpText && !f.RSV1 {
					d.text = utf8Stream{}
					if !d.text.feed(f.Payload, false) {
						return used, errInvalidText
					}
				}
				d.frag = append(d.frag[:0], f.Payload...)
				continue
			}
			if err := d.deliver(h, f.Op, f.RSV1, false, f.Payload); err != nil {
				return used, err
			}
		case OpContinuation:
			checked := d.fragOp == OpText && !d.fragZip
			if checked && !d.text.feed(f.Payload, f.Fin) {
				return used, errInvalidText
			}
			d.frag = append(d.frag, f.Payload...)
			if !f.Fin {
				continue
			}
			msg := d.frag
			d.frag, d.inFrag = nil, false
			if err := d.deliver(h, d.fragOp, d.fragZip, checked, msg); err != nil {
				return used, err
			}
		}
	}
}

// checkFirstByte refuses a frame whose first byte (FIN, RSV, opcode) is
// wrong for the decoder's state, before the rest of the frame arrives:
// RSV1 where permessage-deflate does not allow it, a continuation with
// nothing to continue, a new message inside a fragmented one.
func (d *Decoder) checkFirstByte(b0 byte) error {
	op := b0 & 0x0f
	switch {
	case b0&0x40 != 0 && (!d.Deflate || op == OpContinuation || op >= OpClose):
		return protoErr(StatusProtocolError, "unexpected RSV1")
	case op == OpContinuation && !d.inFrag:
		return protoErr(StatusProtocolError, "continuation without a message")
	case (op == OpText || op == OpBinary) && d.inFrag:
		return protoErr(StatusProtocolError, "new message inside a fragmented one")
	}
	return nil
}

// errInvalidText refuses a text message that is not UTF-8.
var errInvalidText = protoErr(StatusInvalidPayload, "invalid UTF-8 in a text message")

// deliver hands a whole message to h, inflating it first if zipped; checked
// says its UTF-8 was already checked fragment by fragment.
func (d *Decoder) deliver(h Handler, op byte, zipped, checked bool, p []byte) error {
	if zipped {
		var err error
		if p, err = Inflate(p, d.Limit); err != nil {
			return err
		}
	}
	if op == OpText && !checked && !utf8.Valid(p) {
		return errInvalidText
	}
	return h.Message(op, p)
}
