package api

// RescanRequest is the body of POST /api/v1/rescans: read the LLDP
// neighbours of switches and record which device sits on which port.
type RescanRequest struct {
	// Set is a device set of switches; empty means explorable-switches
	// (switches with lldp.explore=true).
	Set       string `json:"set,omitempty"`
	Requester string `json:"requester"`
}

// Kinds of change a rescan reports.
const (
	// LinkNew: a device seen on a port and recorded nowhere before.
	LinkNew = "new"
	// LinkMoved: a device seen on another port than the recorded one
	// (From* say where it was).
	LinkMoved = "moved"
	// LinkGone: a recorded link removed because another device is now seen
	// on that port (ReplacedBy names it).
	LinkGone = "gone"
	// LinkUnseen: a recorded link on a scanned switch whose device LLDP did
	// not show. The link is kept: a node that is off or wedged sends no
	// LLDP, and a hard reboot still needs its port.
	LinkUnseen = "unseen"
)

// LinkChange is one change of the topology found by a rescan.
type LinkChange struct {
	Change string `json:"change"` // LinkNew, LinkMoved, LinkGone, LinkUnseen
	Device string `json:"device"`
	MAC    string `json:"mac"`
	Type   string `json:"type"` // node or unknown
	// Switch and Port: where the device is now (new, moved) or was
	// recorded (gone, unseen).
	Switch string `json:"switch"`
	Port   int    `json:"port"`
	// FromSwitch and FromPort: the earlier position of a moved device.
	FromSwitch string `json:"from_switch,omitempty"`
	FromPort   int    `json:"from_port,omitempty"`
	ReplacedBy string `json:"replaced_by,omitempty"`
	// Added: the device was not in the inventory; the rescan added it as
	// a device of type unknown (walt device config NAME type=switch, or
	// its agent's report, tells what it is).
	Added bool `json:"added,omitempty"`
	// SysName is the system name the device announces over LLDP.
	SysName string `json:"sys_name,omitempty"`
	// PoEOff is why the server turned the port off, if it did (unseen
	// links): the reason the device is silent.
	PoEOff string `json:"poe_off,omitempty"`
}

// ScannedSwitch is the outcome of one switch's scan.
type ScannedSwitch struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Error says why the scan failed (SNMP timeout, denial, ...).
	Error string `json:"error,omitempty"`
	// Neighbours is the number of LLDP neighbours read.
	Neighbours int `json:"neighbours"`
}

// RescanResult is the answer to POST /api/v1/rescans.
type RescanResult struct {
	Switches []ScannedSwitch `json:"switches"`
	// Changes are sorted by switch, port and device.
	Changes []LinkChange `json:"changes"`
	// Messages note what was left aside, such as neighbours without a MAC
	// chassis id.
	Messages []string `json:"messages,omitempty"`
}

// PortInfo is one switch port.
type PortInfo struct {
	Port int `json:"port"`
	// Name is the interface name the switch gives (port-config only).
	Name string `json:"name,omitempty"`
	// Devices are the devices recorded on the port (usually one).
	Devices []PortDevice `json:"devices,omitempty"`
	// PoE is the live state read from the switch (port-config only): on,
	// off, or unavailable (no PoE on this port).
	PoE string `json:"poe,omitempty"`
	// Delivering: the port powers a device (port-config only).
	Delivering bool `json:"delivering,omitempty"`
	// PoEOff is why the server turned the port off, if it did.
	PoEOff string `json:"poe_off,omitempty"`
}

// PortDevice is a device on a switch port.
type PortDevice struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// PoE states of PortInfo.PoE.
const (
	PoEOn          = "on"
	PoEOff         = "off"
	PoEUnavailable = "unavailable"
)

// SwitchTree is a switch with the devices recorded on its ports.
type SwitchTree struct {
	Name  string     `json:"name"`
	MAC   string     `json:"mac"`
	IP    string     `json:"ip"`
	Ports []PortInfo `json:"ports"`
}

// Topology is the body of GET /api/v1/topology: what the server knows of
// where devices are plugged (from rescans and manual links), no SNMP.
type Topology struct {
	Switches []SwitchTree `json:"switches"`
	// Unplaced are the nodes whose switch port is unknown.
	Unplaced []string `json:"unplaced"`
}

// PortConfig is the body of GET /api/v1/switches/{name}/ports: the
// switch's ports read live over SNMP, with the devices recorded on them.
type PortConfig struct {
	Switch     string     `json:"switch"`
	PoEReboots bool       `json:"poe_reboots"`
	Ports      []PortInfo `json:"ports"`
}
