package api

import "time"

// DefaultHeartbeatInterval is how often an agent beats until the server
// tells it otherwise (HeartbeatReply.Interval).
const DefaultHeartbeatInterval = 10 * time.Second

// Heartbeat says that a node's agent is alive, still in the boot BootID.
type Heartbeat struct {
	MAC    string `json:"mac"`
	BootID string `json:"boot_id"`
}

// Heartbeats is the body of POST /api/v1/heartbeats. One agent sends its
// own; a simulated testbed sends all of its nodes' in one request.
type Heartbeats struct {
	Beats []Heartbeat `json:"beats"`
}

// HeartbeatReply answers Heartbeats.
type HeartbeatReply struct {
	// Interval is the period the server wants heartbeats at.
	Interval Duration `json:"interval"`
	// Report lists the MACs the server does not know in that boot (it
	// forgot them, or missed their boot report): their agents must send a
	// full NodeReport again.
	Report []string `json:"report,omitempty"`
}

// Boot states of a node.
const (
	StateBooted  = "booted"  // its agent reported the current boot and is alive
	StateBooting = "booting" // rebooted by the server, the new boot not reported yet
	StateDown    = "down"    // silent, or never reported
)

// Causes of a node not being booted, as the platform log names them.
const (
	CauseRebootRequested = "reboot requested"
	CauseBootupTimeout   = "bootup timeout"
	CauseUnknown         = "unknown" // the server noticed silence
	CauseStartup         = "startup" // not booted when the server started
	CausePowersave       = "powersave"
)

// WatchdogRequester is the requester recorded for the boot watchdog's
// reboots.
const WatchdogRequester = "walt"

// BootStatus is where a node is in its boot cycle (Node.Boot).
type BootStatus struct {
	State string `json:"state"`
	// Since is when the node entered State; for booting, the time the
	// reboot was requested.
	Since time.Time `json:"since"`
	// Cause and Method say why the node is not booted ("reboot requested",
	// "soft-reboot"); Note adds details ("no heartbeat for 25s").
	Cause  string `json:"cause,omitempty"`
	Method string `json:"method,omitempty"`
	Note   string `json:"note,omitempty"`
	// BootID identifies the last boot the node reported.
	BootID string `json:"boot_id,omitempty"`
	// LastRebootMethod is the method of the node's last reboot.
	LastRebootMethod string `json:"last_reboot_method,omitempty"`
}

// WaitRequest is the body of POST /api/v1/waits: wait until every node of
// the set is booted. The answer streams WaitEvent values as NDJSON.
type WaitRequest struct {
	Set       string `json:"set"`
	Requester string `json:"requester"`
	// Timeout ends the wait with a WaitTimeout event; 0 waits for ever
	// (or until the client leaves).
	Timeout Duration `json:"timeout,omitempty"`
}

// Wait event types.
const (
	WaitWoken   = "woken"   // Nodes were powered on (they were in powersave)
	WaitWaiting = "waiting" // Nodes are not booted yet; sent again when the list shrinks
	WaitBooted  = "booted"  // Node booted, at At
	WaitDone    = "done"    // every node is booted; the stream ends
	WaitTimeout = "timeout" // Nodes are still not booted at the timeout; the stream ends
	WaitError   = "error"   // Error is set; the stream ends
)

// WaitEvent is one line of the wait stream.
type WaitEvent struct {
	Type  string     `json:"type"`
	Nodes []string   `json:"nodes,omitempty"`
	Node  string     `json:"node,omitempty"`
	At    *time.Time `json:"at,omitempty"`
	Error *Error     `json:"error,omitempty"`
}

// LogLine is one line of the platform log (GET /api/v1/logs): NDJSON,
// oldest first, then, with ?follow=true, each new line as it is written.
type LogLine struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Issuer string    `json:"issuer"` // walt-server
	Stream string    `json:"stream"` // platform.nodes
	Node   string    `json:"node,omitempty"`
	Line   string    `json:"line"`
}
