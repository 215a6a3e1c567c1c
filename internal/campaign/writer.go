package campaign

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/store"
)

// writer writes the campaigns' progress in batches: the changes of a
// round's nodes, hundreds a millisecond, go in a few transactions. Rows
// that must be stored before the engine goes on (a reboot's request, a
// campaign's round) are written at once by now; a row whose commit
// someone awaits (the answer to the done report it records) carries a
// waiter, closed once its batch commits.
type writer struct {
	st  Store
	log *slog.Logger

	mu       sync.Mutex
	nodes    map[nodeKey]store.CampaignNode // +checklocks:mu
	boots    map[bootKey]store.CampaignBoot // +checklocks:mu
	flushing bool                           // +checklocks:mu
	idle     chan struct{}                  // closed when no flush loop runs; +checklocks:mu
	// waiters are closed once a batch holding their rows commits (a
	// failed batch's stay queued with its rows). +checklocks:mu
	waiters []chan struct{}

	flushMu sync.Mutex // one flush at a time
}

type nodeKey struct{ campaign, mac string }

type bootKey struct {
	campaign, mac string
	iteration     int
}

func newWriter(st Store, log *slog.Logger) *writer {
	w := &writer{st: st, log: log, nodes: map[nodeKey]store.CampaignNode{}, boots: map[bootKey]store.CampaignBoot{}, idle: make(chan struct{})}
	close(w.idle)
	return w
}

// writeDelay is how long a change waits for the writer, which then
// writes it with every change that came meanwhile (the rows of a round's
// nodes come about one a millisecond for a thousand nodes). A row that
// must be stored before the engine goes on does not wait: now writes
// what is queued, then it.
const writeDelay = 10 * time.Millisecond

// add queues changes; the latest state of a row wins.
func (w *writer) add(nodes []store.CampaignNode, boots []store.CampaignBoot) {
	w.addWaiting(nodes, boots, nil)
}

// addWaiting is add; stored, if not nil, is closed once the batch holding
// these rows (or later states of them, which replaced them in the queue)
// is committed, however many tries that takes. A caller gives a channel
// once.
func (w *writer) addWaiting(nodes []store.CampaignNode, boots []store.CampaignBoot, stored chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if stored != nil {
		w.waiters = append(w.waiters, stored)
	}
	for _, n := range nodes {
		w.nodes[nodeKey{n.Campaign, n.MAC}] = n
	}
	for _, b := range boots {
		w.boots[bootKey{b.Campaign, b.MAC, b.Iteration}] = b
	}
	w.loopLocked()
}

// loopLocked starts the flush loop unless it runs.
func (w *writer) loopLocked() {
	if !w.flushing {
		w.flushing = true
		w.idle = make(chan struct{})
		go w.loop(w.idle)
	}
}

func (w *writer) loop(idle chan struct{}) {
	defer close(idle)
	for {
		time.Sleep(writeDelay)
		w.flush()
		w.mu.Lock()
		if len(w.nodes)+len(w.boots) == 0 {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// flush writes what is queued, then closes the waiters of what it
// wrote. A batch that cannot be written is queued again (unless newer
// changes replaced its rows), with its waiters, and logged.
func (w *writer) flush() {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	nodes := make([]store.CampaignNode, 0, len(w.nodes))
	for _, n := range w.nodes {
		nodes = append(nodes, n)
	}
	boots := make([]store.CampaignBoot, 0, len(w.boots))
	for _, b := range w.boots {
		boots = append(boots, b)
	}
	w.nodes, w.boots = map[nodeKey]store.CampaignNode{}, map[bootKey]store.CampaignBoot{}
	waiters := w.waiters
	w.waiters = nil
	w.mu.Unlock()
	if len(nodes)+len(boots) == 0 {
		closeAll(waiters) // none without rows: nothing left to wait for
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.st.SaveCampaignProgress(ctx, nodes, boots)
	if err == nil {
		closeAll(waiters)
		return
	}
	w.log.Error("campaigns: cannot record progress, trying again", "nodes", len(nodes), "boots", len(boots), "err", err)
	w.mu.Lock()
	w.waiters = append(w.waiters, waiters...)
	for _, n := range nodes {
		if _, newer := w.nodes[nodeKey{n.Campaign, n.MAC}]; !newer {
			w.nodes[nodeKey{n.Campaign, n.MAC}] = n
		}
	}
	for _, b := range boots {
		if _, newer := w.boots[bootKey{b.Campaign, b.MAC, b.Iteration}]; !newer {
			w.boots[bootKey{b.Campaign, b.MAC, b.Iteration}] = b
		}
	}
	w.loopLocked() // after a flush of now or Flush: the loop tries again
	w.mu.Unlock()
	time.Sleep(time.Second) // in the flush loop: the next try waits
}

func closeAll(chs []chan struct{}) {
	for _, c := range chs {
		close(c)
	}
}

// wait returns once no flush loop runs.
func (w *writer) wait() {
	w.mu.Lock()
	idle := w.idle
	w.mu.Unlock()
	<-idle
}

// now runs a write that must be stored before the engine goes on,
// after what is queued, trying again each second while it fails, until
// ctx ends (then ctx's error).
func (w *writer) now(ctx context.Context, write func(ctx context.Context) error) error {
	w.flush()
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := write(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.log.Error("campaigns: cannot record a step, trying again", "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
