package campaign

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// wait gathers what happens to one node during one iteration: its
// reboot's outcome, its first new boot, that boot's done report.
type wait struct {
	campaign  string
	iteration int
	prev      string // the boot id before the reboot
	// untilDone: the iteration ends at its boot's done report.
	untilDone bool
	notify    chan struct{}
	// settled is closed once the row recording the done report is
	// committed (by the writer: recorded is set), or once the iteration
	// ended without it (closed is set).
	settled chan struct{}

	mu      sync.Mutex
	outcome *Outcome     // +checklocks:mu
	boot    *boot.Booted // +checklocks:mu
	doneRep *boot.Done   // +checklocks:mu
	// recorded: the iteration took doneRep into its row. +checklocks:mu
	recorded bool
	// closed: the iteration ended without a done report; a later one
	// ends nothing. +checklocks:mu
	closed bool
}

func newWait(c store.Campaign, row store.CampaignBoot) *wait {
	w := &wait{campaign: c.ID, iteration: row.Iteration, prev: row.PrevBootID, untilDone: c.UntilDone,
		notify: make(chan struct{}, 1), settled: make(chan struct{})}
	if row.Outcome != api.BootRequested && row.Outcome != "" {
		// Resumed after a restart: what the row already says.
		o := Outcome{MAC: row.MAC, RebootID: row.RebootID, OK: true, Method: row.Method, Fallback: row.Fallback, Ack: row.AckAt}
		w.outcome = &o
	}
	if row.BootID != "" && !row.BootedAt.IsZero() {
		w.boot = &boot.Booted{MAC: row.MAC, BootID: row.BootID, At: row.BootedAt,
			Context: api.BootContext{BootID: row.BootID, NodeMethod: row.NodeMethod}}
		if row.Rescued {
			w.boot.Context.Cause = api.BootCauseWatchdog
		}
	}
	return w
}

// storedWait is the wait of an iteration a previous server ended with a
// done report and stored: a node that reports it again (its answer lost
// with that server) is told the iteration it ended.
func storedWait(c store.Campaign, row store.CampaignBoot) *wait {
	w := newWait(c, row)
	w.doneRep = &boot.Done{BootID: row.BootID, Status: row.Status, Metrics: row.Metrics, At: row.DoneAt}
	w.recorded = true
	close(w.settled)
	return w
}

// resume takes, for an iteration resumed after a restart, a boot the node
// reported while no server waited for it: its boot id is no longer the
// one the row recorded before the reboot; then that boot's done report,
// if the tracker has one (reported before this wait was in place). It
// reports whether it took a done report.
func (w *wait) resume(b Boots, mac string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.boot == nil {
		cur := b.BootID(mac)
		if cur == "" || cur == w.prev {
			return false
		}
		st, booted := b.Status(mac)
		if !booted {
			return false
		}
		w.boot = &boot.Booted{MAC: mac, BootID: cur, At: st.Since, Context: api.BootContext{BootID: cur, Cause: api.BootCauseUnknown}}
	}
	if !w.untilDone || w.doneRep != nil {
		return false
	}
	if d := b.Done(mac); d != nil && d.BootID == w.boot.BootID {
		w.doneRep = d
		return true
	}
	return false
}

func (w *wait) signal() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *wait) rebooted(o Outcome) {
	w.mu.Lock()
	if w.outcome == nil {
		w.outcome = &o
	}
	w.mu.Unlock()
	w.signal()
}

func (w *wait) booted(b boot.Booted) {
	w.mu.Lock()
	if w.boot == nil && b.BootID != w.prev {
		w.boot = &b
	}
	w.mu.Unlock()
	w.signal()
}

// done takes the done report of the wait's boot if it ends the
// iteration (--until-done, and the iteration did not end otherwise), and
// reports whether it did. A repeat of the report before the iteration
// recorded it replaces it; after, the row keeps the first, and the
// repeat is answered as the first was.
func (w *wait) done(d boot.Done) bool {
	w.mu.Lock()
	ok := w.untilDone && !w.closed && w.boot != nil && w.boot.BootID == d.BootID
	if ok && !w.recorded {
		w.doneRep = &d
	}
	w.mu.Unlock()
	if ok {
		w.signal()
	}
	return ok
}

// take marks the done report taken into the iteration's row, and returns
// it with the channel to close once that row is committed.
func (w *wait) take() (boot.Done, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recorded = true
	return *w.doneRep, w.settled
}

// close ends the wait's taking of done reports, its iteration ending
// without one; unless force, not if one came meanwhile: then it returns
// false, and the iteration takes it.
func (w *wait) close(force bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.recorded || w.closed:
		return true
	case w.doneRep != nil && !force:
		return false
	}
	w.closed = true
	close(w.settled)
	return true
}

// stored returns the campaign and iteration the done report of bootID
// ended, once the row recording it is committed; "", 0 if it ended none
// (the iteration ended otherwise, or the report is of another boot). If
// ctx ends first, the error is of vocab.ErrUnavailable's kind.
func (w *wait) stored(ctx context.Context, bootID string) (string, int, error) {
	w.mu.Lock()
	ours := w.doneRep != nil && w.boot != nil && w.boot.BootID == bootID
	w.mu.Unlock()
	if !ours {
		return "", 0, nil
	}
	select {
	case <-w.settled:
	case <-ctx.Done():
		return "", 0, fmt.Errorf("%w: campaign %s iteration %d: the row recording the done report of boot %s is not stored yet (%v): report it again",
			vocab.ErrUnavailable, w.campaign, w.iteration, bootID, context.Cause(ctx))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.recorded {
		return "", 0, nil
	}
	return w.campaign, w.iteration, nil
}

func (w *wait) state() (*Outcome, *boot.Booted, *boot.Done) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outcome, w.boot, w.doneRep
}

// iteration is one node's part of one iteration.
type iteration struct {
	r   *run
	c   store.Campaign
	row store.CampaignBoot
	w   *wait
	// resumed: the row was stored by an earlier server.
	resumed bool
}

// outcomeGrace bounds the wait, past an iteration's boot deadline, for
// its reboot's outcome (the engine's own deadlines end it well before).
const outcomeGrace = time.Minute

// run follows the node from its reboot to the end of its hold, writing
// the row at each step.
func (x *iteration) run() {
	row := x.row
	bootDeadline := row.RequestedAt.Add(x.c.BootTimeout)
	var doneDeadline time.Time
	if !row.BootedAt.IsZero() { // resumed: the boot was stored
		doneDeadline = row.BootedAt.Add(x.c.DoneTimeout)
	}
	// failing: the boot deadline passed with no new boot; the iteration
	// fails, once its reboot's outcome says how (up to outcomeGrace).
	outcomeSeen, failing := false, false
	for {
		o, b, d := x.w.state()
		// changed: the row changed, and followers hear of it; write: the
		// change is worth a store write before the iteration ends (a
		// boot waiting for its done report), not an acknowledgement that
		// the end's write follows within the boot time (the reboot
		// record in the history has it meanwhile).
		changed, write := false, false
		if o != nil && !outcomeSeen {
			outcomeSeen, changed = true, true
			row.RebootID = o.RebootID
			switch {
			case o.OK:
				row.Method, row.Fallback, row.AckAt, row.DownAt = o.Method, o.Fallback, o.Ack, o.Ack
				if row.Outcome == api.BootRequested {
					row.Outcome = api.BootRebooted
				}
			case row.BootedAt.IsZero():
				row.Outcome, row.Error, row.Code = api.BootFailed, o.Error, o.Code
				if row.Error == "" {
					row.Error = "the reboot failed"
				}
				x.w.close(true)
				x.end(row, nil)
				return
			}
			// A reboot said to have failed after the node's new boot
			// (a reply cut after the agent had acted): the boot counts.
		}
		// The agent answers before it reboots, but its boot report can
		// reach the campaign before the engine's outcome does: a booted
		// node's iteration waits for the acknowledgement and method, up
		// to the boot deadline. A resumed iteration's reboot was asked by
		// the previous server: no outcome will come.
		awaitOutcome := !outcomeSeen && !x.resumed && time.Now().Before(bootDeadline)
		if b != nil && row.BootedAt.IsZero() && !failing {
			row.BootedAt, row.BootID, row.NodeMethod = b.At.UTC(), b.BootID, b.Context.NodeMethod
			row.Rescued = b.Context.Cause == api.BootCauseWatchdog
			if c := b.Context; row.RebootID == "" && c.Campaign == x.c.ID && c.Iteration == row.Iteration {
				// Resumed before the reboot's outcome was stored: the
				// boot's context has it (docs/boot-tracking.md).
				row.RebootID = c.RebootID
				if row.Method == "" {
					row.Method = c.Method
				}
			}
			if row.Outcome == api.BootRequested || row.Outcome == api.BootRebooted {
				row.Outcome = api.BootBooted
			}
			doneDeadline = row.BootedAt.Add(x.c.DoneTimeout)
			changed, write = true, true
		}
		if !row.BootedAt.IsZero() && !x.c.UntilDone && !awaitOutcome {
			row.Outcome = api.BootCompleted
			x.hold(row, nil)
			return
		}
		if d != nil && !row.BootedAt.IsZero() && row.DoneAt.IsZero() {
			// The answer to the done report waits for this row's commit.
			d, stored := x.w.take()
			row.DoneAt, row.Status, row.Metrics, row.Outcome = d.At.UTC(), d.Status, d.Metrics, api.BootCompleted
			x.hold(row, stored)
			return
		}
		if changed {
			x.progress(row, write)
		}
		deadline := bootDeadline
		if !row.BootedAt.IsZero() && x.c.UntilDone {
			deadline = doneDeadline
		}
		wait := time.Until(deadline)
		if wait <= 0 && row.BootedAt.IsZero() {
			failing = true
		}
		if failing && !outcomeSeen && !x.resumed {
			// The reboot is still going (a power cycle's off time, a
			// slow BMC): its outcome goes in the failed row.
			wait = time.Until(bootDeadline.Add(outcomeGrace))
		}
		if wait <= 0 {
			if !x.w.close(row.BootedAt.IsZero()) {
				continue // a done report came at the deadline: it ends the iteration
			}
			if row.BootedAt.IsZero() {
				row.Outcome, row.Code = api.BootFailed, "boot-timeout"
				row.Error = fmt.Sprintf("no new boot within %s", x.c.BootTimeout)
			} else {
				row.Outcome, row.Code = api.BootDoneTimeout, "done-timeout"
				row.Error = fmt.Sprintf("the experiment did not report done within %s of the boot", x.c.DoneTimeout)
			}
			x.end(row, nil)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-x.w.notify:
		case <-t.C:
		case <-x.r.ctx.Done():
			t.Stop()
			x.interrupted(row)
			return
		}
		t.Stop()
	}
}

// progress tells the followers of a row that changed and, with write,
// queues it for the next batch of writes.
func (x *iteration) progress(row store.CampaignBoot, write bool) {
	if write {
		x.r.e.writer.add(nil, []store.CampaignBoot{row})
	}
	x.r.setRow(row)
}

// hold leaves the experiment its time after a good iteration, then ends
// the iteration. stored, if not nil, is closed once the row is committed
// (it records a done report).
func (x *iteration) hold(row store.CampaignBoot, stored chan struct{}) {
	if x.c.Hold > 0 {
		// Completed, holding; end writes it again.
		x.r.e.writer.addWaiting(nil, []store.CampaignBoot{row}, stored)
		x.r.setRow(row)
		stored = nil
		t := time.NewTimer(x.c.Hold)
		select {
		case <-t.C:
		case <-x.r.ctx.Done():
			t.Stop()
		}
	}
	x.end(row, stored)
}

// interrupted ends the wait of an iteration when its campaign stops (or
// the engine does: then the row stays as it is, for the next server).
func (x *iteration) interrupted(row store.CampaignBoot) {
	x.r.mu.Lock()
	stopped := x.r.stopped
	x.r.mu.Unlock()
	if !stopped {
		// A done report taken meanwhile is not answered: the node
		// reports it again to the next server, which resumes this row.
		x.r.e.writer.add(nil, []store.CampaignBoot{row})
		return
	}
	x.w.close(true)
	row.Outcome = api.BootStopped
	x.end(row, nil)
}

// end ends the iteration; stored, if not nil, is closed once its row is
// committed.
func (x *iteration) end(row store.CampaignBoot, stored chan struct{}) { x.r.endIteration(row, stored) }
