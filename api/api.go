// Package api holds the wire types of walt-server's HTTP/JSON API, shared by
// the server, the Go client and the CLI. Every path starts with Prefix. The
// package imports nothing from walt's internal packages.
package api

import (
	"fmt"
	"time"
)

// Version is the API version, part of every path.
const Version = "v1"

// Prefix starts every API path.
const Prefix = "/api/" + Version

// MaxLimit bounds the limit of GET /api/v1/reboots and GET /api/v1/logs
// (and walt's --limit); 0 there means all lines, up to this many.
const MaxLimit = 1000000

// Content types.
const (
	ContentJSON   = "application/json"
	ContentNDJSON = "application/x-ndjson"
)

// Node is one node as GET /api/v1/nodes lists it. The first eight fields keep
// WalT's web API shape; Owner and BootMode are additions.
type Node struct {
	Name    string `json:"name"`
	Model   string `json:"model"`
	Virtual bool   `json:"virtual"`
	Image   string `json:"image"`
	Booted  bool   `json:"booted"`
	IP      string `json:"ip"`
	MAC     string `json:"mac"`
	// Config holds the node's settings, defaults included (values as shown
	// by `walt node config`).
	Config   map[string]string `json:"config"`
	Owner    string            `json:"owner"`
	BootMode string            `json:"boot_mode,omitempty"`
	// Boot details Booted: booted, booting since when, or down and why.
	Boot *BootStatus `json:"boot,omitempty"`
	// VNode is, for a virtual node this server runs, the supervisor's
	// view of its machine (backend, accelerator, generation).
	VNode *VNode `json:"vnode,omitempty"`
	// BootContext says why the node's current boot happened; the answer
	// to a boot report carries it for the node's experiment.
	BootContext *BootContext `json:"boot_context,omitempty"`
	// Quarantine is set while a campaign's quarantine keeps the node out
	// of later campaigns.
	Quarantine *Quarantine `json:"quarantine,omitempty"`
}

// Quarantine says why a node left a campaign (api/campaign.go).
type Quarantine struct {
	Campaign string    `json:"campaign"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
}

// NodeList is the body of GET /api/v1/nodes. Query parameters filter on
// first-level fields: ?booted=true&model=rpi-b.
type NodeList struct {
	NumNodes int    `json:"num_nodes"`
	Nodes    []Node `json:"nodes"`
}

// Device is one device of the inventory (GET /api/v1/devices).
type Device struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"` // node, switch, unknown
	MAC      string            `json:"mac"`
	IP       string            `json:"ip"`
	Model    string            `json:"model,omitempty"`
	Virtual  bool              `json:"virtual"`
	Owner    string            `json:"owner,omitempty"`
	BootMode string            `json:"boot_mode,omitempty"`
	Booted   bool              `json:"booted"`
	Created  time.Time         `json:"created"`
	LastSeen *time.Time        `json:"last_seen,omitempty"`
	Config   map[string]string `json:"config,omitempty"`
}

// DeviceList is the body of GET /api/v1/devices.
type DeviceList struct {
	NumDevices int      `json:"num_devices"`
	Devices    []Device `json:"devices"`
}

// AddDevice is the body of POST /api/v1/devices. MAC is optional: without
// it the server makes up a locally administered one from the IP.
type AddDevice struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
	MAC  string `json:"mac,omitempty"`
	Type string `json:"type,omitempty"` // default unknown
}

// NodeReport is the body of POST /api/v1/node-reports: an agent telling the
// server who it is. Reporting again with the same MAC updates the node.
type NodeReport struct {
	MAC      string `json:"mac"`
	IP       string `json:"ip"`
	Name     string `json:"name"`
	Model    string `json:"model"`
	BootMode string `json:"boot_mode,omitempty"` // network, hybrid-volatile, hybrid-persistent
	Virtual  bool   `json:"virtual"`
	// BootID identifies the boot being reported (the kernel's boot_id on a
	// real node). An agent that sends one promises heartbeats (POST
	// /api/v1/heartbeats); without one, each report counts as a new boot
	// and the node is never found silent.
	BootID string `json:"boot_id,omitempty"`
	// NodeMethod is how the node says this boot was reached, when it
	// knows: "kexec" when walt-node's kexec hook started this kernel.
	// At most MaxNodeMethodLen bytes of letters, digits and '-'.
	NodeMethod string `json:"node_method,omitempty"`
}

// ConfigRequest is the body of POST /api/v1/config (set settings) and the
// query of GET /api/v1/config (show them, Settings empty).
type ConfigRequest struct {
	Set string `json:"set"`
	// Settings are "name=value" words, as typed on the command line.
	Settings []string `json:"settings"`
	// NodesOnly makes the request fail on devices that are not nodes
	// (`walt node config`).
	NodesOnly bool   `json:"nodes_only,omitempty"`
	Requester string `json:"requester"`
	// Force changes the settings of nodes owned by other users; without
	// it the request fails with CodeNotOwned naming them.
	Force bool `json:"force,omitempty"`
}

// DeviceConfig is the configuration of one device.
type DeviceConfig struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Virtual matters for settings that only virtual nodes have.
	Virtual  bool      `json:"virtual,omitempty"`
	Settings []Setting `json:"settings"`
}

// Setting is one setting of a device, as shown. Secrets are masked.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"` // "<unspecified>" when there is no value
	// Default is true when the value is the default, not a stored one.
	Default bool `json:"default,omitempty"`
}

// ConfigResult is the answer to both config requests.
type ConfigResult struct {
	Devices []DeviceConfig `json:"devices"`
	// Messages are lines for the user, such as "Renaming unknown-1 to
	// switch-1 for clarity." and "Done.".
	Messages []string `json:"messages,omitempty"`
}

// RebootRequest is the body of POST /api/v1/reboots. The response streams
// RebootEvent values as NDJSON, one per line.
type RebootRequest struct {
	Set       string `json:"set"`
	Hard      bool   `json:"hard,omitempty"`
	Requester string `json:"requester"`
	Cause     string `json:"cause,omitempty"` // default "reboot requested"
	// Force reboots nodes owned by other users; without it the request
	// fails with CodeNotOwned naming them.
	Force bool `json:"force,omitempty"`
}

// Event types of the reboot stream.
const (
	EventStart = "start" // Total is set
	EventNode  = "node"  // Node is set
	EventDone  = "done"  // Batch, Rebooted and Failed are set
	EventError = "error" // Error is set; the stream ends
)

// RebootEvent is one line of the reboot stream.
type RebootEvent struct {
	Type     string      `json:"type"`
	Total    int         `json:"total,omitempty"`
	Node     *NodeResult `json:"node,omitempty"`
	Batch    string      `json:"batch,omitempty"`
	Rebooted int         `json:"rebooted,omitempty"`
	Failed   int         `json:"failed,omitempty"`
	Error    *Error      `json:"error,omitempty"`
}

// Reboot methods, as results name them.
const (
	MethodSoft      = "soft-reboot"
	MethodPoE       = "PoE-reboot"
	MethodVnodeHard = "vnode hard-reboot"
	MethodHard      = "hard-reboot" // a hard reboot with no method available
	// Hard reboots through a node's power.method (docs/power.md).
	MethodIPMI    = "IPMI-reboot"
	MethodRedfish = "Redfish-reboot"
	MethodCommand = "command-reboot"
)

// Reboot record states (NodeResult.State).
const (
	// RebootRunning: the node's reboot has started, its outcome is not
	// known yet.
	RebootRunning = "running"
	RebootDone    = "done"
	// RebootInterrupted: the server stopped (was killed) before the
	// outcome was known; the restarted server says so.
	RebootInterrupted = "interrupted"
)

// NodeResult is the outcome of one node's reboot, as recorded in the
// history.
type NodeResult struct {
	// ID is the reboot's record; empty for a node whose reboot in
	// progress the request joined (the record is the other request's).
	ID        string `json:"id,omitempty"`
	Batch     string `json:"batch,omitempty"`
	Requester string `json:"requester,omitempty"`
	Cause     string `json:"cause,omitempty"`
	// State is RebootDone once the outcome is known; RebootRunning or
	// RebootInterrupted in the history only.
	State string `json:"state,omitempty"`
	Node  string `json:"node"`
	MAC   string `json:"mac"`
	OK    bool   `json:"ok"`
	// Method rebooted the node; empty if none did.
	Method    string    `json:"method,omitempty"`
	Attempts  []Attempt `json:"attempts"`
	Requested time.Time `json:"requested"`
	// Ack is when the node or its power driver acknowledged.
	Ack      *time.Time `json:"ack,omitempty"`
	Finished time.Time  `json:"finished"`
}

// Attempt is one method tried on a node.
type Attempt struct {
	Method string `json:"method"`
	// Error is empty when the attempt succeeded.
	Error string `json:"error,omitempty"`
	// Code classifies Error: for a soft reboot, refused, connect-timeout,
	// unreachable, reply-timeout, broken, bad-reply, ko; for a hard
	// reboot, no-method, forbidden, unknown-position, ... .
	Code    string    `json:"code,omitempty"`
	Elapsed Duration  `json:"elapsed"`
	Started time.Time `json:"started"`
	// CutVerified says, for a hard reboot whose power source can be
	// asked (a BMC), whether the power was read back off before it
	// returned; absent when the source said nothing (a soft attempt, a
	// PoE status that could not be read, a record from before the
	// history kept it). Cut says how, or why not (docs/power.md).
	CutVerified *bool  `json:"cut_verified,omitempty"`
	Cut         string `json:"cut,omitempty"`
}

// OwnershipRequest is the body of POST /api/v1/ownership.
type OwnershipRequest struct {
	Set       string `json:"set"`
	Action    string `json:"action"` // acquire or release
	Requester string `json:"requester"`
	// Force acquires nodes owned by other users.
	Force bool `json:"force,omitempty"`
}

// OwnershipResult lists the nodes whose owner changed.
type OwnershipResult struct {
	Nodes    []string `json:"nodes"`
	Messages []string `json:"messages,omitempty"`
}

// Link is the body of PUT /api/v1/links: where a node is plugged.
type Link struct {
	Node   string `json:"node"`
	Switch string `json:"switch"`
	Port   int    `json:"port"`
}

// Duration is a time.Duration written in JSON as a string such as "1.5s".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// RebootRecord is one entry of the reboot history (GET /api/v1/reboots,
// filters ?node=NAME&batch=ID&limit=N), newest first.
// It is the NodeResult `walt node reboot --json` shows, from the same
// record, with the boot that completed the reboot.
type RebootRecord struct {
	NodeResult
	// Booted is when the node reported the new boot that completed this
	// reboot; absent if it never did. BootDuration is Booted - Requested.
	Booted       *time.Time `json:"booted,omitempty"`
	BootID       string     `json:"boot_id,omitempty"`
	BootDuration *Duration  `json:"boot_duration,omitempty"`
}

// RebootList is the body of GET /api/v1/reboots.
type RebootList struct {
	Reboots []RebootRecord `json:"reboots"`
}
