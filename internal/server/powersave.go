package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/store"
)

// DefaultPowersave is how long a free node stays idle before powersave
// switches its PoE port off (WalT's POWERSAVE_TIMEOUT).
const DefaultPowersave = 2 * time.Hour

// powersave powers off free nodes that have been idle for a while, on
// switches with poe.reboots=true (WalT's powersave). A node's idle time
// starts at server start and again at each reboot, wake-up, acquisition or
// release. Ports are switched off through the PoE driver, which records
// them in the power journal (reason "powersave") before the request is
// sent: a reboot, WakeNodes or a restarted server powers them on again.
type powersave struct {
	idle time.Duration // 0: disabled
	now  func() time.Time
	log  *slog.Logger

	// op serialises sweeps and wake-ups, so that a node acquired during a
	// sweep is either left on or woken after it.
	op sync.Mutex

	mu      sync.Mutex
	since   time.Time            // server start; +checklocks:mu
	touched map[string]time.Time // node MAC -> last activity; +checklocks:mu
}

func newPowersave(idle time.Duration, log *slog.Logger) *powersave {
	return &powersave{idle: idle, now: time.Now, log: log, since: time.Now(), touched: map[string]time.Time{}}
}

// touch restarts the idle time of nodes.
func (p *powersave) touch(macs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, m := range macs {
		p.touched[m] = now
	}
}

// idleSince returns when the node was last active.
func (p *powersave) idleSince(mac string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.touched[mac]; ok {
		return t
	}
	return p.since
}

// runPowersave runs powersave sweeps until ctx ends (Serve runs it). It
// returns at once when powersave is disabled or there is no PoE driver.
func (s *Server) runPowersave(ctx context.Context) {
	if s.ps.idle <= 0 || s.cfg.PoE == nil {
		return
	}
	// Sweep a few times per idle period, at most once a minute: a node is
	// powered off at most a quarter of the period late.
	every := min(max(s.ps.idle/4, time.Second), time.Minute)
	s.log.Info("powersave enabled", "idle", s.ps.idle)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("powersave: sweep failed", "err", err)
			}
		}
	}
}

// sweep powers off the ports of free nodes idle for the powersave period
// and returns their MACs. Per-port failures are logged and retried after
// another period; the error is for failures to read the store.
func (s *Server) sweep(ctx context.Context) ([]string, error) {
	if s.ps.idle <= 0 || s.cfg.PoE == nil {
		return nil, nil
	}
	s.ps.op.Lock()
	defer s.ps.op.Unlock()
	inv, err := s.inventory(ctx)
	if err != nil {
		return nil, err
	}
	links, offs, err := s.linksAndOffs(ctx)
	if err != nil {
		return nil, err
	}
	dark := map[position]bool{}
	for _, o := range offs {
		dark[position{o.SwitchMAC, o.Port}] = true
	}
	devs := map[string]store.Device{}
	for _, d := range inv.devices {
		devs[d.MAC] = d
	}
	now := s.ps.now()
	// A port goes off only if every device on it is an idle free node.
	occupants := map[position][]string{}
	sleepy := map[position]bool{}
	for _, l := range links {
		p := position{l.SwitchMAC, l.Port}
		d, sw := devs[l.NodeMAC], devs[l.SwitchMAC]
		idle := d.Type == store.TypeNode && !d.Virtual && d.Owner == "" &&
			inv.settings[sw.MAC]["poe.reboots"] == "true" && now.Sub(s.ps.idleSince(d.MAC)) >= s.ps.idle
		if _, seen := sleepy[p]; !seen {
			sleepy[p] = true
		}
		sleepy[p] = sleepy[p] && idle && !dark[p]
		occupants[p] = append(occupants[p], d.MAC)
	}
	var ports []position
	for p, ok := range sleepy {
		if ok {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return nil, nil
	}
	slices.SortFunc(ports, func(a, b position) int { return cmp.Or(strings.Compare(a.sw, b.sw), a.port-b.port) })
	changes := make([]power.Change, len(ports))
	for i, p := range ports {
		changes[i] = power.Change{Outlet: power.Outlet{Switch: p.sw, Port: p.port}, State: power.Off, Reason: power.ReasonPowersave}
	}
	errs := s.cfg.PoE.Switch(ctx, changes)
	var off, offNames, failed []string
	for i, p := range ports {
		if errs[i] != nil {
			// Retry after another idle period, as WalT does.
			s.ps.touch(occupants[p]...)
			for _, m := range occupants[p] {
				failed = append(failed, devs[m].Name)
			}
			s.log.Warn("powersave: failed to turn off PoE", "switch", devs[p.sw].Name, "port", p.port, "err", errs[i])
			continue
		}
		off = append(off, occupants[p]...)
		for _, m := range occupants[p] {
			offNames = append(offNames, devs[m].Name)
		}
	}
	if len(off) > 0 {
		for _, m := range off {
			// Down on purpose: the boot watchdog leaves them alone.
			s.MarkDown(m, api.CausePowersave, "PoE")
		}
		s.log.Info("powersave: nodes powered off", "nodes", len(off), "names", offNames, "idle", s.ps.idle)
	}
	if len(failed) > 0 {
		s.log.Warn("powersave: nodes left on", "nodes", len(failed), "names", failed)
	}
	return off, nil
}

// WakeNodes powers on the nodes, among macs, whose PoE port powersave
// turned off, and restarts the idle time of all of them. walt node wait
// calls it before waiting for nodes to boot (WalT prints "Reactivating
// related switch port(s) in powersave mode." when woken is not empty).
// It returns the MACs of the nodes powered on, in input order; the error
// joins per-node failures, each naming the node. It returns at once when
// no port of these nodes is in powersave.
func (s *Server) WakeNodes(ctx context.Context, macs []string) (woken []string, err error) {
	s.ps.touch(macs...)
	if s.cfg.PoE == nil || len(macs) == 0 {
		return nil, nil
	}
	s.ps.op.Lock()
	defer s.ps.op.Unlock()
	links, offs, err := s.linksAndOffs(ctx)
	if err != nil || len(offs) == 0 {
		return nil, err
	}
	saved := map[position]bool{}
	for _, o := range offs {
		if o.Reason == power.ReasonPowersave {
			saved[position{o.SwitchMAC, o.Port}] = true
		}
	}
	at := map[string]position{}
	for _, l := range links {
		at[l.NodeMAC] = position{l.SwitchMAC, l.Port}
	}
	var changes []power.Change
	var owners [][]string // MACs behind each change
	index := map[position]int{}
	for _, m := range macs {
		p, ok := at[m]
		if !ok || !saved[p] {
			continue
		}
		if i, dup := index[p]; dup {
			owners[i] = append(owners[i], m)
			continue
		}
		index[p] = len(changes)
		changes = append(changes, power.Change{Outlet: power.Outlet{Switch: p.sw, Port: p.port}, State: power.On})
		owners = append(owners, []string{m})
	}
	if len(changes) == 0 {
		return nil, nil
	}
	errs := s.cfg.PoE.Switch(ctx, changes)
	ok := map[string]bool{}
	var failures []error
	for i, e := range errs {
		for _, m := range owners[i] {
			if e == nil {
				ok[m] = true
			} else {
				failures = append(failures, fmt.Errorf("power on node %s: %w", s.nodeName(ctx, m), e))
			}
		}
	}
	for _, m := range macs {
		if ok[m] {
			woken = append(woken, m)
		}
	}
	if len(woken) > 0 {
		s.log.Info("powersave: nodes powered on", "nodes", len(woken))
	}
	return woken, errors.Join(failures...)
}

func (s *Server) nodeName(ctx context.Context, mac string) string {
	if d, err := s.store.Device(ctx, mac); err == nil {
		return d.Name
	}
	return mac
}

// ownershipPower applies an ownership change to powersave: nodes acquired
// are powered on if powersave turned them off, nodes released start their
// idle time. It returns lines for the user.
func (s *Server) ownershipPower(ctx context.Context, action string, changes []store.DeviceChange) []string {
	macs := make([]string, len(changes))
	for i, c := range changes {
		macs[i] = c.MAC
	}
	if action != "acquire" {
		s.ps.touch(macs...)
		return nil
	}
	woken, err := s.WakeNodes(ctx, macs)
	var msgs []string
	if len(woken) > 0 {
		msgs = append(msgs, "Reactivating related switch port(s) in powersave mode.")
	}
	if err != nil {
		s.log.Warn("powersave: acquired nodes not powered on", "err", err)
		msgs = append(msgs, fmt.Sprintf("Warning: %v", err))
	}
	return msgs
}
