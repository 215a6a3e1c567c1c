package testutil

import (
	"errors"
	"testing"
	"time"
)

// Eventually checks cond every few milliseconds until it holds, and fails
// the test naming what was awaited if it still does not after timeout (a
// bound for a stuck test, not a timing assertion).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyNil(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// EventuallyNil is Eventually for a condition that can say why it does
// not hold yet: it waits until cond returns nil, and on timeout fails with
// cond's last error (a diff, the output of a process) after what.
func EventuallyNil(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if err == errNotYet {
				t.Fatalf("still waiting for %s after %s", what, timeout)
			}
			t.Fatalf("still waiting for %s after %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// errNotYet is Eventually's condition not holding: nothing more to say.
var errNotYet = errors.New("not yet")
