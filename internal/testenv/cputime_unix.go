//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user + system) the process has used, GC
// workers included; unlike wall time it hardly depends on other load.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
