package campaign

import (
	"fmt"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/store"
)

// wait gathers what happens to one node during one iteration: its
// reboot's outcome, its first new boot, that boot's done report.
type wait struct {
	campaign  string
	iteration int
	prev      string // the boot id before the reboot
	notify    chan struct{}

	mu      sync.Mutex
	outcome *Outcome     // +checklocks:mu
	boot    *boot.Booted // +checklocks:mu
	doneRep *boot.Done   // +checklocks:mu
}

func newWait(campaign string, it int, row store.CampaignBoot) *wait {
	w := &wait{campaign: campaign, iteration: it, prev: row.PrevBootID, notify: make(chan struct{}, 1)}
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

// resume takes, for an iteration resumed after a restart, a boot the node
// reported while no server waited for it: its boot id is no longer the
// one the row recorded before the reboot.
func (w *wait) resume(b Boots, mac string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.boot != nil {
		return
	}
	cur := b.BootID(mac)
	if cur == "" || cur == w.prev {
		return
	}
	st, booted := b.Status(mac)
	if !booted {
		return
	}
	w.boot = &boot.Booted{MAC: mac, BootID: cur, At: st.Since, Context: api.BootContext{BootID: cur, Cause: api.BootCauseUnknown}}
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

func (w *wait) done(d boot.Done) {
	w.mu.Lock()
	if w.boot != nil && w.boot.BootID == d.BootID {
		w.doneRep = &d
	}
	w.mu.Unlock()
	w.signal()
}

// campaignOf returns the campaign and iteration a done report of bootID
// ends, if it is the boot this wait has seen.
func (w *wait) campaignOf(bootID string) (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.boot != nil && w.boot.BootID == bootID {
		return w.campaign, w.iteration
	}
	return "", 0
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
				x.end(row)
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
			x.hold(row)
			return
		}
		if d != nil && row.DoneAt.IsZero() {
			row.DoneAt, row.Status, row.Metrics, row.Outcome = d.At.UTC(), d.Status, d.Metrics, api.BootCompleted
			x.hold(row)
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
			if row.BootedAt.IsZero() {
				row.Outcome, row.Code = api.BootFailed, "boot-timeout"
				row.Error = fmt.Sprintf("no new boot within %s", x.c.BootTimeout)
			} else {
				row.Outcome, row.Code = api.BootDoneTimeout, "done-timeout"
				row.Error = fmt.Sprintf("the experiment did not report done within %s of the boot", x.c.DoneTimeout)
			}
			x.end(row)
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
// the iteration.
func (x *iteration) hold(row store.CampaignBoot) {
	if x.c.Hold > 0 {
		x.progress(row, true) // completed, holding; end writes it again
		t := time.NewTimer(x.c.Hold)
		select {
		case <-t.C:
		case <-x.r.ctx.Done():
			t.Stop()
		}
	}
	x.end(row)
}

// interrupted ends the wait of an iteration when its campaign stops (or
// the engine does: then the row stays as it is, for the next server).
func (x *iteration) interrupted(row store.CampaignBoot) {
	x.r.mu.Lock()
	stopped := x.r.stopped
	x.r.mu.Unlock()
	if !stopped {
		x.r.e.writer.add(nil, []store.CampaignBoot{row})
		return
	}
	row.Outcome = api.BootStopped
	x.end(row)
}

func (x *iteration) end(row store.CampaignBoot) { x.r.endIteration(row) }
