// Package vocab holds the words several packages share and must spell
// alike: the keys of device settings and the bounds of their values, which
// the server checks when they are set (internal/server/settings.go) and the
// PoE method reads back (internal/reboot/poereboot), the boot watchdog and
// powersave too. Reboot method names are api's (MethodSoft, MethodPoE...),
// which internal/reboot and its methods use. The error kinds the store and
// the server's services wrap (ErrNotFound, ErrConflict...) are here too
// (errors.go), for the server's one table of wire codes.
package vocab

import (
	"time"

	"github.com/walt-testbed/walt/internal/bound"
)

// Setting keys of nodes.
const (
	BootRetries = "boot.retries"
	BootTimeout = "boot.timeout"
	KexecAllow  = "kexec.allow"
)

// Setting keys of a node's power (docs/power.md): its hard-reboot method
// and what each method needs.
const (
	PowerMethod     = "power.method"
	PowerCommand    = "power.command"
	PowerTimeout    = "power.timeout"
	PowerOffTime    = "power.off_time"
	IPMIHost        = "ipmi.host"
	IPMIPort        = "ipmi.port"
	IPMIUser        = "ipmi.user"
	IPMIPassword    = "ipmi.password"
	RedfishURL      = "redfish.url"
	RedfishUser     = "redfish.user"
	RedfishPassword = "redfish.password"
	RedfishInsecure = "redfish.insecure"
)

// Values of power.method.
const (
	PowerPoE           = "poe"
	PowerIPMI          = "ipmi"
	PowerRedfish       = "redfish"
	PowerCommandMethod = "command"
	PowerNone          = "none"
)

// Setting keys of switches.
const (
	LLDPExplore   = "lldp.explore"
	PoEDelay      = "poe.delay"
	PoEReboots    = "poe.reboots"
	SNMPCommunity = "snmp.community"
	SNMPPort      = "snmp.port"
	SNMPVersion   = "snmp.version"
)

// Bounds of the number settings (docs/cli.md). WalT refuses what is not a
// number and, for boot.timeout, values below 60 s, with its own messages;
// the other bounds are ours, so that no count or duration overflows.
var (
	BootTimeoutRange  = bound.Int{Name: BootTimeout, Min: 60, Max: 24 * 60 * 60, Suffix: "s"}
	BootRetriesRange  = bound.Int{Name: BootRetries, Min: 0, Max: 1000}
	PoEDelayRange     = bound.Duration{Name: PoEDelay, Min: 100 * time.Millisecond, Max: time.Minute}
	SNMPPortRange     = bound.Int{Name: SNMPPort, Min: 1, Max: 65535}
	IPMIPortRange     = bound.Int{Name: IPMIPort, Min: 1, Max: 65535}
	PowerTimeoutRange = bound.Duration{Name: PowerTimeout, Min: time.Second, Max: 30 * time.Second}
	PowerOffTimeRange = bound.Duration{Name: PowerOffTime, Min: 0, Max: 30 * time.Second}
)

// On reports whether a stored boolean setting is true (the server stores
// "true" or "false"; absent is the default, false for every switch flag).
func On(stored map[string]string, key string) bool { return stored[key] == "true" }
