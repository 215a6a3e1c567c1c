package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls wait with a fatalRecorder on a goroutine of its own and returns
// what Fatalf said ("" if nothing) and how long wait took.
func run(t *testing.T, wait func(testing.TB)) (string, time.Duration) {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		wait(rec)
	}()
	<-done
	return rec.msg, time.Since(start)
}

func TestEventually(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		msg, took := run(t, func(tb testing.TB) {
			Eventually(tb, time.Second, "the third call", func() bool { calls++; return calls == 3 })
		})
		if msg != "" || calls != 3 || took > 100*time.Millisecond {
			t.Errorf("condition true at call 3: Fatalf(%q), %d calls, %s; want no failure, 3 calls, a few ms", msg, calls, took)
		}

		msg, took = run(t, func(tb testing.TB) {
			Eventually(tb, time.Second, "nothing", func() bool { return false })
		})
		if want := "still waiting for nothing after 1s"; msg != want || took < time.Second || took > 1100*time.Millisecond {
			t.Errorf("condition never true: Fatalf(%q) after %s, want %q after 1s", msg, took, want)
		}
	})
}

func TestEventuallyNil(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		msg, _ := run(t, func(tb testing.TB) {
			EventuallyNil(tb, time.Second, "the journal", func() error {
				calls++
				if calls < 3 {
					return errors.New("journal empty")
				}
				return nil
			})
		})
		if msg != "" || calls != 3 {
			t.Errorf("nil at call 3: Fatalf(%q), %d calls; want no failure, 3 calls", msg, calls)
		}

		calls = 0
		msg, took := run(t, func(tb testing.TB) {
			EventuallyNil(tb, 2*time.Second, "the journal", func() error {
				calls++
				return fmt.Errorf("journal = %d lines", calls)
			})
		})
		want := fmt.Sprintf("still waiting for the journal after 2s: journal = %d lines", calls)
		if msg != want || took < 2*time.Second {
			t.Errorf("never nil: Fatalf(%q) after %s, want %q after 2s", msg, took, want)
		}
	})
}
