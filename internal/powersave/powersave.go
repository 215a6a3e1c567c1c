// Package powersave powers off free nodes that have been idle for a while,
// on switches with poe.reboots=true (WalT's powersave), and powers them on
// again when they are wanted (Wake). A node's idle time starts at server
// start and again at each reboot, wake-up, acquisition or release (Touch).
// Ports are switched off through the PoE driver, which records them in the
// power journal (reason "powersave") before the request is sent: a reboot,
// Wake or a restarted server powers them on again. Nodes powered off are
// marked down, cause api.CausePowersave, through the boot tracker, which
// owns that state and whose watchdog leaves them alone.
package powersave

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
	"github.com/walt-testbed/walt/internal/vocab"
)

// DefaultIdle is how long a free node stays idle before powersave
// switches its PoE port off (WalT's POWERSAVE_TIMEOUT).
const DefaultIdle = 2 * time.Hour

// Store is what powersave reads of the server's store.
type Store interface {
	Device(ctx context.Context, mac string) (store.Device, error)
	Devices(ctx context.Context) ([]store.Device, error)
	Settings(ctx context.Context) (map[string]map[string]string, error)
	Links(ctx context.Context) ([]store.Link, error)
	PoEOffs(ctx context.Context) ([]store.PoEOff, error)
}

// Tracker is told of the nodes powersave powers off.
type Tracker interface {
	MarkDown(mac, cause, method string)
}

// Config configures a Powersave.
type Config struct {
	// Idle is how long a free node stays idle before its port goes off;
	// 0 disables the sweeps (Wake still powers nodes on).
	Idle    time.Duration
	Store   Store
	PoE     power.Switcher // nil: no PoE, nothing to do
	Tracker Tracker
	Logger  *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Powersave is safe for concurrent use.
type Powersave struct {
	idle    time.Duration
	st      Store
	poe     power.Switcher
	tracker Tracker
	now     func() time.Time
	log     *slog.Logger

	// op serialises sweeps and wake-ups, so that a node acquired during a
	// sweep is either left on or woken after it.
	op sync.Mutex

	mu      sync.Mutex
	since   time.Time            // start; +checklocks:mu
	touched map[string]time.Time // node MAC -> last activity; +checklocks:mu
}

// position is where a device is plugged.
type position struct {
	sw   string // switch MAC
	port int
}

// New returns a Powersave; idle times start now.
func New(cfg Config) *Powersave {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Powersave{idle: cfg.Idle, st: cfg.Store, poe: cfg.PoE, tracker: cfg.Tracker, now: cfg.Now, log: cfg.Logger,
		since: cfg.Now(), touched: map[string]time.Time{}}
}

// Touch restarts the idle time of nodes.
func (p *Powersave) Touch(macs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, m := range macs {
		p.touched[m] = now
	}
}

// idleSince returns when the node was last active.
func (p *Powersave) idleSince(mac string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.touched[mac]; ok {
		return t
	}
	return p.since
}

// Run sweeps until ctx ends. It returns at once when powersave is
// disabled or there is no PoE driver.
func (p *Powersave) Run(ctx context.Context) {
	if p.idle <= 0 || p.poe == nil {
		return
	}
	// Sweep a few times per idle period, at most once a minute: a node is
	// powered off at most a quarter of the period late.
	every := min(max(p.idle/4, time.Second), time.Minute)
	p.log.Info("powersave enabled", "idle", p.idle)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := p.Sweep(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("powersave: sweep failed", "err", err)
			}
		}
	}
}

// Sweep powers off the ports of free nodes idle for the powersave period
// and returns their MACs. Per-port failures are logged and retried after
// another period; the error is for failures to read the store.
func (p *Powersave) Sweep(ctx context.Context) ([]string, error) {
	if p.idle <= 0 || p.poe == nil {
		return nil, nil
	}
	p.op.Lock()
	defer p.op.Unlock()
	devices, settings, err := p.inventory(ctx)
	if err != nil {
		return nil, err
	}
	links, offs, err := p.linksAndOffs(ctx)
	if err != nil {
		return nil, err
	}
	dark := map[position]bool{}
	for _, o := range offs {
		dark[position{o.SwitchMAC, o.Port}] = true
	}
	devs := map[string]store.Device{}
	for _, d := range devices {
		devs[d.MAC] = d
	}
	now := p.now()
	// A port goes off only if every device on it is an idle free node.
	occupants := map[position][]string{}
	sleepy := map[position]bool{}
	for _, l := range links {
		pos := position{l.SwitchMAC, l.Port}
		d, sw := devs[l.NodeMAC], devs[l.SwitchMAC]
		idle := d.Type == store.TypeNode && !d.Virtual && d.Owner == "" &&
			vocab.On(settings[sw.MAC], vocab.PoEReboots) && now.Sub(p.idleSince(d.MAC)) >= p.idle
		if _, seen := sleepy[pos]; !seen {
			sleepy[pos] = true
		}
		sleepy[pos] = sleepy[pos] && idle && !dark[pos]
		occupants[pos] = append(occupants[pos], d.MAC)
	}
	var ports []position
	for pos, ok := range sleepy {
		if ok {
			ports = append(ports, pos)
		}
	}
	if len(ports) == 0 {
		return nil, nil
	}
	slices.SortFunc(ports, func(a, b position) int { return cmp.Or(strings.Compare(a.sw, b.sw), a.port-b.port) })
	changes := make([]power.Change, len(ports))
	for i, pos := range ports {
		changes[i] = power.Change{Outlet: power.Outlet{Switch: pos.sw, Port: pos.port}, State: power.Off, Reason: power.ReasonPowersave}
	}
	errs := p.poe.Switch(ctx, changes)
	var off, offNames, failed []string
	for i, pos := range ports {
		if errs[i] != nil {
			// Retry after another idle period, as WalT does.
			p.Touch(occupants[pos]...)
			for _, m := range occupants[pos] {
				failed = append(failed, devs[m].Name)
			}
			p.log.Warn("powersave: failed to turn off PoE", "switch", devs[pos.sw].Name, "port", pos.port, "err", errs[i])
			continue
		}
		off = append(off, occupants[pos]...)
		for _, m := range occupants[pos] {
			offNames = append(offNames, devs[m].Name)
		}
	}
	if len(off) > 0 {
		for _, m := range off {
			// Down on purpose: the boot watchdog leaves them alone.
			p.tracker.MarkDown(m, api.CausePowersave, "PoE")
		}
		p.log.Info("powersave: nodes powered off", "nodes", len(off), "names", offNames, "idle", p.idle)
	}
	if len(failed) > 0 {
		p.log.Warn("powersave: nodes left on", "nodes", len(failed), "names", failed)
	}
	return off, nil
}

// Wake powers on the nodes, among macs, whose PoE port powersave
// turned off, and restarts the idle time of all of them. walt node wait
// calls it before waiting for nodes to boot (WalT prints "Reactivating
// related switch port(s) in powersave mode." when woken is not empty).
// It returns the MACs of the nodes powered on, in input order; the error
// joins per-node failures, each naming the node. It returns at once when
// no port of these nodes is in powersave.
func (p *Powersave) Wake(ctx context.Context, macs []string) (woken []string, err error) {
	p.Touch(macs...)
	if p.poe == nil || len(macs) == 0 {
		return nil, nil
	}
	p.op.Lock()
	defer p.op.Unlock()
	links, offs, err := p.linksAndOffs(ctx)
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
		pos, ok := at[m]
		if !ok || !saved[pos] {
			continue
		}
		if i, dup := index[pos]; dup {
			owners[i] = append(owners[i], m)
			continue
		}
		index[pos] = len(changes)
		changes = append(changes, power.Change{Outlet: power.Outlet{Switch: pos.sw, Port: pos.port}, State: power.On})
		owners = append(owners, []string{m})
	}
	if len(changes) == 0 {
		return nil, nil
	}
	errs := p.poe.Switch(ctx, changes)
	ok := map[string]bool{}
	var failures []error
	for i, e := range errs {
		for _, m := range owners[i] {
			if e == nil {
				ok[m] = true
			} else {
				failures = append(failures, fmt.Errorf("power on node %s: %w", p.nodeName(ctx, m), e))
			}
		}
	}
	for _, m := range macs {
		if ok[m] {
			woken = append(woken, m)
		}
	}
	if len(woken) > 0 {
		p.log.Info("powersave: nodes powered on", "nodes", len(woken))
	}
	return woken, errors.Join(failures...)
}

func (p *Powersave) inventory(ctx context.Context) ([]store.Device, map[string]map[string]string, error) {
	devs, err := p.st.Devices(ctx)
	if err != nil {
		return nil, nil, err
	}
	settings, err := p.st.Settings(ctx)
	return devs, settings, err
}

func (p *Powersave) linksAndOffs(ctx context.Context) ([]store.Link, []store.PoEOff, error) {
	links, err := p.st.Links(ctx)
	if err != nil {
		return nil, nil, err
	}
	offs, err := p.st.PoEOffs(ctx)
	return links, offs, err
}

func (p *Powersave) nodeName(ctx context.Context, mac string) string {
	if d, err := p.st.Device(ctx, mac); err == nil {
		return d.Name
	}
	return mac
}
