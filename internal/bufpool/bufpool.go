// Package bufpool recycles the payload buffers of emits: dialects take
// them for the messages they encode, and the emitter gives them back once
// the bus has published them (a bus does not keep message data after
// Publish returns).
package bufpool

import "sync"

var pool = sync.Pool{New: func() any { return new([]byte) }}

// maxKept bounds the buffers worth keeping.
const maxKept = 64 << 10

// Get returns an empty buffer with room for at least n bytes.
func Get(n int) []byte {
	b := *pool.Get().(*[]byte)
	if cap(b) < n {
		return make([]byte, 0, n)
	}
	return b[:0]
}

// Put hands b back for reuse; the caller must not use it afterwards.
func Put(b []byte) {
	if cap(b) == 0 || cap(b) > maxKept {
		return
	}
	b = b[:0]
	pool.Put(&b)
}
