package cli

import (
	"fmt"
	"io"
	"sync"

	"github.com/walt-testbed/walt/api"
)

// progress shows "done/total" on stderr while a reboot streams, only when
// stderr is a terminal; the line is erased at the end.
type progress struct {
	w            io.Writer
	mu           sync.Mutex
	total, count int
	shown        bool
}

func newProgress(e *env) *progress {
	if !e.IsTerminal(e.Stderr) {
		return &progress{}
	}
	return &progress{w: e.Stderr}
}

func (p *progress) update(ev api.RebootEvent) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Type {
	case api.EventStart:
		p.total, p.count = ev.Total, 0
	case api.EventNode:
		p.count++
	default:
		return
	}
	fmt.Fprintf(p.w, "\rRebooting: %d/%d nodes done", p.count, p.total)
	p.shown = true
}

func (p *progress) done() {
	if p.w == nil || !p.shown {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
}
