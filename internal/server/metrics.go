package server

import (
	"context"
	"errors"
	"time"

	"github.com/walt-testbed/walt/internal/metrics"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
)

// nodeStatesTimeout bounds the device listing of one scrape's walt_nodes.
const nodeStatesTimeout = 5 * time.Second

// nodeStates counts the nodes by boot state, as GET /api/v1/nodes shows
// them: the store's nodes, each with the tracker's state.
func (s *Server) nodeStates() (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), nodeStatesTimeout)
	defer cancel()
	devs, err := s.store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, d := range devs {
		if d.Type != store.TypeNode {
			continue
		}
		st, _ := s.boots.Status(d.MAC)
		counts[st.State]++
	}
	return counts, nil
}

// observePoE times the PoE driver's SNMP requests, if it can tell them.
func (s *Server) observePoE() {
	if d, ok := s.cfg.PoE.(interface {
		ObserveRequests(poe.RequestObserver)
	}); ok {
		d.ObserveRequests(s.metrics.SNMPRequest)
	}
}

// meteredRun is a batchRun that also tells the metrics when each node's
// reboot starts and under which record, so that the boot completing it
// (bootStore) gives walt_boot_duration_seconds.
type meteredRun struct{ *batchRun }

func (m meteredRun) Started(i int, n reboot.Node) {
	m.batchRun.Started(i, n)
	m.s.metrics.RebootStarted(n.MAC, m.ids[i], m.s.boots.Now())
}

// observe is the engine Observer of b: b, with metrics.
func (s *Server) observe(b *batchRun) reboot.Observer {
	return s.metrics.Observer(meteredRun{b})
}

// bootStore is the boot tracker's store: the server's, with each reboot's
// boot, once written, observed by the metrics. Observing what the tracker
// writes keeps the metrics out of the tracker.
type bootStore struct {
	store.Store
	m *metrics.Metrics
}

func (b bootStore) SetRebootsBooted(ctx context.Context, bs []store.RebootBoot) error {
	err := b.Store.SetRebootsBooted(ctx, bs)
	if err == nil {
		for _, rb := range bs {
			b.m.Booted(rb.ID, rb.At)
		}
	}
	return err
}

// SetBootState passes the tracker's one-transaction flush through (see
// boot.Tracker.Flush), observing the boots it writes.
func (b bootStore) SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error {
	sw, ok := b.Store.(interface {
		SetBootState(context.Context, []store.BootStatus, []store.RebootBoot, []store.LogLine) error
	})
	if !ok {
		return errNoStateWriter
	}
	err := sw.SetBootState(ctx, bs, rb, ls)
	if err == nil {
		for _, r := range rb {
			b.m.Booted(r.ID, r.At)
		}
	}
	return err
}

// errNoStateWriter: the store has no one-transaction flush; the tracker
// then writes each part on its own.
var errNoStateWriter = errors.New("the store writes boot state in parts")

// meterPower times the power methods of a node's power.method (IPMI,
// Redfish, command): walt_power_cycle_duration_seconds by method.
func meterPower(methods map[string]reboot.HardRebooter, m *metrics.Metrics) map[string]reboot.HardRebooter {
	out := make(map[string]reboot.HardRebooter, len(methods))
	for k, h := range methods {
		if cr, ok := h.(reboot.CutReporter); ok {
			out[k] = meteredCut{cr, m}
		} else {
			out[k] = meteredPower{h, m}
		}
	}
	return out
}

type meteredPower struct {
	reboot.HardRebooter
	m *metrics.Metrics
}

func (p meteredPower) HardReboot(ctx context.Context, n reboot.Node) error {
	start := time.Now()
	err := p.HardRebooter.HardReboot(ctx, n)
	p.m.PowerCycle(p.Method(), time.Since(start), err)
	return err
}

type meteredCut struct {
	reboot.CutReporter
	m *metrics.Metrics
}

func (p meteredCut) HardRebootCut(ctx context.Context, n reboot.Node) (power.Cut, error) {
	start := time.Now()
	cut, err := p.CutReporter.HardRebootCut(ctx, n)
	p.m.PowerCycle(p.Method(), time.Since(start), err)
	return cut, err
}
