package boot

import (
	"context"
	"log/slog"
	"sync"

	"github.com/walt-testbed/walt/internal/store"
)

// Platform log: the lines WalT writes about nodes ("node rpi1 is booted"),
// kept in a ring in memory for followers and written to the store in
// batches by the tracker's flusher, so that they survive restarts.

const (
	// LogStream is the stream of the platform log's lines.
	LogStream = "platform.nodes"
	// ringSize bounds the lines kept in memory for followers.
	ringSize = 10000
)

// PlatformLog is the platform log.
type PlatformLog struct {
	clock Clock
	store Store

	mu  sync.Mutex
	seq int64 // last assigned; +checklocks:mu
	// ring holds the last lines, at most ringSize: once full, a new line
	// replaces the oldest, at start. +checklocks:mu
	ring    []store.LogLine
	start   int
	pending []store.LogLine // not written yet; +checklocks:mu
	// added is closed and replaced at each new line. +checklocks:mu
	added chan struct{}
}

func newPlatformLog(ctx context.Context, st Store, clock Clock) (*PlatformLog, error) {
	last, err := st.LogLines(ctx, 0, 1)
	if err != nil {
		return nil, err
	}
	l := &PlatformLog{clock: clock, store: st, added: make(chan struct{})}
	if len(last) > 0 {
		l.seq = last[0].Seq
	}
	return l, nil
}

// add appends a line about a node.
func (l *PlatformLog) add(node, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	ll := store.LogLine{Seq: l.seq, At: l.clock.Now(), Stream: LogStream, Node: node, Line: line}
	if len(l.ring) < ringSize {
		l.ring = append(l.ring, ll)
	} else {
		l.ring[l.start] = ll
		l.start = (l.start + 1) % ringSize
	}
	l.pending = append(l.pending, ll)
	close(l.added)
	l.added = make(chan struct{})
}

func (l *PlatformLog) hasPending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending) > 0
}

// take returns the pending lines, which are then no longer pending.
func (l *PlatformLog) take() []store.LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending
	l.pending = nil
	return p
}

// write writes lines taken. Lines that cannot be written stay in memory
// only.
func (l *PlatformLog) write(ctx context.Context, log *slog.Logger, p []store.LogLine) {
	if len(p) == 0 {
		return
	}
	if err := l.store.AddLogLines(ctx, p); err != nil {
		log.Error("cannot record platform log lines", "lines", len(p), "err", err)
	}
}

// After returns the lines in memory with a Seq above seq, and a channel
// closed at the next line.
func (l *PlatformLog) After(seq int64) ([]store.LogLine, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := func(i int) store.LogLine { return l.ring[(l.start+i)%len(l.ring)] } // i-th oldest
	i := len(l.ring)
	for i > 0 && at(i-1).Seq > seq {
		i--
	}
	out := make([]store.LogLine, 0, len(l.ring)-i)
	for ; i < len(l.ring); i++ {
		out = append(out, at(i))
	}
	return out, l.added
}

// Seq is the sequence number of the last line.
func (l *PlatformLog) Seq() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}
