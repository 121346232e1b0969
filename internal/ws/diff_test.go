package ws

// Differential fuzzing: the same client->server byte stream is decoded by
// our Decoder and, independently, by github.com/gobwas/ws (wsutil.Reader)
// and github.com/gorilla/websocket (a server Conn made by Upgrader.Upgrade
// over a fake hijacked connection that reads the stream). They must agree
// on the messages (after unmasking and reassembly), the pings, the close
// frame, and on whether and with which close code the stream is refused —
// except for the known, justified differences listed in knownDifferences.
// Both libraries are test-only dependencies: only _test.go files import
// them.
//
// Run longer with:
//
//	go test ./internal/ws/ -run '^$' -fuzz FuzzDifferential -fuzztime 5m

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	gobwas "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"
)

// outcome is what a decoder made of a stream: the events in order, and
// the close code it refused the stream with (0: not refused — the stream
// ended, possibly inside a frame, or the client closed).
type outcome struct {
	events []event
	code   int
}

func (o outcome) String() string {
	return fmt.Sprintf("code %d, events %+v", o.code, o.events)
}

func (o outcome) same(p outcome) bool { return o.code == p.code && sameEvents(o.events, p.events) }

// difference is a known, justified way in which another implementation
// decodes differently from ours.
type difference struct {
	impl string // "gobwas", "gorilla" or "both"
	what string
	why  string
	// how the test deals with it: "adapter" (the adapter maps the other
	// library's answer onto ours), "prefix" (only the events before our
	// refusal are compared), "rerun" (see the text)
	handling string
}

// knownDifferences is the documented table of differences. Each entry is
// referenced (by index constant) where the test applies it.
var knownDifferences = []difference{
	diffGobwasNewCloseCodes: {"gobwas", "close codes 1012-1014 are refused (ErrProtocolStatusCodeUnknown)",
		"they are registered by IANA for close frames (Service Restart, Try Again Later, Bad Gateway); gorilla and we accept them", "adapter"},
	diffGorilla1014: {"gorilla", "close code 1014 is refused (1002)",
		"IANA registered 1014 (Bad Gateway) for close frames; gorilla's table stops at 1013; the test turns the code into 1000 and requires agreement", "rerun"},
	diffGobwasLongControlLength: {"gobwas", "a control frame whose length (at most 125) is announced in 16 or 64 bits is accepted",
		"RFC 6455 section 5.2 requires the minimal length form, and section 5.5 at most 125 bytes; we (as gorilla) refuse it from the first two bytes", "frame check"},
	diffGobwasCodesOver4999: {"gobwas", "close codes 5000-65535 are accepted",
		"RFC 6455 section 7.4.2 defines no meaning above 4999; gorilla and we refuse them (1002)", "adapter"},
	diffGorillaOneByteClose: {"gorilla", "a close frame with a 1-byte payload is accepted as 1005",
		"RFC 6455 section 5.5.1: a close body starts with a 2-byte code; Autobahn 7.3.2 expects a protocol error", "frame check"},
	diffGorillaEmptyClose: {"gorilla", "an empty close frame is reported as 1005 (no status)",
		"we report it as 1000 to the handler (the code we echo); same meaning", "adapter"},
	diffGorillaCloseReasonUTF8: {"gorilla", "a close reason that is not UTF-8 is a protocol error (1002)",
		"RFC 6455 section 8.1 says invalid UTF-8 fails the connection; 1007 (as gobwas) is the precise code", "adapter"},
	diffGorillaTextUTF8: {"gorilla", "text messages are not checked for UTF-8",
		"gorilla leaves it to the application (its Autobahn server checks each whole message); the adapter checks whole messages too, " +
			"so it cannot fail fast: when we refuse with 1007 at a fragment, gorilla may read further (pings, a close); the test then checks, " +
			"with utf8.Valid alone, that the message so far cannot start valid UTF-8", "prefix"},
	diffGorillaLengthMSB: {"gorilla", "a 64-bit length with the most significant bit set is ErrReadLimit (1009)",
		"RFC 6455 section 5.2: the most significant bit must be 0, a protocol error (1002) as gobwas says", "frame check"},
	diffGorillaRSV1: {"gorilla", "with permessage-deflate, RSV1 on a control or continuation frame is ignored",
		"RFC 7692 section 6: RSV1 is only for the first frame of a data message; elsewhere it fails the connection", "prefix"},
	diffGorillaCompressedLimit: {"gorilla", "the read limit counts compressed bytes",
		"our limit is on the message as delivered (inflated) too; the adapter refuses a longer inflated message with 1009; " +
			"when the inflated data goes over the limit before it turns out corrupt, we say 1009 and gorilla 1007: the test decodes ours again without a limit and requires 1007", "adapter, rerun"},
	diffHeaderFirst: {"both", "a header is read whole (gobwas) or up to its length (gorilla) before it is checked",
		"we refuse a bad frame from its first two bytes; so when they stop at the end of the input where we refused, " +
			"the test appends 14 bytes 0x7f (completing any header) to their input and requires our code", "rerun"},
	diffInflateWhole: {"gorilla", "a compressed message is inflated as it arrives, so corrupt data is refused before the message ends",
		"we inflate a compressed message when it is whole (its compressed bytes are within the limit), so we refuse it (1007) at its end, " +
			"or refuse a later frame first; the test completes the message before the frame we refused (zero bytes to the end of its last frame, " +
			"an empty final continuation) and requires our 1007", "rerun"},
	diffGorillaBFINAL: {"gorilla", "a compressed message ends where its deflate data has a final block (BFINAL), even before the frame with FIN",
		"the message ends with its FIN frame (RFC 6455 section 5.4); we inflate up to the final block and ignore the rest; " +
			"the test completes the message before the frame we stopped at and requires our message (or our 1009, if gorilla found it too big) to be gorilla's", "rerun"},
	diffGobwasUTF8InFrame: {"gobwas", "UTF-8 is checked as the bytes of a frame arrive",
		"we check each whole frame (fragment), keeping state across fragments (Autobahn 6.4.3/6.4.4 allow this as NON-STRICT); " +
			"the test completes the message before the frame we stopped at and requires our 1007", "rerun"},
	diffGobwasDeflate: {"gobwas", "not run with permessage-deflate",
		"its wsflate reader needs a different set-up; gorilla covers compressed streams", "skipped"},
}

const (
	diffGobwasNewCloseCodes = iota
	diffGorilla1014
	diffGobwasLongControlLength
	diffGobwasCodesOver4999
	diffGorillaOneByteClose
	diffGorillaEmptyClose
	diffGorillaCloseReasonUTF8
	diffGorillaTextUTF8
	diffGorillaLengthMSB
	diffGorillaRSV1
	diffGorillaCompressedLimit
	diffHeaderFirst
	diffInflateWhole
	diffGorillaBFINAL
	diffGobwasUTF8InFrame
	diffGobwasDeflate
)

// headerPad completes any cut header (diffHeaderFirst): 14 bytes of 0x7f
// make a large length without the forbidden top bit, and a mask key.
var headerPad = bytes.Repeat([]byte{0x7f}, 14)

// errStopped ends the gobwas adapter's reading at a close frame.
var errStopped = errors.New("close frame read")

// errEndOfInput is what the fake connections return when the stream is
// used up, so that "the input ended" cannot be confused with an
// io.ErrUnexpectedEOF from inside a decoder.
var errEndOfInput = errors.New("end of test input")

// ---------------------------------------------------------------- ours

// oursDecode decodes in with our Decoder; stop is the offset of the frame
// it refused or of the close frame it stopped at (else len(in)).
func oursDecode(in []byte, limit int, deflate bool) (o outcome, stop int) {
	l := &eventLog{}
	used, err := (&Decoder{Limit: limit, Deflate: deflate}).Decode(bytes.Clone(in), l)
	o.events = l.events
	lastUsed := func() (stop int) {
		for pos := 0; pos < used; pos += FrameSize(in[pos:]) {
			stop = pos
		}
		return stop
	}
	if err == nil {
		if n := len(o.events); n > 0 && o.events[n-1].kind == "close" {
			return o, lastUsed() // the close frame
		}
		return o, len(in)
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		panic(err)
	}
	o.code = pe.Code
	// some errors leave the bad frame unused (those found from its header),
	// others come after the frame is used: if the used bytes alone give the
	// error, the bad frame is the last one used
	if _, err := (&Decoder{Limit: limit, Deflate: deflate}).Decode(bytes.Clone(in[:used]), &eventLog{}); err == nil {
		return o, used
	}
	return o, lastUsed()
}

// ---------------------------------------------------------------- gobwas

// endReader is a bytes.Reader ending with errEndOfInput.
type endReader struct{ r *bytes.Reader }

func (e endReader) Read(p []byte) (int, error) {
	if e.r.Len() == 0 {
		return 0, errEndOfInput
	}
	return e.r.Read(p)
}

// gobwasDecode decodes in with gobwas/ws's wsutil.Reader (no deflate).
func gobwasDecode(in []byte, limit int) (o outcome) {
	var stopped bool // a close frame was read
	control := func(h gobwas.Header, r io.Reader) error {
		p, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		switch h.OpCode {
		case gobwas.OpPing:
			o.events = append(o.events, event{kind: "ping", data: string(p)})
		case gobwas.OpClose:
			code := StatusNormal
			if len(p) > 0 {
				c, reason := gobwas.ParseCloseFrameData(p)
				err := gobwas.CheckCloseFrameData(c, reason)
				switch {
				case len(p) == 1:
					err = gobwas.ErrProtocolStatusCodeNotInUse
				case c >= 1012 && c <= 1014 && errors.Is(err, gobwas.ErrProtocolStatusCodeUnknown):
					err = gobwas.CheckCloseFrameData(1000, reason)
					noteDiff(diffGobwasNewCloseCodes)
				case c > 4999:
					err = gobwas.ErrProtocolStatusCodeNotInUse
					noteDiff(diffGobwasCodesOver4999)
				}
				if err != nil {
					return err
				}
				code = int(c)
			}
			o.events = append(o.events, event{kind: "close", code: code})
			stopped = true
			return errStopped // read no further, even inside a message
		}
		return nil
	}
	rd := &wsutil.Reader{
		Source:         endReader{bytes.NewReader(in)},
		State:          gobwas.StateServerSide,
		CheckUTF8:      true,
		MaxMessageSize: int64(limit),
		OnIntermediate: control,
	}
	classify := func(err error) int {
		var pe gobwas.ProtocolError
		switch {
		case errors.Is(err, errEndOfInput), errors.Is(err, errStopped):
			return 0
		case errors.Is(err, wsutil.ErrInvalidUTF8), errors.Is(err, gobwas.ErrProtocolInvalidUTF8):
			return StatusInvalidPayload
		case errors.Is(err, wsutil.ErrMessageTooLarge), errors.Is(err, wsutil.ErrFrameTooLarge):
			return StatusTooBig
		case errors.As(err, &pe), errors.Is(err, gobwas.ErrHeaderLengthMSB), errors.Is(err, gobwas.ErrHeaderLengthUnexpected):
			return StatusProtocolError
		}
		panic(fmt.Sprintf("gobwas: unexpected error %T %v", err, err))
	}
	for !stopped {
		h, err := rd.NextFrame()
		if err != nil {
			o.code = classify(err)
			return o
		}
		if h.OpCode.IsControl() {
			if err := control(h, rd); err != nil {
				o.code = classify(err)
				return o
			}
			continue
		}
		p, err := io.ReadAll(rd)
		if err != nil {
			o.code = classify(err)
			return o
		}
		if stopped { // a close frame inside the message ended the stream
			break
		}
		o.events = append(o.events, event{kind: "msg", op: byte(h.OpCode), data: string(p)})
	}
	return o
}

// ---------------------------------------------------------------- gorilla

// streamConn is a net.Conn that reads the test input and discards writes.
type streamConn struct{ endReader }

func (streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (streamConn) Close() error                     { return nil }
func (streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (streamConn) SetDeadline(time.Time) error      { return nil }
func (streamConn) SetReadDeadline(time.Time) error  { return nil }
func (streamConn) SetWriteDeadline(time.Time) error { return nil }

// hijackWriter is an http.ResponseWriter whose Hijack returns the stream.
type hijackWriter struct {
	conn net.Conn
	h    http.Header
}

func (w *hijackWriter) Header() http.Header         { return w.h }
func (w *hijackWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijackWriter) WriteHeader(int)             {}
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// gorillaDecode decodes in with a gorilla/websocket server Conn.
func gorillaDecode(in []byte, limit int, deflate bool) (o outcome) {
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if deflate {
		req.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
	}
	up := websocket.Upgrader{EnableCompression: deflate}
	c, err := up.Upgrade(&hijackWriter{conn: streamConn{endReader{bytes.NewReader(in)}}, h: http.Header{}}, req, nil)
	if err != nil {
		panic(err)
	}
	c.SetReadLimit(int64(limit)) // on compressed bytes: diffGorillaCompressedLimit
	c.SetPingHandler(func(p string) error {
		o.events = append(o.events, event{kind: "ping", data: p})
		return nil
	})
	closed := false
	c.SetCloseHandler(func(code int, text string) error {
		if code == websocket.CloseNoStatusReceived {
			code = StatusNormal
			noteDiff(diffGorillaEmptyClose)
		}
		o.events = append(o.events, event{kind: "close", code: code})
		closed = true
		return nil
	})
	for {
		op, p, err := c.ReadMessage()
		var ce *websocket.CloseError
		var ce2 flate.CorruptInputError
		switch {
		case err == nil:
		case closed && errors.As(err, &ce):
			return o
		case errors.Is(err, errEndOfInput):
			return o
		case errors.Is(err, websocket.ErrReadLimit):
			o.code = StatusTooBig
			return o
		case strings.Contains(err.Error(), "invalid utf8 payload in close frame"):
			o.code = StatusInvalidPayload
			noteDiff(diffGorillaCloseReasonUTF8)
			return o
		case errors.As(err, &ce2), errors.Is(err, io.ErrUnexpectedEOF):
			o.code = StatusInvalidPayload // a bad compressed message
			return o
		case strings.HasPrefix(err.Error(), "websocket: "):
			o.code = StatusProtocolError
			return o
		default:
			panic(fmt.Sprintf("gorilla: unexpected error %T %v", err, err))
		}
		if closed {
			return o
		}
		if len(p) > limit {
			o.code = StatusTooBig
			noteDiff(diffGorillaCompressedLimit)
			return o
		}
		if op == websocket.TextMessage && !utf8.Valid(p) {
			o.code = StatusInvalidPayload // the check gorilla leaves to applications
			return o
		}
		o.events = append(o.events, event{kind: "msg", op: byte(op), data: string(p)})
	}
}

// ---------------------------------------------------------------- comparison

// longControlLength reports whether the frame at the start of b is a
// control frame whose length is announced in 16 or 64 bits.
func longControlLength(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f >= OpClose && b[1]&0x7f > 125
}

// completeMessage returns in with its last frame padded with zero bytes to
// its announced length (left out if its header is cut or it is a control
// frame) and, if a
// fragmented message is still open, an empty final continuation frame; nil
// if that would be over 1 MiB.
func completeMessage(in []byte) []byte {
	out := bytes.Clone(in)
	open := false
	for pos := 0; pos < len(out); {
		need := FrameSize(out[pos:])
		if need == 0 { // a cut header: left out
			out = out[:pos]
			break
		}
		if need > len(out)-pos && out[pos]&0x0f >= OpClose { // a cut control frame: left out
			out = out[:pos]
			break
		}
		if need > len(out)-pos {
			if need-(len(out)-pos) > 1<<20 {
				return nil
			}
			out = append(out, make([]byte, need-(len(out)-pos))...)
		}
		if op := out[pos] & 0x0f; op <= OpBinary {
			open = out[pos]&0x80 == 0
		}
		pos += need
	}
	if open {
		out = append(out, fk(0x80, nil)...)
	}
	return out
}

// diffsSeen counts how often each known difference explained a
// disagreement (TestKnownDifferencesAreReal).
var diffsSeen [diffGobwasDeflate + 1]atomic.Int64

// noteDiff records that difference i explained a disagreement and returns
// "" (no disagreement left).
func noteDiff(i int) string {
	diffsSeen[i].Add(1)
	return ""
}

// pingsThenClose reports whether ev are pings, perhaps ending with a close.
func pingsThenClose(ev []event) bool {
	for i, e := range ev {
		if e.kind != "ping" && (e.kind != "close" || i != len(ev)-1) {
			return false
		}
	}
	return true
}

// openTextInvalid reports whether the uncompressed text message that the
// frame at stop belongs to is, up to that frame, no valid UTF-8 text's
// start. It only uses utf8.Valid: a valid start becomes valid when padded
// with 0x80 or with 0xbf bytes (the second byte of a sequence may have to
// be 0x80-0x9f or 0x90-0xbf or 0xa0-0xbf, the others 0x80-0xbf).
func openTextInvalid(in []byte, stop int) bool {
	var msg []byte
	text := false
	for pos := 0; pos <= stop && pos < len(in); {
		f, n, err := ParseFrame(bytes.Clone(in[pos:]), math.MaxInt)
		if err != nil || n == 0 {
			break
		}
		switch f.Op {
		case OpText, OpBinary:
			msg, text = f.Payload, f.Op == OpText && !f.RSV1
		case OpContinuation:
			msg = append(msg, f.Payload...)
		}
		pos += n
	}
	if !text {
		return false
	}
	for k := range 4 {
		for _, pad := range []byte{0x80, 0xbf} {
			if utf8.Valid(append(bytes.Clone(msg), bytes.Repeat([]byte{pad}, k)...)) {
				return false
			}
		}
	}
	return true
}

// isPrefix reports whether a is a prefix of b.
func isPrefix(a, b []event) bool { return len(a) <= len(b) && sameEvents(a, b[:len(a)]) }

// compareWith checks another implementation's outcome against ours,
// applying the known differences; it returns "" when they agree.
func compareWith(impl string, in []byte, limit int, deflate bool, ours outcome, stop int,
	decode func(in []byte, limit int) outcome) string {
	theirs := decode(in, limit)
	if ours.same(theirs) {
		return ""
	}
	// diffHeaderFirst
	if ours.code != 0 && theirs.code == 0 && sameEvents(ours.events, theirs.events) {
		padded := append(bytes.Clone(in), headerPad...)
		if t2 := decode(padded, limit); t2.same(ours) {
			return noteDiff(diffHeaderFirst)
		}
	}
	// diffGorillaCompressedLimit: a message inflating over the limit before
	// its corruption shows
	if impl == "gorilla" && deflate && ours.code == StatusTooBig && theirs.code == StatusInvalidPayload && sameEvents(ours.events, theirs.events) {
		if o2, _ := oursDecode(in, 1<<30, deflate); o2.code == StatusInvalidPayload {
			return noteDiff(diffGorillaCompressedLimit)
		}
	}
	// diffInflateWhole, diffGobwasUTF8InFrame: they refuse from part of a
	// message (so before pings or a close that follow, which we read); with
	// the message completed, we must refuse it too
	if theirs.code == StatusInvalidPayload && isPrefix(theirs.events, ours.events) &&
		pingsThenClose(ours.events[len(theirs.events):]) &&
		(impl == "gobwas" || deflate) {
		if whole := completeMessage(in[:stop]); whole != nil {
			// without a limit: the inflated data may be over it before the corruption
			if o2, _ := oursDecode(whole, 1<<30, deflate); o2.code == StatusInvalidPayload {
				if impl == "gobwas" {
					return noteDiff(diffGobwasUTF8InFrame)
				}
				return noteDiff(diffInflateWhole)
			}
		}
	}
	// diffGorillaBFINAL: gorilla delivered (or found too big) a message
	// that we still wait for; completed, ours must be the same
	if n := len(ours.events); impl == "gorilla" && deflate && isPrefix(ours.events, theirs.events) {
		if whole := completeMessage(in[:stop]); whole != nil {
			o2, _ := oursDecode(whole, limit, deflate)
			if len(theirs.events) > n && theirs.events[n].kind == "msg" && isPrefix(theirs.events[:n+1], o2.events) ||
				ours.code == 0 && len(theirs.events) == n && theirs.code == StatusTooBig && o2.same(theirs) {
				return noteDiff(diffGorillaBFINAL)
			}
		}
	}
	// diffGorilla1014: with the close code made 1000, they must agree
	if impl == "gorilla" && theirs.code == StatusProtocolError {
		if f, n, err := ParseFrame(bytes.Clone(in[stop:]), math.MaxInt); err == nil && n > 0 && f.Op == OpClose &&
			len(f.Payload) >= 2 && binary.BigEndian.Uint16(f.Payload) == 1014 {
			alt := bytes.Clone(in)
			codeAt := stop + n - len(f.Payload) // masked: flip the bits that turn 1014 into 1000
			alt[codeAt] ^= byte(1014>>8) ^ byte(1000>>8)
			alt[codeAt+1] ^= byte(1014&0xff) ^ byte(1000&0xff)
			realCode := func(o outcome) outcome { // the close read, with its real code
				if k := len(o.events); k > 0 && o.events[k-1] == (event{kind: "close", code: 1000}) {
					o.events[k-1].code = 1014
				}
				return o
			}
			o2, _ := oursDecode(alt, limit, deflate)
			if realCode(o2).same(ours) && realCode(decode(alt, limit)).same(ours) {
				return noteDiff(diffGorilla1014)
			}
		}
	}
	if impl == "gobwas" && ours.code == StatusProtocolError && isPrefix(ours.events, theirs.events) && longControlLength(in[stop:]) {
		return noteDiff(diffGobwasLongControlLength)
	}
	if impl == "gorilla" && ours.code != 0 && stop+2 <= len(in) && isPrefix(ours.events, theirs.events) {
		b0, b1 := in[stop], in[stop+1]
		extra := theirs.events[len(ours.events):]
		switch {
		case ours.code == StatusProtocolError && theirs.code == StatusTooBig && len(extra) == 0 &&
			b1&0x7f == 127 && stop+3 <= len(in) && in[stop+2]&0x80 != 0:
			return noteDiff(diffGorillaLengthMSB)
		case ours.code == StatusProtocolError && b0&0x0f == OpClose && b1&0x7f == 1 &&
			len(extra) == 1 && extra[0] == event{kind: "close", code: StatusNormal}:
			return noteDiff(diffGorillaOneByteClose)
		case ours.code == StatusInvalidPayload && pingsThenClose(extra) && openTextInvalid(in, stop):
			return noteDiff(diffGorillaTextUTF8)
		case deflate && b0&0x40 != 0 && (b0&0x0f == OpContinuation || b0&0x0f >= OpClose):
			return noteDiff(diffGorillaRSV1)
		}
	}
	return fmt.Sprintf("%s decodes differently:\n  ours:   %v (refused frame at %d)\n  theirs: %v", impl, ours, stop, theirs)
}

// gobwasHeader reads and checks a client frame header with gobwas.
func gobwasHeader(r io.Reader) (gobwas.Header, error) {
	h, err := gobwas.ReadHeader(r)
	if err != nil {
		return h, err
	}
	err = gobwas.CheckHeader(h, gobwas.StateServerSide|gobwas.StateExtended)
	if errors.Is(err, gobwas.ErrProtocolContinuationExpected) || errors.Is(err, gobwas.ErrProtocolContinuationUnexpected) {
		err = nil
	}
	if err == nil && h.Rsv&3 != 0 {
		err = gobwas.ErrProtocolNonZeroRsv
	}
	return h, err
}

// framesAgree walks in frame by frame with ParseFrame and with gobwas's
// ws.ReadHeader, ws.CheckHeader and ws.Cipher: the headers, the unmasked
// payloads and the refusals must agree. Fragmentation state is not
// checked here (the Decoder comparison does), nor RSV1, which an extension
// may use; a frame ParseFrame refuses from its first bytes may be cut
// short for gobwas (diffHeaderFirst).
func framesAgree(in []byte) string {
	r := endReader{bytes.NewReader(in)}
	for pos := 0; ; {
		f, n, perr := ParseFrame(bytes.Clone(in[pos:]), math.MaxInt)
		h, err := gobwasHeader(r)
		var payload []byte
		if err == nil {
			payload = make([]byte, min(h.Length, int64(len(in))))
			if int64(len(payload)) < h.Length {
				err = errEndOfInput
			} else if _, err = io.ReadFull(r, payload); err == nil {
				gobwas.Cipher(payload, h.Mask, 0)
			}
		}
		switch {
		case errors.Is(err, errEndOfInput):
			if n != 0 {
				return fmt.Sprintf("frame at %d: gobwas finds the input cut short, ParseFrame a whole frame", pos)
			}
			if perr != nil { // diffHeaderFirst
				padded := append(bytes.Clone(in[pos:]), headerPad...)
				if _, err := gobwasHeader(bytes.NewReader(padded)); err != nil {
					return ""
				}
			}
			if perr != nil && longControlLength(in[pos:]) {
				return noteDiff(diffGobwasLongControlLength)
			}
			if perr != nil {
				return fmt.Sprintf("frame at %d: ParseFrame refuses it (%v), gobwas finds it cut short", pos, perr)
			}
			return ""
		case err != nil:
			if perr == nil {
				return fmt.Sprintf("frame at %d: gobwas refuses it (%v), ParseFrame does not", pos, err)
			}
			return ""
		case perr != nil && longControlLength(in[pos:]):
			return noteDiff(diffGobwasLongControlLength)
		case perr != nil:
			return fmt.Sprintf("frame at %d: ParseFrame refuses it (%v), gobwas does not (%+v)", pos, perr, h)
		case n == 0:
			return fmt.Sprintf("frame at %d: ParseFrame finds it incomplete, gobwas reads %+v", pos, h)
		case f.Fin != h.Fin || f.RSV1 != (h.Rsv&4 != 0) || f.Op != byte(h.OpCode) || !bytes.Equal(f.Payload, payload):
			return fmt.Sprintf("frame at %d: ParseFrame %+v, gobwas %+v %q", pos, f, h, payload)
		}
		pos += n
	}
}

// differential decodes in with all three and reports disagreements.
func differential(t *testing.T, in []byte, limit int, deflate bool) {
	t.Helper()
	if msg := framesAgree(in); msg != "" {
		t.Errorf("%s\n  input: %x", msg, in)
	}
	ours, stop := oursDecode(in, limit, deflate)
	if !deflate { // diffGobwasDeflate
		if msg := compareWith("gobwas", in, limit, deflate, ours, stop, gobwasDecode); msg != "" {
			t.Errorf("%s\n  input: %x", msg, in)
		}
	}
	gorilla := func(in []byte, limit int) outcome { return gorillaDecode(in, limit, deflate) }
	if msg := compareWith("gorilla", in, limit, deflate, ours, stop, gorilla); msg != "" {
		t.Errorf("%s\n  input: %x (deflate %v)", msg, in, deflate)
	}
}

// differentialSeeds are interesting streams, beyond fuzzSeeds.
func differentialSeeds() [][]byte {
	long := bytes.Repeat([]byte("0123456789"), 30)
	z := fuzzCompress(long)
	seeds := [][]byte{
		fk(0x88, closePayload(1012, "restart")),
		fk(0x88, closePayload(1013, "")),
		fk(0x88, closePayload(1014, "")),
		fk(0x88, closePayload(1015, "")),
		fk(0x88, closePayload(5000, "")),
		fk(0x88, closePayload(1000, "\xff")),
		fk(0x88, closePayload(3000, "\xce\xba")),
		mfs(fk(0x01, []byte("ok")), fk(0x00, []byte{0xff}), fk(0x89, []byte("p")), fk(0x80, []byte("end"))),
		mfs(fk(0x01, []byte("\xce\xba\xf4")), fk(0x00, []byte("\x90")), fk(0x80, []byte("\x80\x80"))),
		mfs(fk(0x01, []byte("\xe2")), fk(0x00, []byte("\x82")), fk(0x80, []byte("\xac"))),
		binary64(0x82, 1<<63),
		binary64(0x82, 1<<62),
		fk(0x8a, []byte("unsolicited pong")),
		fk(0x89, bytes.Repeat([]byte{'p'}, 125)),
		fk(0x89, bytes.Repeat([]byte{'p'}, 126)),
		fk(0x09, []byte("fragmented ping")),
		mfs(fk(0x01, []byte("a")), fk(0x02, []byte("b"))),
		fk(0x82, long),
		mfs(fk(0x02, long[:100]), fk(0x80, long[100:])),
		fk(0xc1, z),
		fk(0xc1, z[:len(z)-3]),
		mfs(fk(0x41, z[:10]), fk(0x00, z[10:20]), fk(0x80, z[20:])),
		mfs(fk(0x41, z[:10]), fk(0xc0, z[10:])),
		fk(0xc9, []byte("rsv1 ping")),
		fk(0xe1, []byte("rsv1+rsv2")),
		fk(0x8b, nil), fk(0x83, nil), fk(0x87, nil), fk(0x8f, nil),
		{0x81, 0x80}, // masked bit only, header cut
		mfs(fk(0x01, []byte("a")), fk(0x81, bytes.Repeat([]byte{'b'}, 300))),      // too big and a new message
		fk(0xc1, fuzzCompress(bytes.Repeat([]byte{'z'}, 5000))),                   // inflates over the limit
		mfs(fk(0x02, long[:150]), fk(0x00, long[150:])[:20]),                      // continuation over the limit, cut
		mfs(fk(0x02, long[:150]), fk(0x89, nil), fk(0x80, long[150:200])),         // ... and whole
		mfs(fk(0x41, []byte{0xff, 0xff}), fk(0x00, z)),                            // corrupt compressed data, the message still open
		append([]byte{0x89, 0xfe, 0x00, 0x05}, append(fuzzKey[:], "hello"...)...), // a ping's length in 16 bits
		mfs(fk(0x41, []byte{0x03, 0x00}), fk(0x00, []byte("more"))),               // a final deflate block, the message still open
		fk(0x01, []byte("ok\xff and the rest of the frame"))[:9],                  // invalid UTF-8 in a frame cut short
		{0x01, 0x05, 'h', 'e', 'l', 'l', 'o'},
	}
	return append(seeds, fuzzSeeds()...)
}

// binary64 is a masked frame header announcing length n in 64 bits.
func binary64(b0 byte, n uint64) []byte {
	h := []byte{b0, 0x80 | 127}
	for i := 7; i >= 0; i-- {
		h = append(h, byte(n>>(8*i)))
	}
	return append(h, fuzzKey[:]...)
}

func FuzzDifferential(f *testing.F) {
	for _, s := range differentialSeeds() {
		f.Add(s, false, uint16(200))
		f.Add(s, true, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, in []byte, deflate bool, lim uint16) {
		limit := 125 + int(lim) // below 125 we also refuse control frames over the limit; they do not
		differential(t, in, limit, deflate)
	})
}

// TestKnownDifferencesAreReal runs the seeds and requires that each entry
// of the table was needed to explain a disagreement at least once: a
// stale entry (the difference went away) must be removed.
func TestKnownDifferencesAreReal(t *testing.T) {
	for i := range diffsSeen {
		diffsSeen[i].Store(0)
	}
	for _, s := range differentialSeeds() {
		differential(t, s, 200, false)
		differential(t, s, 4096, true)
	}
	for i, d := range knownDifferences {
		if d.handling != "skipped" && diffsSeen[i].Load() == 0 {
			t.Errorf("known difference %d (%s: %s) was never seen", i, d.impl, d.what)
		}
	}
}
