package testutil

import (
	"testing"
	"time"
)

// Eventually checks cond every few milliseconds until it holds, and fails
// the test naming what was awaited if it still does not after timeout (a
// bound for a stuck test, not a timing assertion).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %s", what, timeout)
		}
		<-tick.C
	}
}
