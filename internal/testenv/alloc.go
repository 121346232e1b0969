package testenv

import "runtime"

// AllocatedBytes reports the bytes f allocates on the heap (of the whole
// process: run it where no other goroutine allocates much), for tests that
// bound a decoder's memory by its input's size instead of by time.
func AllocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
