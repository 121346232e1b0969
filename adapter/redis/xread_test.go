package redis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
	"github.com/siobridge/siobridge/queue"
)

// bulk is s as a RESP bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// xreadReply is the RESP2 reply of XREAD for stream key with entries,
// each an id then fields and values.
func xreadReply(key string, entries ...[]string) string {
	s := "*1\r\n*2\r\n" + bulk(key) + fmt.Sprintf("*%d\r\n", len(entries))
	for _, e := range entries {
		s += "*2\r\n" + bulk(e[0]) + fmt.Sprintf("*%d\r\n", len(e)-1)
		for _, f := range e[1:] {
			s += bulk(f)
		}
	}
	return s
}

// parsed is what xreadParser.read reported.
type parsed struct {
	got     []string // id:f=v,... per delivered entry
	dropped []string // id:size per dropped entry
}

// parseXRead reads the replies in input with a parser for stream "st"
// bounded to max, until one fails or the input ends; it returns the
// error (nil at the end of the input) and the bytes allocated reading
// (the bufio.Reader aside).
func parseXRead(t *testing.T, input string, max int) (parsed, error, uint64) {
	t.Helper()
	x := xreadParser{p: respReader{bufio.NewReaderSize(strings.NewReader(input), 64<<10)}, key: "st", max: max}
	var out parsed
	deliver := func(id string, data []byte) bool {
		var l []string
		if err := queue.StreamFields(data, func(f, v []byte) bool {
			l = append(l, string(f)+"="+string(v))
			return true
		}); err != nil {
			t.Fatalf("entry %s: Data %q: %v", id, data, err)
		}
		out.got = append(out.got, id+":"+strings.Join(l, ","))
		return true
	}
	drop := func(id string, size int64) { out.dropped = append(out.dropped, fmt.Sprintf("%s:%d", id, size)) }
	var err error
	alloc := testenv.AllocatedBytes(func() {
		for err == nil {
			if _, err = x.p.r.Peek(1); err == io.EOF {
				err = nil
				break
			}
			err = x.read(deliver, drop)
		}
	})
	return out, err, alloc
}

// TestXReadParser: entries come in order with their fields in the
// entry's order; one whose Data would exceed the bound is reported with
// its size instead, its bytes discarded, and the replies after it are
// read in step; null replies (timeout, CLIENT UNBLOCK) have no entries.
func TestXReadParser(t *testing.T) {
	big := strings.Repeat("x", 300)
	in := xreadReply("st",
		[]string{"1-1", "uid", "u", "nsp", "/", "type", "3", "data", "a"},
		[]string{"1-2", "n", "1", "data", big, "after", "z"}, // 1+1 + 1+1 + 1+4 + 2+300 + 1+5 + 1+1 (varints and bytes): 319
		[]string{"1-3", "b", "1", "a", "2", "b", "3"},        // order and repeats as written
		[]string{"1-4"}) +
		"*-1\r\n" + // a null reply
		xreadReply("st", []string{"2-0", "data", strings.Repeat("y", 100)}) +
		"*1\r\n*2\r\n" + bulk("st") + "*1\r\n*2\r\n" + bulk("2-1") + "*-1\r\n" // an entry without fields
	got, err, _ := parseXRead(t, in, 200)
	if err != nil {
		t.Fatal(err)
	}
	want := parsed{
		got:     []string{"1-1:uid=u,nsp=/,type=3,data=a", "1-3:b=1,a=2,b=3", "1-4:", "2-0:data=" + strings.Repeat("y", 100), "2-1:"},
		dropped: []string{"1-2:319"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read\n %q\nwant\n %q", got, want)
	}
	// at the bound exactly: delivered
	if got, err, _ := parseXRead(t, xreadReply("st", []string{"1-1", "data", big}), 5+300+2); err != nil || len(got.got) != 1 {
		t.Fatalf("an entry at the bound: %q %v", got, err)
	}
	// a large entry within the bound becomes Data as it is
	large := strings.Repeat("z", 200<<10)
	if got, err, _ := parseXRead(t, xreadReply("st", []string{"1-1", "data", large}, []string{"1-2", "n", "2"}), 1<<20); err != nil || fmt.Sprint(got.got) != "[1-1:data="+large+" 1-2:n=2]" {
		t.Fatalf("a large entry: %.100q %v", got, err)
	}
}

// TestXReadParserStops: when deliver returns false (the reader stopped)
// the rest of the reply is not read.
func TestXReadParserStops(t *testing.T) {
	in := xreadReply("st", []string{"1-1", "a", "1"}, []string{"1-2", "a", "2"})
	x := xreadParser{p: respReader{bufio.NewReader(strings.NewReader(in))}, key: "st", max: 100}
	n := 0
	if err := x.read(func(string, []byte) bool { n++; return false }, nil); err != nil || n != 1 {
		t.Fatalf("%d entries delivered, err %v", n, err)
	}
}

// TestXReadParserHostile: replies that are not what XREAD returns (huge
// or negative lengths, absurd counts, truncations, garbage) give an
// error, and the parser allocates nothing near what they announce.
func TestXReadParserHostile(t *testing.T) {
	entryHead := "*1\r\n*2\r\n" + bulk("st") + "*1\r\n*2\r\n" + bulk("1-1")
	cases := []struct{ name, in string }{
		{"bulk of 512 MiB, truncated", entryHead + "*2\r\n" + bulk("data") + "$536870912\r\nxxxx"},
		{"bulk of 1 PiB", entryHead + "*2\r\n" + bulk("data") + "$1125899906842624\r\nxxxx"},
		{"bulk within the bound, truncated", entryHead + "*2\r\n" + bulk("data") + "$15000000\r\nxxxx"},
		{"bulk with 19 digits", entryHead + "*2\r\n" + bulk("data") + "$9223372036854775807\r\nxx"},
		{"negative bulk length", entryHead + "*2\r\n" + bulk("data") + "$-5\r\nxx"},
		{"null field", entryHead + "*2\r\n$-1\r\n" + bulk("v")},
		{"null id", "*1\r\n*2\r\n" + bulk("st") + "*1\r\n*2\r\n$-1\r\n*0\r\n"},
		{"id too long", "*1\r\n*2\r\n" + bulk("st") + "*1\r\n*2\r\n" + bulk(strings.Repeat("1", 65)) + "*0\r\n"},
		{"negative array count", "*-2\r\n"},
		{"huge stream count", "*9223372036854775807\r\n"},
		{"count of 20 digits", "*99999999999999999999\r\n"},
		{"two streams", "*2\r\n"},
		{"stream of 3 parts", "*1\r\n*3\r\n"},
		{"stream of a null", "*1\r\n*-1\r\n"},
		{"another stream", "*1\r\n*2\r\n" + bulk("sx") + "*0\r\n"},
		{"a longer stream name", "*1\r\n*2\r\n" + bulk("stream") + "*0\r\n"},
		{"more entries than COUNT", "*1\r\n*2\r\n" + bulk("st") + "*101\r\n"},
		{"a billion entries", "*1\r\n*2\r\n" + bulk("st") + "*1000000000\r\n"},
		{"entry of 3 parts", "*1\r\n*2\r\n" + bulk("st") + "*1\r\n*3\r\n"},
		{"fields beyond MaxInt32", entryHead + "*4294967296\r\n"},
		{"odd field count", entryHead + "*3\r\n" + bulk("a") + bulk("b") + bulk("c")},
		{"two billion fields, truncated", entryHead + "*2000000000\r\n" + strings.Repeat(bulk("f"), 1000)},
		{"nested array as a field", entryHead + "*2\r\n*1000000\r\n"},
		{"integer reply", ":1\r\n"},
		{"simple string", "+OK\r\n"},
		{"error reply", "-ERR boom\r\n"},
		{"line without CR", "*1\n"},
		{"empty header", "$\r\n"},
		{"sign in a length", "*+1\r\n"},
		{"letters in a length", "*1a\r\n"},
		{"minus zero", "*-0\r\n"},
		{"a line longer than the buffer", "*1" + strings.Repeat("1", 100<<10) + "\r\n"},
		{"bulk not ended by CRLF", entryHead + "*2\r\n" + bulk("a") + "$1\r\nbXY"},
		{"garbage", "\x00\xff\r\n"},
	}
	for _, c := range cases {
		got, err, alloc := parseXRead(t, c.in, DefaultStreamEntryMaxBytes)
		if err == nil {
			t.Errorf("%s: accepted: %q", c.name, got)
			continue
		}
		if alloc > 256<<10 {
			t.Errorf("%s: %d bytes allocated", c.name, alloc)
		}
		if c.name == "error reply" {
			if errors.Is(err, errProtocol) || !strings.Contains(err.Error(), "ERR boom") {
				t.Errorf("error reply: %v", err)
			}
		} else if !errors.Is(err, errProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v: neither a protocol error nor a truncation", c.name, err)
		}
	}
	// every truncation of a valid reply is an error, not a panic or a hang
	in := xreadReply("st", []string{"1-1", "uid", "u", "data", strings.Repeat("d", 100)}, []string{"1-2", "n", strings.Repeat("x", 300)})
	for i := 1; i < len(in); i++ {
		if got, err, _ := parseXRead(t, in[:i], 200); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut after %d bytes: %q, err %v", i, got, err)
		}
	}
}

// FuzzXReadParser: on any input the parser ends (an error or the input's
// end) without panicking, every Data it delivers is well-formed, and it
// allocates at most a few times its input (plus a constant).
func FuzzXReadParser(f *testing.F) {
	f.Add(xreadReply("st", []string{"1-1", "a", "b"}, []string{"1-2", "data", strings.Repeat("x", 40)}), 32)
	f.Add("*-1\r\n"+xreadReply("st", []string{"1-1"}), 8)
	f.Add("*1\r\n*2\r\n$2\r\nst\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$536870912\r\nxx", 1<<20)
	f.Fuzz(func(t *testing.T, in string, max int) {
		if max < 1 || max > 1<<24 {
			max = 1 << 20
		}
		_, _, alloc := parseXRead(t, in, max)
		if alloc > uint64(16*len(in))+1<<20 {
			t.Fatalf("%d bytes allocated for %d bytes of input", alloc, len(in))
		}
	})
}
