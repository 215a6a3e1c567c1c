// Package store defines what walt-server keeps across restarts: the device
// inventory, per-device settings, the network topology, the PoE ports the
// server turned off, and the reboot history. Store is backend-neutral;
// implementations live in sub-packages (sqlite, and PostgreSQL later) and
// storetest holds the conformance suite every implementation must pass.
// Errors that are not I/O failures wrap the error kinds of internal/vocab
// (vocab.ErrNotFound, vocab.ErrConflict...).
package store

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/walt-testbed/walt/internal/vocab"
)

// DeviceType says what a device is.
type DeviceType string

const (
	TypeNode    DeviceType = "node"
	TypeSwitch  DeviceType = "switch"
	TypeUnknown DeviceType = "unknown"
)

// Valid reports whether t is one of the known types.
func (t DeviceType) Valid() bool {
	return t == TypeNode || t == TypeSwitch || t == TypeUnknown
}

// Device is one row of the inventory. MAC is the key (lower case,
// colon-separated); Name is unique too.
type Device struct {
	MAC     string
	Name    string
	IP      string
	Type    DeviceType
	Model   string
	Virtual bool
	// Owner is the user who acquired the node; empty for a free node.
	Owner string
	// BootMode is what the node reported: network, hybrid-volatile or
	// hybrid-persistent. Empty when unknown.
	BootMode string
	// Booted is true after the node reported itself and until it is rebooted.
	Booted    bool
	CreatedAt time.Time
	// LastSeen is the time of the node's last report; zero if never.
	LastSeen time.Time
}

// DeviceChange is one device's part of an atomic ApplyChanges call.
// Nil fields are left alone.
type DeviceChange struct {
	MAC   string
	Name  *string
	Type  *DeviceType
	Owner *string
	// Set stores settings; a key mapped to nil is deleted (back to default).
	Set map[string]*string
}

// Link places a node on the network: the switch and port it is plugged into.
type Link struct {
	NodeMAC   string
	SwitchMAC string
	Port      int
}

// PoEOff records a switch port whose power the server turned off, and why
// ("hard-reboot", "powersave"). A restarted server reads them back so that a
// crash between "off" and "on" does not leave a node dark.
//
// A node powered through its BMC or a power.command has no switch port:
// the record of its own power is SwitchMAC the node's MAC, Port
// NodePowerPort.
type PoEOff struct {
	SwitchMAC string
	Port      int
	Reason    string
	At        time.Time
}

// NodePowerPort is the Port of a PoEOff that records a node's own power
// (BMC, power.command) turned off; switch ports are numbered from 1.
const NodePowerPort = 0

// Reboot is the record of one node's reboot.
type Reboot struct {
	ID string // unique; the store assigns one when empty
	// Batch groups the nodes of one request.
	Batch     string
	Requester string
	Cause     string
	NodeMAC   string
	NodeName  string
	// State says whether the outcome is known: RebootDone, RebootRunning
	// (the node's pipeline has started, its outcome is not known yet) or
	// RebootInterrupted (the server stopped before knowing it). Empty
	// means RebootDone.
	State RebootState
	// Server is the id of the server instance that runs the reboot (kept
	// in its data directory); empty for none (records written before
	// schema version 8). See InterruptReboots. FinishReboots keeps it.
	Server string
	// Method is the method that rebooted the node; empty if none did.
	Method      string
	OK          bool
	Attempts    []Attempt
	RequestedAt time.Time
	// AckAt is when the node (or its power driver) acknowledged; zero if never.
	AckAt      time.Time
	FinishedAt time.Time
	// BootedAt is when the node reported the new boot that completed this
	// reboot (a boot id different from the one before it); zero until
	// then, and forever if the node never booted again. BootID is that
	// boot's id. AddReboots ignores both: SetRebootsBooted sets them.
	BootedAt time.Time
	BootID   string
}

// RebootState is the state of a reboot record.
type RebootState string

// Reboot record states.
const (
	RebootRunning     RebootState = "running"
	RebootDone        RebootState = "done"
	RebootInterrupted RebootState = "interrupted"
)

// Valid reports whether st is one of the known states.
func (st RebootState) Valid() bool {
	return st == RebootRunning || st == RebootDone || st == RebootInterrupted
}

// Attempt is one method tried during a reboot.
type Attempt struct {
	Method string
	// Error is empty when the attempt succeeded.
	Error string
	// Code classifies Error for scripts (reboot.ErrorCode).
	Code     string
	Started  time.Time
	Finished time.Time
	// CutVerified is what the power source said of a hard attempt's cut:
	// true when it read the power back off before power returned; nil
	// when it said nothing (a soft attempt, a record from before schema
	// version 5). Cut says how, or why not.
	CutVerified *bool
	Cut         string
}

// RebootFilter selects reboot records. Zero fields match everything.
type RebootFilter struct {
	NodeMAC string
	Batch   string
	// Limit caps the number of records, newest first; 0 means no cap.
	Limit int
}

// Store is the server's persistent state. Implementations are safe for
// concurrent use. Write methods are atomic: on error nothing was changed.
// Times are stored with microsecond precision and returned in UTC.
type Store interface {
	// AddDevice inserts d. ErrConflict if its MAC or name is taken,
	// ErrInvalid if a field is malformed.
	AddDevice(ctx context.Context, d Device) error
	// ReportDevice inserts d (a node) or, if its MAC is known, updates
	// every field but Owner and CreatedAt, and returns the stored row. A
	// report never changes what a known device is, whatever changes
	// concurrently: a node keeps its name and virtual flag, and a device
	// that is neither a node nor of unknown type (a switch) is left alone;
	// both are ErrConflict, naming what differs. A device of unknown type
	// becomes the reported node. ErrConflict too if the name belongs to
	// another MAC.
	ReportDevice(ctx context.Context, d Device) (Device, error)
	// Device returns the device with this MAC, or ErrNotFound.
	Device(ctx context.Context, mac string) (Device, error)
	// DeviceByName returns the device with this name, or ErrNotFound.
	DeviceByName(ctx context.Context, name string) (Device, error)
	// Devices returns every device, sorted by name.
	Devices(ctx context.Context) ([]Device, error)
	// ForgetDevice deletes a device with its settings, links and PoE
	// records. ErrNotFound if the MAC is unknown.
	ForgetDevice(ctx context.Context, mac string) error
	// ApplyChanges applies every change or none. ErrNotFound if a MAC is
	// unknown, ErrConflict if a new name is taken.
	ApplyChanges(ctx context.Context, changes []DeviceChange) error
	// SetBooted sets the booted flag of the given devices.
	SetBooted(ctx context.Context, macs []string, booted bool) error

	// Settings returns the stored settings of every device that has some,
	// by MAC then key. Defaults are not stored.
	Settings(ctx context.Context) (map[string]map[string]string, error)

	// SetLink records where a node is plugged, replacing any earlier link
	// of that node. ErrNotFound if either device is unknown.
	SetLink(ctx context.Context, l Link) error
	// DeleteLink forgets the node's link; no error if there was none.
	DeleteLink(ctx context.Context, nodeMAC string) error
	// Links returns every link, sorted by node MAC.
	Links(ctx context.Context) ([]Link, error)

	// AddPoEOff records a port turned off, replacing an earlier record of
	// the same port.
	AddPoEOff(ctx context.Context, p PoEOff) error
	// RemovePoEOff forgets a port's record; no error if there was none.
	RemovePoEOff(ctx context.Context, switchMAC string, port int) error
	// PoEOffs returns every record, sorted by switch MAC and port.
	PoEOffs(ctx context.Context) ([]PoEOff, error)

	// AddReboots records reboots in one transaction and returns their IDs.
	// A record whose State is empty is stored as RebootDone; ErrInvalid
	// for an unknown state.
	AddReboots(ctx context.Context, rs []Reboot) ([]string, error)
	// FinishReboots completes records added as RebootRunning, in one
	// transaction: their outcome (Method, OK, times, Attempts) and State
	// (empty: RebootDone) replace what was stored; Batch, Requester,
	// Cause, the node and BootedAt/BootID stay. A record marked
	// RebootInterrupted meanwhile (by a server's start that took it for
	// its own: a record of no server, see InterruptReboots) is completed
	// too. ErrNotFound if an ID is unknown, ErrConflict if a record is
	// complete already.
	FinishReboots(ctx context.Context, rs []Reboot) error
	// DeleteReboots forgets running records, with their attempts: those
	// of nodes a request found already being rebooted by another (whose
	// record is the other's). Unknown IDs are skipped; ErrConflict if a
	// record is not running.
	DeleteReboots(ctx context.Context, ids []string) error
	// InterruptReboots marks the RebootRunning records of server (their
	// Reboot.Server), and those of no server, RebootInterrupted, and
	// returns how many there were. A server calls it at start, before it
	// reboots anything, with its own id: the records its predecessor (the
	// server of the same data directory) left running will never be
	// completed, whereas those of another server sharing the database are
	// still being run. Records of no server are those written before
	// schema version 8, or by servers without an id; any start marks them.
	InterruptReboots(ctx context.Context, server string) (int, error)
	// Reboots returns the records f selects, newest first.
	Reboots(ctx context.Context, f RebootFilter) ([]Reboot, error)
	// LatestReboots returns each node's latest record when it was
	// requested at or after since and no boot completed it (BootedAt
	// zero): the reboots a restarted server may still see the boot of. At
	// most one a node, sorted by node MAC. Only a failed record (OK false,
	// RebootDone) comes with its Attempts: they say whether it may have
	// reached the node (history.MayHaveActed).
	LatestReboots(ctx context.Context, since time.Time) ([]Reboot, error)

	// SetBootStatuses records the boot status of nodes in one transaction
	// (and their Device.Booted flag, and Device.LastSeen when the status
	// has one). Statuses of MACs that are not in the
	// inventory (devices forgotten meanwhile) are skipped.
	SetBootStatuses(ctx context.Context, bs []BootStatus) error
	// BootStatuses returns every recorded boot status, sorted by MAC.
	BootStatuses(ctx context.Context) ([]BootStatus, error)
	// SetRebootsBooted records the boots that completed reboots, in one
	// transaction. Unknown reboot IDs are skipped.
	SetRebootsBooted(ctx context.Context, bs []RebootBoot) error

	// AddLogLines appends platform log lines in one transaction. Seq must
	// be unique: ErrConflict otherwise.
	AddLogLines(ctx context.Context, ls []LogLine) error
	// LogLines returns the last limit lines (all when limit is 0) with a
	// Seq above after, oldest first.
	LogLines(ctx context.Context, after int64, limit int) ([]LogLine, error)

	// AddCampaign stores a new campaign with its nodes, in one
	// transaction, and returns its ID: the store numbers campaigns 1, 2,
	// 3... (c.ID is ignored). ErrInvalid for a malformed field.
	AddCampaign(ctx context.Context, c Campaign, nodes []CampaignNode) (string, error)
	// UpdateCampaign stores c's State, Round and FinishedAt. ErrNotFound
	// if the ID is unknown.
	UpdateCampaign(ctx context.Context, c Campaign) error
	// Campaigns returns the campaigns f selects, newest first.
	Campaigns(ctx context.Context, f CampaignFilter) ([]Campaign, error)
	// CampaignNodes returns a campaign's nodes, sorted by name.
	CampaignNodes(ctx context.Context, id string) ([]CampaignNode, error)
	// SaveCampaignProgress writes nodes' states and boot rows (inserted
	// or replaced, by campaign, node and iteration) in one transaction.
	// ErrNotFound if a campaign or campaign node is unknown.
	SaveCampaignProgress(ctx context.Context, nodes []CampaignNode, boots []CampaignBoot) error
	// CampaignBoots returns a campaign's boot rows, by iteration then
	// node name.
	CampaignBoots(ctx context.Context, id string) ([]CampaignBoot, error)
	// UnbootedCampaignBoots returns, without their Metrics, the current
	// boot rows (each node's latest iteration) of the campaigns in
	// campaignState whose outcome is one of outcomes and that have no
	// boot (BootedAt zero), by campaign then node name.
	UnbootedCampaignBoots(ctx context.Context, campaignState string, outcomes []string) ([]CampaignBoot, error)
	// SetQuarantines records quarantined nodes, replacing earlier
	// records of the same nodes. Nodes not in the inventory are skipped.
	SetQuarantines(ctx context.Context, qs []Quarantine) error
	// ClearQuarantine lifts a node's quarantine; false if it had none.
	ClearQuarantine(ctx context.Context, mac string) (bool, error)
	// Quarantines returns every quarantined node, sorted by MAC.
	Quarantines(ctx context.Context) ([]Quarantine, error)
	// UserStore: accounts and API tokens (user.go).
	UserStore
	// AuditStore: the audit trail of state-changing calls (audit.go).
	AuditStore

	// Close releases the store.
	Close() error
}

// Campaign is a durable campaign of repeated reboots (api.Campaign).
type Campaign struct {
	ID, Name, Requester, Set string
	Mode                     string
	Repeat                   int
	Hard, UntilDone          bool
	// Force: started on nodes owned by others (--force); the owners are
	// checked again before each iteration, under the same rule.
	Force                 bool
	Hold, DoneTimeout     time.Duration
	BootTimeout           time.Duration
	Quarantine            int
	State                 string
	Round                 int
	CreatedAt, FinishedAt time.Time
}

// CampaignFilter selects campaigns. Zero fields match everything.
type CampaignFilter struct {
	ID    string
	State string
	Limit int
}

// CampaignNode is one node's part of a campaign (api.CampaignNode). The
// campaign engine writes it when the node's State or Reason changes, not
// at each iteration: the counters stored (Iteration, Booted, Failed,
// FailedInRow) are those of that write, and campaign.Tally counts the
// current ones from the node's rows.
type CampaignNode struct {
	Campaign, MAC, Name, Model string
	State                      string
	Iteration                  int
	Booted, Failed             int
	FailedInRow                int
	Reason                     string
}

// CampaignBoot is one iteration of one node (api.CampaignBoot). Zero
// times mean "not yet" (or never).
type CampaignBoot struct {
	Campaign, MAC, Name string
	Iteration           int
	RebootID            string
	// PrevBootID is the node's boot id when its reboot was asked: a
	// server that resumes the campaign knows the node booted when its
	// boot id differs.
	PrevBootID                                   string
	RequestedAt, AckAt, DownAt, BootedAt, DoneAt time.Time
	Method, NodeMethod                           string
	Fallback, Rescued                            bool
	BootID                                       string
	// Status is the experiment's exit status, -1 when it reported none.
	Status  int
	Metrics map[string]float64
	Outcome string
	Error   string
	Code    string
}

// Quarantine keeps a node out of campaigns until a user clears it.
type Quarantine struct {
	MAC, Campaign, Reason string
	Since                 time.Time
}

// BootStatus is what the boot tracker keeps of a node across restarts.
type BootStatus struct {
	MAC string
	// BootID identifies the node's last reported boot; empty if the node
	// never reported one.
	BootID string
	Booted bool
	// Since is when the node was last marked booted, or not booted.
	Since time.Time
	// Cause says why the node is not booted ("reboot requested", "bootup
	// timeout", "unknown"...); empty when booted.
	Cause string
	// Method is the reboot method that took the node down, if any.
	Method string
	// LastMethod is the method of the node's last successful reboot.
	LastMethod string
	// RetriesLeft counts the hard reboots the boot watchdog may still try.
	RetriesLeft int
	// LastSeen, when not zero, is the node's last sign of life:
	// SetBootStatuses stores it as the device's LastSeen. BootStatuses
	// leaves it zero (Device.LastSeen has it).
	LastSeen time.Time
}

// RebootBoot is the boot that completed a reboot.
type RebootBoot struct {
	ID     string // the reboot's
	BootID string
	At     time.Time
}

// LogLine is one line of the platform log ("node rpi1 is booted").
type LogLine struct {
	// Seq orders the lines; the server assigns increasing values.
	Seq    int64
	At     time.Time
	Stream string // e.g. "platform.nodes"
	Node   string // the node the line is about; empty if none
	Line   string
}

// NormalizeMAC returns mac in the stored form (lower case, colon-separated
// 6-byte address), or an error wrapping ErrInvalid.
func NormalizeMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("mac address %q: %w: expected 6 bytes such as 52:54:00:12:34:56", mac, vocab.ErrInvalid)
	}
	return hw.String(), nil
}
