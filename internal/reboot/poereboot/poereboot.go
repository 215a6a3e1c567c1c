// Package poereboot is the server's PoE hard-reboot method: it finds, in the
// store, the switch port each physical node is plugged into and the
// switch's SNMP settings, and power-cycles the port through a PoE driver.
// It also gives the driver its view of the store: a poe.Directory of
// switches and a power.Journal of the ports the server turned off.
package poereboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// MethodName names the method in results, as WalT does: the API's word.
const MethodName = api.MethodPoE

// Driver is what the method needs of a PoE driver.
type Driver interface {
	power.Cycler
	power.Switcher
	// CycleCutsMin is a power-cycle whose outlets stay off at least
	// minOff, or the switch's poe.delay if longer (poe.Driver's).
	CycleCutsMin(ctx context.Context, outlets []power.Outlet, minOff time.Duration) ([]power.Cut, []error)
}

// Method reboots physical nodes by power-cycling their switch port. It
// implements reboot.HardRebooter.
type Method struct {
	st     store.Store
	driver Driver
	topo   snapshot
}

var _ reboot.CutReporter = (*Method)(nil)

// New returns the method over st and driver.
func New(st store.Store, driver Driver) *Method {
	return &Method{st: st, driver: driver, topo: snapshot{st: st}}
}

// Method implements reboot.HardRebooter.
func (m *Method) Method() string { return MethodName }

// HardReboot implements reboot.HardRebooter: it power-cycles the node's port
// or, if the server had turned the port off, only powers it on.
func (m *Method) HardReboot(ctx context.Context, n reboot.Node) error {
	_, err := m.HardRebootCut(ctx, n)
	return err
}

// HardRebootCut implements reboot.CutReporter: HardReboot, with the
// port's detection status read while it was off.
func (m *Method) HardRebootCut(ctx context.Context, n reboot.Node) (power.Cut, error) {
	outlet, offTime, err := m.topo.outlet(ctx, n.MAC)
	if err != nil {
		return power.Cut{}, err
	}
	if n.PoweredOff {
		return power.Cut{}, m.driver.Switch(ctx, []power.Change{{Outlet: outlet, State: power.On}})[0]
	}
	cuts, errs := m.driver.CycleCutsMin(ctx, []power.Outlet{outlet}, offTime)
	return cuts[0], errs[0]
}

// snapshot caches the links of the store for the concurrent calls of one
// reboot request: a thousand nodes rebooted at once read the topology once.
type snapshot struct {
	st store.Store

	mu       sync.Mutex
	at       time.Time                // +checklocks:mu
	links    map[string]string        // node MAC -> switch MAC; +checklocks:mu
	ports    map[string]int           // node MAC -> port; +checklocks:mu
	offTimes map[string]time.Duration // node MAC -> its power.off_time, where set; +checklocks:mu
}

// freshness is how long a snapshot serves before the store is read again.
const freshness = 250 * time.Millisecond

// outlet returns the node's switch port, and the power.off_time set on
// the node (0 when none is: the switch's poe.delay alone applies).
func (s *snapshot) outlet(ctx context.Context, nodeMAC string) (power.Outlet, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.at) > freshness {
		links, err := s.st.Links(ctx)
		if err != nil {
			return power.Outlet{}, 0, fmt.Errorf("read topology: %w", err)
		}
		all, err := s.st.Settings(ctx)
		if err != nil {
			return power.Outlet{}, 0, fmt.Errorf("read settings: %w", err)
		}
		s.links, s.ports = make(map[string]string, len(links)), make(map[string]int, len(links))
		for _, l := range links {
			s.links[l.NodeMAC], s.ports[l.NodeMAC] = l.SwitchMAC, l.Port
		}
		s.offTimes = make(map[string]time.Duration)
		for mac, set := range all {
			if v, ok := set[vocab.PowerOffTime]; ok {
				// Checked when set; a value out of bounds (set past the
				// server) is ignored rather than stretched.
				if d, err := vocab.PowerOffTimeRange.Parse(v); err == nil {
					s.offTimes[mac] = d
				}
			}
		}
		s.at = time.Now()
	}
	sw, ok := s.links[nodeMAC]
	if !ok || s.ports[nodeMAC] <= 0 {
		return power.Outlet{}, 0, fmt.Errorf("%w: switch port of the node unknown (walt device rescan, or record it by hand)", power.ErrUnknownPosition)
	}
	return power.Outlet{Switch: sw, Port: s.ports[nodeMAC]}, s.offTimes[nodeMAC], nil
}

// Directory gives the PoE driver the settings of a switch, by MAC, from the
// store. It implements poe.Directory.
type Directory struct{ Store store.Store }

var _ poe.Directory = Directory{}

// Lookup implements poe.Directory.
func (d Directory) Lookup(ctx context.Context, mac string) (poe.SwitchConfig, error) {
	dev, err := d.Store.Device(ctx, mac)
	if err != nil {
		return poe.SwitchConfig{}, fmt.Errorf("switch %s: %w", mac, err)
	}
	all, err := d.Store.Settings(ctx)
	if err != nil {
		return poe.SwitchConfig{}, fmt.Errorf("settings of switch %s: %w", dev.Name, err)
	}
	return switchConfig(dev, all[mac])
}

// switchConfig turns a switch's stored settings into the driver's terms.
func switchConfig(dev store.Device, set map[string]string) (poe.SwitchConfig, error) {
	sw := poe.SwitchConfig{Name: dev.Name, Address: dev.IP, Reboots: vocab.On(set, vocab.PoEReboots),
		Community: poe.NewCommunity(set[vocab.SNMPCommunity])}
	if dev.IP == "" {
		return sw, fmt.Errorf("%w: switch %s has no IP address", power.ErrUnknownPosition, dev.Name)
	}
	if p := set[vocab.SNMPPort]; p != "" && p != "161" {
		if _, err := vocab.SNMPPortRange.Parse(p); err != nil {
			return sw, fmt.Errorf("switch %s: invalid snmp.port %q", dev.Name, p)
		}
		sw.Address = net.JoinHostPort(dev.IP, p)
	}
	switch set[vocab.SNMPVersion] {
	case "1":
		sw.Version = poe.V1
	case "2", "":
		sw.Version = poe.V2c
	default:
		return sw, fmt.Errorf("switch %s: invalid snmp.version %q", dev.Name, set[vocab.SNMPVersion])
	}
	if v := set[vocab.PoEDelay]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return sw, fmt.Errorf("switch %s: invalid poe.delay %q", dev.Name, v)
		}
		sw.Delay = d
	}
	return sw, nil
}

// Journal keeps the PoE driver's power-off records in the store. It
// implements power.Journal.
type Journal struct{ Store store.Store }

var _ power.Journal = Journal{}

// RecordOff implements power.Journal.
func (j Journal) RecordOff(ctx context.Context, records []power.OffRecord) error {
	for _, r := range records {
		err := j.Store.AddPoEOff(ctx, store.PoEOff{SwitchMAC: r.Outlet.Switch, Port: r.Outlet.Port, Reason: r.Reason, At: r.Since})
		if err != nil {
			return fmt.Errorf("record %s off: %w", r.Outlet, err)
		}
	}
	return nil
}

// ClearOff implements power.Journal.
func (j Journal) ClearOff(ctx context.Context, outlets []power.Outlet) error {
	var errs []error
	for _, o := range outlets {
		if err := j.Store.RemovePoEOff(ctx, o.Switch, o.Port); err != nil {
			errs = append(errs, fmt.Errorf("clear off record of %s: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// ListOff implements power.Journal.
func (j Journal) ListOff(ctx context.Context) ([]power.OffRecord, error) {
	offs, err := j.Store.PoEOffs(ctx)
	if err != nil {
		return nil, err
	}
	recs := make([]power.OffRecord, 0, len(offs))
	for _, p := range offs {
		if p.Port == store.NodePowerPort {
			continue // a node's own power (bmcreboot.Restore)
		}
		recs = append(recs, power.OffRecord{Outlet: power.Outlet{Switch: p.SwitchMAC, Port: p.Port}, Reason: p.Reason, Since: p.At})
	}
	return recs, nil
}
