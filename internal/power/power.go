// Package power defines how the server cuts and restores the power of physical
// nodes. Drivers live in sub-packages (poe for PoE switches over SNMP); the
// reboot engine only sees the interfaces declared here.
package power

import (
	"context"
	"errors"
	"time"
)

// State is the power state of one outlet.
type State int

const (
	Unknown State = iota
	On
	Off
)

func (s State) String() string {
	switch s {
	case On:
		return "on"
	case Off:
		return "off"
	}
	return "unknown"
}

// Outlet names one power outlet: a port of a PoE switch.
type Outlet struct {
	Switch string // device name of the switch, used in messages
	Port   int    // switch port number, as recorded in the topology (LLDP local port)
}

// Change asks for one outlet to be set to a state. Reason is stored with
// power-off records ("hard-reboot", "powersave") so that a restarted server
// knows why a port is dark.
type Change struct {
	Outlet Outlet
	State  State
	Reason string
}

// A Cycler power-cycles outlets: off, wait, on. Cycle returns one error per
// outlet, in input order (nil for outlets that were cycled). A failure on one
// outlet never prevents the others from being cycled. Cycle blocks until every
// outlet is back on or has failed, and honours ctx.
type Cycler interface {
	Cycle(ctx context.Context, outlets []Outlet, offPeriod time.Duration) []error
}

// Errors every driver reports through errors.Is, so that the engine and the
// CLI can tell the causes apart.
var (
	// ErrForbidden: the device does not allow power control (poe.reboots=false).
	ErrForbidden = errors.New("forbidden on switch")
	// ErrUnknownPosition: the node's switch or port is not known.
	ErrUnknownPosition = errors.New("unknown network position")
	// ErrNotPowered: the outlet does not power the node (WalT: node seems not PoE-powered).
	ErrNotPowered = errors.New("node seems not PoE-powered")
	// ErrUnreachable: the device did not answer in time.
	ErrUnreachable = errors.New("device unreachable")
)
