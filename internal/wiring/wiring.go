// Package wiring builds what walt-server hands its server, once, for
// cmd/walt-server and the test harnesses alike (servertest.WithPoE,
// vnodetest): the vnode supervisor (VNodes), and the hard-reboot drivers
// (Drivers): the PoE driver, its switches and journal kept in the store,
// for physical nodes (and rescans, port states, powersave), the IPMI,
// Redfish and command methods of nodes whose power.method names one, and the vnode
// supervisor's hard reboot for virtual nodes.
package wiring

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot/bmcreboot"
	"github.com/walt-testbed/walt/internal/reboot/poereboot"
	"github.com/walt-testbed/walt/internal/reboot/vnodereboot"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/vnode"
)

// Drivers sets cfg's drivers: PoE, built with pc over cfg.Store, for
// physical nodes, and sup's hard reboot for virtual nodes when sup is not
// nil (cfg.VNodes is set to it). It returns the PoE driver and its
// journal, whose ports a killed server left off the caller restores at
// start (power.Restore).
func Drivers(cfg *server.Config, pc poe.Config, sup *vnode.Supervisor) (*poe.Driver, poereboot.Journal, error) {
	journal := poereboot.Journal{Store: cfg.Store}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drv, err := poe.New(pc, poereboot.Directory{Store: cfg.Store}, journal, log.With("driver", "poe"))
	if err != nil {
		return nil, journal, err
	}
	cfg.PoE = drv
	cfg.Reboot.Physical = poereboot.New(cfg.Store, drv)
	// Nodes whose power.method is ipmi, redfish or command.
	if cfg.Reboot.Methods, err = bmcreboot.New(cfg.Store, bmcreboot.Drivers{}, log); err != nil {
		return nil, journal, err
	}
	if sup != nil {
		cfg.VNodes = sup
		cfg.Reboot.Virtual = vnodereboot.New(sup)
	}
	return drv, journal, nil
}

// VNodeConfig says how to run virtual nodes.
type VNodeConfig struct {
	// Backend, if not nil, runs the machines; else Kind chooses one
	// (vnode.ChooseBackend: auto, qemu, process; none disables vnodes),
	// with Accel and KVMDevice for QEMU.
	Backend                vnode.Backend
	Kind, Accel, KVMDevice string
	DataDir                string
	AddrPrefix             netip.Prefix
	// ServerURL is where the agents report their boots.
	ServerURL string
	// StopGrace: 0 is the supervisor's default.
	StopGrace time.Duration
	Logger    *slog.Logger
}

// VNodes returns the supervisor of virtual nodes, or nil when they are
// disabled (Kind none, or auto with neither QEMU nor walt-node
// available: the log says why).
func VNodes(c VNodeConfig) (*vnode.Supervisor, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := c.Backend
	if b == nil {
		if c.Kind == "none" {
			log.Info("virtual nodes disabled (--vnode-backend none)")
			return nil, nil
		}
		var err error
		b, err = vnode.ChooseBackend(vnode.BackendConfig{Kind: c.Kind, DataDir: c.DataDir, Accel: c.Accel, KVMDevice: c.KVMDevice, Logger: log})
		if err != nil {
			if c.Kind == "auto" {
				log.Warn("virtual nodes disabled: neither QEMU with the vnode image nor walt-node found", "err", err)
				return nil, nil
			}
			return nil, fmt.Errorf("--vnode-backend %s: %w", c.Kind, err)
		}
	}
	if q, ok := b.(*vnode.QEMUBackend); ok {
		st := q.AccelStatus()
		log.Info("virtual nodes run as QEMU VMs", "accel", st.Accel, "why", st.Reason, "image", vnode.DefaultImageDir(c.DataDir))
	}
	return vnode.New(vnode.Config{DataDir: c.DataDir, Backend: b, AddrPrefix: c.AddrPrefix, ServerURL: c.ServerURL, StopGrace: c.StopGrace, Logger: log})
}
