package queue_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/siobridge/siobridge/queue"
)

func TestStreamFieldsRoundTrip(t *testing.T) {
	pairs := [][2]string{{"uid", "5bd3"}, {"nsp", "/"}, {"", ""}, {"data", string(make([]byte, 300))}}
	var b []byte
	for _, p := range pairs {
		b = queue.AppendStreamField(b, p[0], p[1])
	}
	var got [][2]string
	if err := queue.StreamFields(b, func(f, v []byte) bool {
		got = append(got, [2]string{string(f), string(v)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, pairs) {
		t.Fatalf("got %q", got)
	}
	if n, err := queue.StreamFieldCount(b); n != 4 || err != nil {
		t.Fatalf("count %d %v", n, err)
	}
	stopped := 0
	queue.StreamFields(b, func(_, _ []byte) bool { stopped++; return false })
	if stopped != 1 {
		t.Fatalf("f returning false did not stop: %d calls", stopped)
	}
}

// TestStreamFieldsHostile: truncated pairs, lengths past the end and
// overlong varints are refused, never read past the data.
func TestStreamFieldsHostile(t *testing.T) {
	good := queue.AppendStreamField(nil, "type", "3")
	for name, data := range map[string][]byte{
		"field without value":  queue.AppendStreamField(nil, "a", "b")[:2],
		"truncated value":      good[:len(good)-1],
		"length past the end":  {0x05, 'a'},
		"huge length":          {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'},
		"overlong varint":      {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
		"varint without end":   {0x80},
		"value length missing": {0x01, 'a'},
	} {
		err := queue.StreamFields(data, func(_, _ []byte) bool { return true })
		if !errors.Is(err, queue.ErrStreamFields) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzStreamFields(f *testing.F) {
	f.Add(queue.AppendStreamField(queue.AppendStreamField(nil, "uid", "x"), "data", "{}"))
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		err := queue.StreamFields(data, func(k, v []byte) bool {
			total += len(k) + len(v)
			return true
		})
		if total > len(data) {
			t.Fatalf("read %d bytes out of %d", total, len(data))
		}
		if err == nil { // what parses writes back the same
			var b []byte
			queue.StreamFields(data, func(k, v []byte) bool {
				b = queue.AppendStreamField(b, string(k), string(v))
				return true
			})
			if len(b) > len(data) {
				t.Fatalf("rewritten %d bytes from %d", len(b), len(data))
			}
		}
	})
}

// A stream entry's fields, as the node-streams dialect writes them.
func ExampleAppendStreamField() {
	var data []byte
	data = queue.AppendStreamField(data, "uid", "emitter")
	data = queue.AppendStreamField(data, "type", "3")
	m := queue.Message{Channel: "socket.io", Stream: true, MaxLen: 10000, Data: data}
	queue.StreamFields(m.Data, func(field, value []byte) bool {
		fmt.Printf("%s=%s\n", field, value)
		return true
	})
	// Output:
	// uid=emitter
	// type=3
}
