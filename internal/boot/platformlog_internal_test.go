package boot

import (
	"fmt"
	"testing"
	"time"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) AfterFunc(time.Duration, func()) (stop func() bool) {
	return func() bool { return true }
}

// The ring keeps the last ringSize lines, in order, once it has wrapped.
func TestPlatformLogRing(t *testing.T) {
	l := &PlatformLog{clock: fixedClock{}, added: make(chan struct{})}
	const extra = 5
	for i := range ringSize + extra {
		l.add("n", fmt.Sprintf("line %d", i+1))
	}
	all, _ := l.After(0)
	if len(all) != ringSize || all[0].Seq != extra+1 || all[len(all)-1].Seq != ringSize+extra {
		t.Fatalf("After(0): %d lines, from %d to %d; want %d, from %d to %d", len(all), all[0].Seq, all[len(all)-1].Seq, ringSize, extra+1, ringSize+extra)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("line %d has seq %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}
	last, _ := l.After(ringSize)
	if len(last) != extra || last[0].Line != fmt.Sprintf("line %d", ringSize+1) {
		t.Errorf("After(%d) = %d lines starting %+v, want the last %d", ringSize, len(last), last[0], extra)
	}
}

// A line added to a full ring costs the same as to an empty one (it used
// to move the whole ring).
func BenchmarkPlatformLogAddFull(b *testing.B) {
	l := &PlatformLog{clock: fixedClock{}, added: make(chan struct{})}
	for range ringSize {
		l.add("n", "warm")
	}
	b.ResetTimer()
	for b.Loop() {
		l.add("n", "line")
		l.pending = l.pending[:0]
	}
}
