// Package power defines how the server cuts and restores the power of physical
// nodes. Drivers live in sub-packages (poe for PoE switches over SNMP); the
// reboot engine only sees the interfaces and errors declared here, never a
// driver's vendor types.
package power

import (
	"context"
	"errors"
	"fmt"
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
	// Switch is the key under which the driver finds the switch's address and
	// settings, and under which the Journal records it. The server uses a
	// stable identifier (the switch's MAC address); drivers name the switch
	// in messages with the name their directory returns.
	Switch string
	// Port is the switch port number as recorded in the topology: the LLDP
	// local port number (lldpRemLocalPortNum).
	Port int
}

func (o Outlet) String() string { return fmt.Sprintf("port %d of switch %s", o.Port, o.Switch) }

// Reasons recorded with power-off records; WalT's values.
const (
	ReasonHardReboot = "hard-reboot"
	ReasonPowersave  = "powersave"
)

// Change asks for one outlet to be set to a state (On or Off). Reason is
// required for Off and recorded in the Journal before the outlet is switched
// off, so that a restarted server knows why a port is dark.
type Change struct {
	Outlet Outlet
	State  State
	Reason string
}

// A Cycler power-cycles outlets: off, wait the off period configured for the
// outlet's device (poe.delay for a PoE switch), on.
//
// Cycle returns one error per outlet, in input order, nil for outlets that
// were cycled and are on again. A failure on one outlet never prevents the
// others from being cycled; outlets of different devices are handled in
// parallel, outlets of one device in as few requests as the device allows.
// Each outlet is recorded in the Journal (reason ReasonHardReboot) before it is
// switched off and cleared once it is on again. Cycle refuses an outlet that is
// enabled but does not power anything (ErrNotPowered) and leaves it alone.
//
// Cycle blocks until every outlet is back on or has failed. If ctx ends while
// outlets are off, Cycle returns ctx's error for them at once; the outlets
// stay recorded in the Journal until they are on again, which the driver may
// still do (a batch shared with other callers) or leave to Restore. An
// outlet that is already being switched (twice in one call, or by another
// call) fails without being touched.
//
// Safe for concurrent use: drivers gather concurrent calls for one device
// into the same requests, so one call per node costs no more requests than
// one call for all nodes.
type Cycler interface {
	Cycle(ctx context.Context, outlets []Outlet) []error
}

// A Switcher sets outlets on or off without waiting (powersave, wake-up,
// restoring power at start-up). Like Cycle it returns one error per change, in
// input order, batches per device, and journals: Off changes are recorded
// before the request is sent, On changes cleared once the device accepted
// them. Switching an outlet to the state it already has is not an error.
// Switching on is allowed even where power-off is forbidden.
type Switcher interface {
	Switch(ctx context.Context, changes []Change) []error
}

// OffRecord is a Journal entry: an outlet the server switched off and has not
// switched on again.
type OffRecord struct {
	Outlet Outlet
	Reason string
	Since  time.Time
}

// A Journal durably records which outlets the server switched off and why,
// so that a server killed between "off" and "on" restores power at start-up.
// The store implements it; methods are safe for concurrent use.
//
// RecordOff must have made the records durable when it returns nil; drivers
// call it before sending the power-off request and do not switch off outlets
// it failed to record. Recording an outlet that is already recorded replaces
// its reason and time. ClearOff removes the records of the given outlets;
// clearing an outlet that is not recorded is not an error. ListOff returns
// every record.
type Journal interface {
	RecordOff(ctx context.Context, records []OffRecord) error
	ClearOff(ctx context.Context, outlets []Outlet) error
	ListOff(ctx context.Context) ([]OffRecord, error)
}

// Errors every driver reports through errors.Is, so that the engine and the
// CLI can tell the causes apart. Driver errors wrap one of them when it
// applies; the message says which device, which outlet and what happened.
var (
	// ErrForbidden: the device does not allow power-off (poe.reboots=false).
	ErrForbidden = errors.New("forbidden on switch")
	// ErrUnknownPosition: the outlet's device or port is not known.
	ErrUnknownPosition = errors.New("unknown network position")
	// ErrNotPowered: the outlet is enabled but delivers no power, so the node
	// is powered by something else (WalT: node seems not PoE-powered).
	ErrNotPowered = errors.New("node seems not PoE-powered")
	// ErrUnreachable: the device did not answer in time (down, unreachable,
	// or, for SNMP v1/v2c, a wrong community: agents drop such requests).
	ErrUnreachable = errors.New("device unreachable")
	// ErrDenied: the device answered but refused the request (read-only
	// community, access control).
	ErrDenied = errors.New("access denied by device")
	// ErrUnsupported: the device lacks what the driver needs (no PoE objects,
	// a port without PoE, a port mapping that cannot be worked out).
	ErrUnsupported = errors.New("not supported by device")
)
