package boot

import (
	"time"

	"github.com/walt-testbed/walt/api"
)

// Awaited is a reboot that an earlier server asked and whose boot it did
// not see: the node's next boot is still this reboot's.
type Awaited struct {
	MAC  string
	Info RebootInfo
	// Requested is when the reboot was asked; Method, the method that
	// rebooted the node, if the earlier server knew it.
	Requested time.Time
	Method    string
	// Outcome is how the reboot ended: Rebooted, Failed (no method
	// worked, one may have reached the node) or Interrupted (the earlier
	// server stopped before knowing); zero when not known yet (a reboot
	// another server still runs). The boot's context says when the
	// server does not know that the reboot reached the node. NotReached
	// is not restored: the node's next boot is not the reboot's.
	Outcome Outcome
	// Retries is the node's boot.retries, for a watchdog's reboot: with
	// the watchdog's retries left (the node's stored boot status) it
	// gives the try's number.
	Retries int
	// CampaignDeadline, for a watchdog's rescue of a campaign's boot
	// (Info names the campaign): a boot after it is not the campaign's
	// iteration. Zero: Info's deadline.
	CampaignDeadline time.Time
}

// Restore makes each awaited reboot its node's pending reboot, as
// BeginReboot and RebootEnded would have: the node's next boot gets its
// context (cause, requester, method, reboot ID, campaign and iteration)
// and lands in its record. The server calls it at start, before it
// serves, with the reboots its predecessor left waiting for their boot;
// it reads nothing. A node with a reboot of this server's pending, one
// the tracker does not know, or one whose status says it booted since
// the reboot was asked, is left alone, as is a reboot that reached
// nothing (NotReached). A node whose taken reboot worked (Rebooted) and
// whose status says booted (since before the request) is booting from
// the request on, as RebootEnded made it: the tracker holds that status
// back a while (deferDownLocked), and a restart must not lose it. It
// returns how many it took.
func (t *Tracker) Restore(as []Awaited) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	taken := 0
	for _, a := range as {
		n := t.nodes[a.MAC]
		if n == nil || n.reboot != nil || (n.booted && !n.since.Before(a.Requested)) || a.Outcome == NotReached {
			continue
		}
		// ended: no engine of this server will tell the outcome; the
		// boot alone completes it.
		p := &pendingReboot{requested: a.Requested, deadline: a.Info.Deadline(a.Requested), info: a.Info, method: a.Method, outcome: a.Outcome, ended: true}
		p.campaignDeadline = p.deadline
		if !a.CampaignDeadline.IsZero() {
			p.campaignDeadline = a.CampaignDeadline
		}
		if a.Info.Cause == api.CauseBootupTimeout && a.Retries > 0 && n.retriesLeft >= 0 && n.retriesLeft < a.Retries {
			p.watchdogTry, p.watchdogTries = a.Retries-n.retriesLeft, a.Retries
		}
		n.reboot = p
		if a.Outcome == Rebooted && n.booted {
			// The reboot took the node down and its boot has not come:
			// the status RebootEnded gave it, which the tracker may not
			// have written yet (deferDownLocked).
			n.lastMethod = a.Method
			if a.Info.Cause != api.CauseBootupTimeout {
				n.retriesLeft = -1
			}
			n.booted, n.since, n.cause, n.method, n.note = false, a.Requested, a.Info.Cause, a.Method, ""
			t.markDirtyLocked(n)
			t.changedLocked()
		}
		taken++
	}
	return taken
}
