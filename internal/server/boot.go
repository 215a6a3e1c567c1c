package server

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/history"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Boot tracking lives in internal/boot; this is the server's side of it:
// the watchdog's settings and reboots, and the wake hook of `walt node
// wait`.

// WakeFunc powers on nodes that are off on purpose (powersave) before
// `walt node wait` waits for them, and returns the names of those it
// powered on. Powersave installs one with Server.SetWakeFunc.
type WakeFunc func(ctx context.Context, nodes []store.Device) (woken []string, err error)

// wakeHook holds the WakeFunc; nil means powersave's WakeNodes.
type wakeHook struct {
	mu sync.Mutex
	f  WakeFunc // +checklocks:mu
}

// watchdog is the boot watchdog's view of the server.
type watchdog struct{ s *Server }

// Limits reads the nodes' boot.timeout and boot.retries.
func (w watchdog) Limits(ctx context.Context, macs []string) (map[string]boot.Limit, error) {
	settings, err := w.s.store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]boot.Limit, len(macs))
	for _, mac := range macs {
		var l boot.Limit
		l.Timeout, _ = watchdogTimeout(settings[mac])
		l.Retries, _ = strconv.Atoi(effective(settings[mac], vocab.BootRetries))
		out[mac] = l
	}
	return out, nil
}

// watchdogTimeout returns a node's boot.timeout, false when disabled.
func watchdogTimeout(settings map[string]string) (time.Duration, bool) {
	secs, err := strconv.Atoi(effective(settings, vocab.BootTimeout))
	if err != nil || secs <= 0 {
		return 0, false // "none"
	}
	return time.Duration(secs) * time.Second, true
}

// bootWait is how long a reboot of a node with these settings waits for
// its boot (boot.RebootInfo.Wait): boot.timeout × (boot.retries + 1),
// after which the watchdog has given up on the node; boot.MaxWait when
// the watchdog is off (boot.timeout none), and at most that.
func bootWait(settings map[string]string) time.Duration {
	timeout, on := watchdogTimeout(settings)
	if !on {
		return boot.MaxWait
	}
	retries, _ := strconv.Atoi(effective(settings, vocab.BootRetries))
	return min(boot.MaxWait, timeout*time.Duration(retries+1))
}

// restoreAwaited gives the boot tracker the reboots the previous server
// asked and whose boot it did not see, so that the first boot a node
// reports to this server says why it happened (docs/boot-tracking.md):
// each node's latest reboot record with no boot yet that may have reached
// the node (it worked, failed in a way that leaves that possible, or was
// interrupted: the boot's context then says so), no older than the
// time its boot was waited for: the campaign's --boot-timeout for a
// campaign's reboot, else the node's bootWait. A campaign's reboot names
// its campaign and iteration in its cause, and gets the campaign's name
// (running or not); a watchdog's rescue of a campaign's boot gets them
// from the running campaign's row waiting for that boot. A few reads at
// start (the records, the settings, the running campaigns' rows, the
// campaigns: the running ones, then each other one a record names, by
// id), none per boot report; at most one reboot a node.
func (s *Server) restoreAwaited(ctx context.Context) error {
	now := time.Now()
	recs, err := s.store.LatestReboots(ctx, now.Add(-boot.MaxWait))
	if err != nil || len(recs) == 0 {
		return err
	}
	settings, err := s.store.Settings(ctx)
	if err != nil {
		return err
	}
	rows, err := s.store.UnbootedCampaignBoots(ctx, api.CampaignRunning, []string{api.BootRequested, api.BootRebooted})
	if err != nil {
		return err
	}
	campaigns, err := s.awaitedCampaigns(ctx, recs, len(rows) > 0)
	if err != nil {
		return err
	}
	rowOf := make(map[string]store.CampaignBoot, len(rows))
	for _, r := range rows {
		if old, ok := rowOf[r.MAC]; !ok || r.RequestedAt.After(old.RequestedAt) {
			rowOf[r.MAC] = r
		}
	}
	as := make([]boot.Awaited, 0, len(recs))
	for _, r := range recs {
		outcome := recordOutcome(r)
		if outcome == boot.NotReached {
			continue // the node's next boot is not this reboot's
		}
		retries, _ := strconv.Atoi(effective(settings[r.NodeMAC], vocab.BootRetries))
		a := boot.Awaited{MAC: r.NodeMAC, Requested: r.RequestedAt, Method: r.Method, Outcome: outcome, Retries: retries,
			Info: boot.RebootInfo{RecordID: r.ID, Requester: r.Requester, Cause: r.Cause, Wait: bootWait(settings[r.NodeMAC])}}
		if id, it, n, ok := parseCampaignCause(r.Cause); ok {
			a.Info.Campaign, a.Info.Iteration, a.Info.Iterations = id, it, n
			if c, ok := campaigns[id]; ok {
				a.Info.CampaignName = c.Name
				if c.BootTimeout > 0 { // the campaign waited for the boot its own time
					a.Info.Wait = c.BootTimeout
				}
			}
		} else if row, ok := rowOf[r.NodeMAC]; ok && r.Cause == api.CauseBootupTimeout && !row.RequestedAt.After(r.RequestedAt) {
			// The watchdog's rescue of the boot the campaign's row (asked
			// before) waits for: still the campaign's iteration, within
			// the campaign's wait.
			c := campaigns[row.Campaign]
			a.Info.Campaign, a.Info.CampaignName, a.Info.Iteration, a.Info.Iterations = row.Campaign, c.Name, row.Iteration, c.Repeat
			a.CampaignDeadline = boot.RebootInfo{Wait: c.BootTimeout}.Deadline(row.RequestedAt)
		}
		if now.After(a.Info.Deadline(r.RequestedAt)) {
			continue // whoever waited for its boot has given up
		}
		as = append(as, a)
	}
	if n := s.boots.Restore(as); n > 0 {
		s.log.Info("boot tracking: reboots of the previous server still waiting for their boot", "nodes", n)
	}
	return nil
}

// recordOutcome is how the reboot of a record ended, as the boot tracker
// hears of it: interrupted when the server that ran it stopped before
// knowing (the request may or may not have reached the node), zero while
// another server still runs it, else as its outcome and attempts say
// (history.MayHaveActed).
func recordOutcome(r store.Reboot) boot.Outcome {
	switch {
	case r.State == store.RebootInterrupted:
		return boot.Interrupted
	case r.State == store.RebootRunning:
		return 0
	case r.OK:
		return boot.Rebooted
	case history.MayHaveActed(r):
		return boot.Failed
	}
	return boot.NotReached
}

// awaitedCampaigns reads the campaigns restoreAwaited needs, by ID: the
// running ones if withRunning (their rows await boots), and each other
// one the causes of recs name, whatever its state: a campaign that ended
// or was stopped while no server ran still names the boot of its last
// reboot. One read for the running campaigns, one per other campaign
// named (at most one a record).
func (s *Server) awaitedCampaigns(ctx context.Context, recs []store.Reboot, withRunning bool) (map[string]store.Campaign, error) {
	campaigns := map[string]store.Campaign{}
	if withRunning {
		cs, err := s.store.Campaigns(ctx, store.CampaignFilter{State: api.CampaignRunning})
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			campaigns[c.ID] = c
		}
	}
	tried := map[string]bool{}
	for _, r := range recs {
		id, _, _, ok := parseCampaignCause(r.Cause)
		if _, known := campaigns[id]; !ok || known || tried[id] {
			continue
		}
		tried[id] = true
		cs, err := s.store.Campaigns(ctx, store.CampaignFilter{ID: id})
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			campaigns[c.ID] = c
		}
	}
	return campaigns, nil
}

// Reboot is the watchdog's hard reboot (watchdogReboot).
func (w watchdog) Reboot(ctx context.Context, mac string) { w.s.watchdogReboot(ctx, mac) }

// SetWakeFunc installs the function `walt node wait` calls to power on
// nodes in powersave before waiting for them (issue 5, powersave).
func (s *Server) SetWakeFunc(f WakeFunc) {
	s.wake.mu.Lock()
	defer s.wake.mu.Unlock()
	s.wake.f = f
}

// MarkDown marks a node not booted on purpose; powersave calls it with
// cause api.CausePowersave, which the boot watchdog leaves alone.
func (s *Server) MarkDown(mac, cause, method string) { s.boots.MarkDown(mac, cause, method) }

// StartBootTracking starts the periodic checks of boot tracking: silent
// nodes go down, the boot watchdog reboots stuck nodes. Serve calls it;
// tests serving Handler() call it themselves. stop ends the checks.
func (s *Server) StartBootTracking() (stop func()) { return s.boots.Start() }

// Close stops the campaigns and boot tracking and writes their pending
// changes. Call it before closing the store.
func (s *Server) Close() error {
	s.campaigns.Close()
	s.boots.Close()
	return nil
}
