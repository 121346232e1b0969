package pickle

import (
	"bytes"
	"math/big"
	"strings"
	"testing"

	"github.com/siobridge/siobridge/internal/testenv"
)

// refs appends count copies of unit in batches under marks, each batch
// closed by closer, so the stack stays short.
func refs(in []byte, unit []byte, count int, closer byte) []byte {
	for count > 0 {
		k := min(count, 1000)
		in = append(in, opMark)
		in = append(in, bytes.Repeat(unit, k)...)
		in = append(in, closer)
		count -= k
	}
	return in
}

// BenchmarkHostilePickle: cost per input byte of Unmarshal on an emit as
// python-socketio pickles it and on hostile shapes.
func BenchmarkHostilePickle(b *testing.B) {
	testenv.BenchHostile(b, []testenv.HostileCase{
		{Name: "benign", Make: func(n int) []byte {
			var args []any
			for size := 0; size < n-200; size += 70 {
				args = append(args, Dict{{"user", "alice"}, {"text", "hello, this is a chat message"}, {"n", int64(size)}})
			}
			out, err := Marshal(Dict{{"method", "emit"}, {"event", "chat"}, {"data", Tuple{args}}, {"namespace", "/"},
				{"room", "room1"}, {"skip_sid", nil}, {"callback", nil}, {"host_id", "0123456789abcdef"}})
			if err != nil {
				panic(err)
			}
			return out
		}},
		// protocol 0 text opcodes: line() used to copy the rest of the input
		{Name: "text-INT-lines", Make: func(n int) []byte {
			return append(append([]byte("(l"), strings.Repeat("I123456\na", (n-3)/9)...), '.')
		}},
		{Name: "text-GET-lines", Make: func(n int) []byte {
			return append(append([]byte("I1\np0\n0(l"), strings.Repeat("g0\na", (n-10)/4)...), '.')
		}},
		// a list of n/4 values (at most what the stack holds) referenced
		// n/4 times (n²/16 values expanded): refused at the expansion
		// budget (64 KiB + 64 per input byte)
		{Name: "shared-list", Make: func(n int) []byte {
			in := append([]byte{opProto, 4, opEmptyList, opMark}, bytes.Repeat([]byte{'N'}, min(n/4, maxStack-2))...)
			in = append(in, opAppends, opBinPut, 0, '0', opEmptyList)
			in = refs(in, []byte{opBinGet, 0}, (n-len(in))/2, opAppends)
			return append(in, '.')
		}, WantErr: true},
		// an integer dict key of up to the 4300 digits allowed, set again
		// and again (converted to text once; refused at the budget)
		{Name: "int-key-refs", Make: func(n int) []byte {
			key := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(min(maxIntDigits, n/3))), nil)
			in := append([]byte{opProto, 4}, long4(key.Sub(key, big.NewInt(1)))...)
			in = append(in, opBinPut, 0, '0', opEmptyDict)
			in = refs(in, []byte{opBinGet, 0, 'N'}, (n-len(in))/3, opSetItems)
			return append(in, '.')
		}, AnyErr: true},
		// a long str key set again and again (each insertion hashes it)
		{Name: "str-key-refs", Make: func(n int) []byte {
			in := append([]byte{opProto, 4}, binUnicode(strings.Repeat("k", n/2))...)
			in = append(in, opBinPut, 0, '0', opEmptyDict)
			in = refs(in, []byte{opBinGet, 0, 'N'}, (n-len(in))/3, opSetItems)
			return append(in, '.')
		}, AnyErr: true},
		// lists nested 500 deep, again and again
		{Name: "deep-lists", Make: func(n int) []byte {
			chain := strings.Repeat("]", 500) + strings.Repeat("a", 500)
			return append(append([]byte{opProto, 4, opEmptyList}, strings.Repeat(chain, (n-4)/len(chain))...), '.')
		}},
		// the most allocation per byte: one-entry dicts
		{Name: "one-entry-dicts", Make: func(n int) []byte {
			in := []byte{opProto, 4, opShortBinUni, 1, 'k', opBinPut, 0, '0', opEmptyList}
			in = refs(in, []byte{opEmptyDict, opBinGet, 0, 'N', opSetItem}, (n-len(in))/5, opAppends)
			return append(in, '.')
		}},
	}, func(in []byte) error {
		_, err := Unmarshal(in)
		return err
	})
}
