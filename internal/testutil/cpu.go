package testutil

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime is the CPU time the process has used so far, user and system,
// for benchmarks that report CPU beside wall time.
func CPUTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
