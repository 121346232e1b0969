package redis

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// A stream reader reads its XREAD replies itself, piece by piece, on a
// raw connection (rawConn): go-redis reads a reply whole, every bulk
// string at the size it announces, so whoever may XADD to a stream could
// make a reader hold StreamReadCount entries of up to 512 MB each (Redis's
// proto-max-bulk-len). Here each entry is handed to the handler as soon as
// it is read, and one larger than the bound is skipped as it comes.

// DefaultStreamEntryMaxBytes is the default bound of one stream entry a
// subscription reads (WithStreamEntryMaxBytes): the size of its fields in
// the Stream message's Data (each field and value with a varint length).
// A larger entry is not read into memory: its bytes are discarded as they
// arrive, and it is counted (Bus.StreamEntriesDropped) and logged; the
// reader goes on after it. The Node streams adapter writes one entry per
// broadcast, its packet in the data field: a Socket.IO server refuses
// client packets above maxHttpBufferSize (1 MB by default), so 16 MiB
// leaves room for large server-side emits (binary attachments) while a
// reader holds at most one entry at a time, at most this size, instead of
// a whole XREAD reply of unbounded entries.
const DefaultStreamEntryMaxBytes = 16 << 20

// WithStreamEntryMaxBytes bounds the size of one stream entry a
// subscription delivers (default DefaultStreamEntryMaxBytes); larger
// entries are skipped without being read into memory, counted
// (StreamEntriesDropped) and logged.
func WithStreamEntryMaxBytes(n int) Option { return func(c *config) { c.streamEntryMax = n } }

// StreamEntriesDropped returns how many stream entries the subscriptions
// skipped because they were larger than DefaultStreamEntryMaxBytes (or the
// WithStreamEntryMaxBytes bound).
func (b *Bus) StreamEntriesDropped() uint64 { return b.streamDropped.Load() }

const (
	// maxStreamIDLen bounds an entry id ("18446744073709551615-
	// 18446744073709551615" is 41 bytes).
	maxStreamIDLen = 64
	// maxRESPCount bounds the announced number of an entry's fields and
	// values, far above what fits in a Redis entry: they are read one at
	// a time (nothing is allocated for the count), but a larger count is
	// no reply of Redis.
	maxRESPCount = math.MaxInt32
	// maxRESPLen bounds an announced bulk string length (1 TiB: Redis
	// holds its values in memory).
	maxRESPLen = 1 << 40
	// keepEntryBuf is the largest entry buffer a reader keeps for the
	// next entries; a larger entry's buffer becomes its Data.
	keepEntryBuf = 64 << 10
	// readChunk is how much an entry's buffer grows at a time while a
	// value is read: it grows as bytes arrive, not by the length a
	// reply announces.
	readChunk = 64 << 10
)

// respReader reads RESP2 replies from r one header or bulk string at a
// time. A header line longer than r's buffer is an error.
type respReader struct{ r *bufio.Reader }

// errProtocol is wrapped by the errors of replies that are not RESP2 or
// not what the command returns.
var errProtocol = errors.New("redis: protocol error")

func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// header reads the header of a reply of type kind ('*' an array, '$' a
// bulk string, ':' an integer) and returns its count, length or value, n
// between -1 (a null array or bulk string) and most. An error reply is
// returned as an error (the connection is still in step).
func (p respReader) header(kind byte, most int64) (int64, error) {
	line, err := p.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, protocolErr("a reply line longer than %d bytes", p.r.Size())
		}
		return 0, unexpected(err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, protocolErr("reply line %.40q", line)
	}
	line = line[:len(line)-2]
	if line[0] == '-' {
		return 0, errors.New("redis: " + string(line[1:]))
	}
	if line[0] != kind {
		return 0, protocolErr("reply %.40q where %q was expected", line, kind)
	}
	n, ok := parseRESPInt(line[1:])
	if !ok || n < -1 || (n == -1 && kind == ':') || n > most {
		return 0, protocolErr("reply %.40q (at most %d)", line, most)
	}
	return n, nil
}

// parseRESPInt parses a decimal of at most 18 digits, -1 included.
func parseRESPInt(b []byte) (int64, bool) {
	if string(b) == "-1" {
		return -1, true
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// unexpected is err, io.ErrUnexpectedEOF for io.EOF: the reply is cut.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// crlf reads the end of a bulk string.
func (p respReader) crlf() error {
	b, err := p.r.Peek(2)
	if err != nil {
		return unexpected(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return protocolErr("bulk string not ended by CRLF")
	}
	_, err = p.r.Discard(2)
	return err
}

// appendBulk appends the n bytes of a bulk string to dst, growing it by
// readChunk at most at a time: what it allocates follows what arrives.
func (p respReader) appendBulk(dst []byte, n int) ([]byte, error) {
	for n > 0 {
		k := min(n, readChunk)
		l := len(dst)
		if cap(dst)-l < k {
			dst = append(dst[:cap(dst)], make([]byte, k)...)[:l]
		}
		if _, err := io.ReadFull(p.r, dst[l:l+k]); err != nil {
			return dst, unexpected(err)
		}
		dst, n = dst[:l+k], n-k
	}
	return dst, p.crlf()
}

// skipBulk discards the n bytes of a bulk string as they arrive.
func (p respReader) skipBulk(n int64) error {
	for n > 0 {
		k := min(n, 1<<30) // an int on 32-bit platforms too
		if _, err := p.r.Discard(int(k)); err != nil {
			return unexpected(err)
		}
		n -= k
	}
	return p.crlf()
}

// xreadParser reads the XREAD replies of one stream.
type xreadParser struct {
	p   respReader
	key string
	max int    // bound of an entry's Data
	buf []byte // the entry being read (kept for the next ones if small)
	id  [maxStreamIDLen]byte
}

// read reads one reply of XREAD ... STREAMS key id: for each entry, in
// order, deliver(id, data) (data then belongs to deliver), or drop(id,
// size) for an entry whose Data would take more than max. A null reply
// (the BLOCK timeout, or CLIENT UNBLOCK) has none. It returns early, with
// a nil error, when deliver returns false; an error reply of Redis is
// returned as an error, as is a reply that is not what XREAD returns
// (wrapping errProtocol): the connection is then out of step.
func (x *xreadParser) read(deliver func(id string, data []byte) bool, drop func(id string, size int64)) error {
	n, err := x.p.header('*', 1) // the streams read: one
	if err != nil || n <= 0 {
		return err
	}
	if n, err := x.p.header('*', 2); err != nil || n != 2 {
		return orProtocol(err, "stream reply of %d parts", n)
	}
	kn, err := x.p.header('$', int64(len(x.key)))
	if err != nil || kn != int64(len(x.key)) {
		return orProtocol(err, "reply of stream %d bytes long for %q", kn, x.key)
	}
	if x.buf, err = x.p.appendBulk(x.buf[:0], int(kn)); err != nil {
		return err
	}
	if string(x.buf) != x.key {
		return protocolErr("reply of stream %.40q for %q", x.buf, x.key)
	}
	entries, err := x.p.header('*', StreamReadCount)
	if err != nil {
		return err
	}
	for range entries {
		id, data, size, err := x.entry()
		if err != nil {
			return err
		}
		if size > int64(x.max) {
			drop(id, size)
		} else if !deliver(id, data) {
			return nil
		}
	}
	return nil
}

// entry reads one entry [id, [field, value, ...]]: its id, and its Data
// unless it takes more than max (then only its size, the rest discarded).
func (x *xreadParser) entry() (id string, data []byte, size int64, err error) {
	if n, err := x.p.header('*', 2); err != nil || n != 2 {
		return "", nil, 0, orProtocol(err, "stream entry of %d parts", n)
	}
	n, err := x.p.header('$', maxStreamIDLen)
	if err != nil || n < 0 {
		return "", nil, 0, orProtocol(err, "null stream entry id")
	}
	if _, err := io.ReadFull(x.p.r, x.id[:n]); err != nil {
		return "", nil, 0, unexpected(err)
	}
	if err := x.p.crlf(); err != nil {
		return "", nil, 0, err
	}
	id = string(x.id[:n])
	k, err := x.p.header('*', maxRESPCount)
	if err != nil || (k%2 != 0 && k != -1) { // -1: none (a deleted entry of XREADGROUP)
		return "", nil, 0, orProtocol(err, "stream entry %s of %d fields and values", id, k)
	}
	b := x.buf[:0]
	for range max(k, 0) {
		n, err := x.p.header('$', maxRESPLen)
		if err != nil || n < 0 {
			return "", nil, 0, orProtocol(err, "null field in stream entry %s", id)
		}
		cost := int64(uvarintLen(uint64(n))) + n
		size = min(size, math.MaxInt64-cost) + cost
		if size > int64(x.max) {
			err = x.p.skipBulk(n)
		} else {
			b, err = x.p.appendBulk(binary.AppendUvarint(b, uint64(n)), int(n))
		}
		if err != nil {
			return "", nil, 0, err
		}
	}
	if cap(b) > keepEntryBuf { // handed over (or, if dropped, let go)
		x.buf = nil
		if size > int64(x.max) {
			b = nil
		}
		return id, b, size, nil
	}
	x.buf = b[:0]
	if size > int64(x.max) {
		return id, nil, size, nil
	}
	return id, bytes.Clone(b), size, nil
}

// orProtocol returns err, or a protocol error when err is nil.
func orProtocol(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return protocolErr(format, args...)
}

func uvarintLen(n uint64) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}
