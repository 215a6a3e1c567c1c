// Package wiring builds walt-server's hard-reboot drivers, once, for
// cmd/walt-server and the test harnesses alike (servertest.WithPoE,
// vnodetest): the PoE driver, its switches and journal kept in the store,
// for physical nodes (and rescans, port states, powersave), and the vnode
// supervisor's hard reboot for virtual nodes.
package wiring

import (
	"log/slog"

	"github.com/walt-testbed/walt/internal/power/poe"
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
	if sup != nil {
		cfg.VNodes = sup
		cfg.Reboot.Virtual = vnodereboot.New(sup)
	}
	return drv, journal, nil
}
