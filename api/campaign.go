package api

import "time"

// Campaigns (docs/campaigns.md): a node set rebooted Repeat times, each
// boot recorded as one CampaignBoot row.
//
//	POST /api/v1/campaigns               CampaignRequest → Campaign (201)
//	GET  /api/v1/campaigns               → CampaignList (newest first)
//	GET  /api/v1/campaigns/{id}          → Campaign
//	POST /api/v1/campaigns/{id}/stop     → Campaign
//	GET  /api/v1/campaigns/{id}/boots    → CampaignBootList (by round, then node)
//	GET  /api/v1/campaigns/{id}/events   NDJSON CampaignEvent values; ?follow=true goes on until the campaign ends
//	GET  /api/v1/campaigns/{id}/stats    → CampaignStats
//	GET  /api/v1/campaign-comparisons?a=ID&b=ID → CampaignComparison
//	DELETE /api/v1/quarantine/{node}     clears a node's quarantine (204)
//
// Node-facing: POST /api/v1/node-done (DoneReport → DoneReply).

// Campaign modes.
const (
	// CampaignRounds reboots every active node together; the next round
	// starts when each has booted (and, with UntilDone, is done) or failed.
	CampaignRounds = "rounds"
	// CampaignFree lets each node cycle on its own clock.
	CampaignFree = "free"
)

// Campaign states.
const (
	CampaignRunning = "running"
	CampaignDone    = "done"    // every node ran its iterations or left
	CampaignStopped = "stopped" // a user stopped it
)

// Campaign limits.
const (
	MaxCampaignRepeat = 10000
	// MaxCampaignBoots bounds nodes × repeat: the rows of one campaign,
	// which its boots, stats and comparisons read whole.
	MaxCampaignBoots   = 1000000
	DefaultQuarantine  = 2 // failed boots in a row that quarantine a node
	MaxQuarantine      = 1000
	DefaultBootTimeout = 5 * time.Minute
	DefaultDoneTimeout = 10 * time.Minute
	MaxCampaignName    = 64
)

// CampaignRequest is the body of POST /api/v1/campaigns.
type CampaignRequest struct {
	Set       string `json:"set"`
	Requester string `json:"requester"`
	// Force takes nodes owned by other users, as for a reboot.
	Force bool   `json:"force,omitempty"`
	Name  string `json:"name,omitempty"`
	// Repeat is the number of reboots of each node, 1 to MaxCampaignRepeat.
	Repeat int  `json:"repeat"`
	Hard   bool `json:"hard,omitempty"`
	// Mode is CampaignRounds (default) or CampaignFree.
	Mode string `json:"mode,omitempty"`
	// Hold is the time left to the experiment after a node has booted
	// (and is done, with UntilDone) before its next reboot.
	Hold Duration `json:"hold,omitempty"`
	// UntilDone makes an iteration end when the node's experiment reports
	// done (walt-node done), or DoneTimeout after the boot.
	UntilDone   bool     `json:"until_done,omitempty"`
	DoneTimeout Duration `json:"done_timeout,omitempty"` // 0: DefaultDoneTimeout
	// BootTimeout: a node that has not booted this long after its reboot
	// was asked fails the iteration (the boot watchdog may rescue it
	// meanwhile). 0: DefaultBootTimeout.
	BootTimeout Duration `json:"boot_timeout,omitempty"`
	// Quarantine is the number of failed iterations in a row that put a
	// node in quarantine; 0: DefaultQuarantine.
	Quarantine int `json:"quarantine,omitempty"`
}

// Campaign is a campaign as the server shows it.
type Campaign struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Requester   string     `json:"requester"`
	Set         string     `json:"set"`
	Mode        string     `json:"mode"`
	Repeat      int        `json:"repeat"`
	Hard        bool       `json:"hard"`
	Hold        Duration   `json:"hold"`
	UntilDone   bool       `json:"until_done"`
	DoneTimeout Duration   `json:"done_timeout"`
	BootTimeout Duration   `json:"boot_timeout"`
	Quarantine  int        `json:"quarantine"`
	State       string     `json:"state"`
	Created     time.Time  `json:"created"`
	Finished    *time.Time `json:"finished,omitempty"`
	// Round is, in rounds mode, the round in progress (or the last);
	// in free mode, the highest iteration reached.
	Round int `json:"round"`
	// Nodes lists every node of the campaign with where it is.
	Nodes []CampaignNode `json:"nodes"`
}

// Campaign node states.
const (
	NodeActive      = "active"      // still iterating
	NodeFinished    = "finished"    // ran its iterations
	NodeQuarantined = "quarantined" // left after Quarantine failed iterations in a row
	NodeStopped     = "stopped"     // the campaign was stopped
	NodeTaken       = "taken"       // left: another user owns it now (Reason names them)
)

// CampaignNode is one node's part of a campaign.
type CampaignNode struct {
	Node  string `json:"node"`
	MAC   string `json:"mac"`
	Model string `json:"model,omitempty"`
	State string `json:"state"`
	// Iteration is the node's current (or last) iteration, from 1.
	Iteration int `json:"iteration"`
	// Booted, Failed count its iterations so far.
	Booted int `json:"booted"`
	Failed int `json:"failed"`
	// FailedInRow counts the failed iterations since its last good one.
	FailedInRow int `json:"failed_in_row"`
	// Reason says why a node was quarantined.
	Reason string `json:"reason,omitempty"`
	// LastBoot is the duration of its last completed boot.
	LastBoot *Duration `json:"last_boot,omitempty"`
	// Phase is where the current iteration is: one of the Boot* outcomes.
	Phase string `json:"phase,omitempty"`
}

// CampaignList is the body of GET /api/v1/campaigns.
type CampaignList struct {
	Campaigns []Campaign `json:"campaigns"`
}

// Outcomes of one campaign boot.
const (
	BootRequested   = "requested"    // the reboot was asked, no outcome yet
	BootRebooted    = "rebooted"     // acknowledged (or power cycled), waiting for the new boot
	BootBooted      = "booted"       // a new boot id was reported; waiting for done or the hold
	BootCompleted   = "completed"    // the iteration ended well
	BootFailed      = "failed"       // the reboot failed, or no new boot came in time
	BootDoneTimeout = "done-timeout" // booted, but the experiment never reported done
	BootStopped     = "stopped"      // the campaign stopped during this iteration
)

// CampaignBoot is one iteration of one node: one row of the campaign's
// timeline.
type CampaignBoot struct {
	Campaign  string `json:"campaign"`
	Node      string `json:"node"`
	MAC       string `json:"mac"`
	Model     string `json:"model,omitempty"`
	Iteration int    `json:"iteration"`
	// RebootID is the reboot record (GET /api/v1/reboots) of this boot's
	// reboot: its attempts and errors.
	RebootID  string     `json:"reboot_id,omitempty"`
	Requested time.Time  `json:"requested"`
	Ack       *time.Time `json:"ack,omitempty"`
	// Method is the method that rebooted the node (soft-reboot,
	// PoE-reboot, VM-reset...); Fallback is true when a soft reboot was
	// tried first and failed; Rescued when the boot watchdog had to
	// hard-reboot the node before it booted.
	Method   string `json:"method,omitempty"`
	Fallback bool   `json:"fallback,omitempty"`
	Rescued  bool   `json:"rescued,omitempty"`
	// NodeMethod is how the node says it rebooted (kexec), when it says.
	NodeMethod string     `json:"node_method,omitempty"`
	Down       *time.Time `json:"down,omitempty"`
	Booted     *time.Time `json:"booted,omitempty"`
	// BootDuration is Booted - Requested.
	BootDuration *Duration `json:"boot_duration,omitempty"`
	BootID       string    `json:"boot_id,omitempty"`
	// Done is when the experiment reported done, with its status and
	// metrics.
	Done    *time.Time         `json:"done,omitempty"`
	Status  *int               `json:"status,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Outcome string             `json:"outcome"`
	Error   string             `json:"error,omitempty"`
	Code    string             `json:"code,omitempty"`
}

// CampaignStopRequest is the body of POST /api/v1/campaigns/{id}/stop.
type CampaignStopRequest struct {
	Requester string `json:"requester"`
	// Force stops another user's campaign.
	Force bool `json:"force,omitempty"`
}

// CampaignBootList is the body of GET /api/v1/campaigns/{id}/boots.
type CampaignBootList struct {
	Boots []CampaignBoot `json:"boots"`
}

// Campaign event types.
const (
	CampaignEventState = "state" // Campaign is set: the whole campaign, first and at the end
	CampaignEventRound = "round" // Round started (rounds mode)
	CampaignEventBoot  = "boot"  // Boot is set: a row changed
	CampaignEventNode  = "node"  // Node is set: a node changed state (quarantined, finished)
	CampaignEventEnd   = "end"   // the campaign ended; the stream ends
)

// CampaignEvent is one line of GET /api/v1/campaigns/{id}/events.
type CampaignEvent struct {
	Type     string        `json:"type"`
	At       time.Time     `json:"at"`
	Campaign *Campaign     `json:"campaign,omitempty"`
	Round    int           `json:"round,omitempty"`
	Boot     *CampaignBoot `json:"boot,omitempty"`
	Node     *CampaignNode `json:"node,omitempty"`
}

// Summary describes a sample (boot times in seconds, or a metric).
type Summary struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	SD     float64 `json:"sd"`
	// MedianCI is a 95 % confidence interval of the median
	// (distribution-free, from order statistics); absent when N is too
	// small for one.
	MedianCI *[2]float64 `json:"median_ci,omitempty"`
}

// NodeStats are one node's statistics in a campaign (Node empty: the
// whole set).
type NodeStats struct {
	Node      string `json:"node,omitempty"`
	Model     string `json:"model,omitempty"`
	Attempted int    `json:"attempted"`
	Completed int    `json:"completed"`
	Failed    int    `json:"failed"`
	// Methods counts the boots by the method that rebooted the node.
	Methods   map[string]int `json:"methods"`
	Fallbacks int            `json:"fallbacks"`
	Rescued   int            `json:"rescued"`
	// BootTime summarizes the boot durations (seconds) of booted rows.
	BootTime *Summary `json:"boot_time,omitempty"`
	// Outlier: the node's median boot time is far from those of the other
	// nodes of its model; OutlierNote says how.
	Outlier     bool   `json:"outlier,omitempty"`
	OutlierNote string `json:"outlier_note,omitempty"`
	// Statuses counts the experiment's exit statuses ("0": 12).
	Statuses map[string]int     `json:"statuses,omitempty"`
	Metrics  map[string]Summary `json:"metrics,omitempty"`
	State    string             `json:"state,omitempty"`
	Reason   string             `json:"reason,omitempty"`
}

// CampaignStats is the body of GET /api/v1/campaigns/{id}/stats.
type CampaignStats struct {
	Campaign Campaign    `json:"campaign"`
	All      NodeStats   `json:"all"`
	Nodes    []NodeStats `json:"nodes"`
}

// ModelComparison compares two campaigns' boots of one node model (Model
// empty: every node).
type ModelComparison struct {
	Model string  `json:"model,omitempty"`
	A     Summary `json:"a"`
	B     Summary `json:"b"`
	// Shift is the Hodges–Lehmann estimate of B's boot time minus A's
	// (seconds), ShiftCI its 95 % confidence interval, ShiftPercent the
	// shift relative to A's median.
	Shift        float64     `json:"shift"`
	ShiftCI      *[2]float64 `json:"shift_ci,omitempty"`
	ShiftPercent float64     `json:"shift_percent"`
	// MannWhitneyU and MannWhitneyP: the rank test of "same
	// distribution" (two-sided).
	MannWhitneyU float64 `json:"mann_whitney_u"`
	MannWhitneyP float64 `json:"mann_whitney_p"`
	// Failure and fallback rates, and Fisher's exact test (two-sided) of
	// "same rate".
	AttemptsA  int     `json:"attempts_a"`
	AttemptsB  int     `json:"attempts_b"`
	FailedA    int     `json:"failed_a"`
	FailedB    int     `json:"failed_b"`
	FailureP   float64 `json:"failure_p"`
	FallbacksA int     `json:"fallbacks_a"`
	FallbacksB int     `json:"fallbacks_b"`
	FallbackP  float64 `json:"fallback_p"`
	// Changed is true when a test says so at the 5 % level.
	Changed bool `json:"changed"`
}

// CampaignComparison is the body of GET /api/v1/campaign-comparisons.
type CampaignComparison struct {
	A      string            `json:"a"`
	B      string            `json:"b"`
	All    ModelComparison   `json:"all"`
	Models []ModelComparison `json:"models"`
}

// Boot context causes (BootContext.Cause).
const (
	BootCauseUser     = "reboot requested" // a user's reboot (CauseRebootRequested)
	BootCauseWatchdog = "bootup timeout"   // the boot watchdog's hard reboot (CauseBootupTimeout)
	BootCauseCampaign = "campaign"         // a campaign's reboot
	BootCauseUnknown  = "unknown"          // no reboot by the server: power on, crash, a reboot on the node
)

// Outcomes of the reboot a boot context names, when the server does not
// know that the reboot reached the node (BootContext.RebootOutcome): the
// boot is the reboot's if its request got there, else of unknown cause.
const (
	// RebootOutcomeFailed: no method worked, but one may have reached the
	// node (a request sent and no reply, a power device that did not
	// answer).
	RebootOutcomeFailed = "failed"
	// RebootOutcomeInterrupted: the server that asked the reboot stopped
	// (was killed) before knowing whether it reached the node; its record
	// says interrupted.
	RebootOutcomeInterrupted = "interrupted"
)

// BootContext tells a node's experiment why this boot happened. The
// server returns it in its answer to a boot report (Node.BootContext);
// walt-node writes it under /run/walt/ and prints it (walt-node context).
type BootContext struct {
	BootID    string `json:"boot_id"`
	Cause     string `json:"cause"`
	Requester string `json:"requester,omitempty"`
	// Method is the server's method (soft-reboot, PoE-reboot, VM-reset),
	// NodeMethod the node's own account (kexec), when known.
	Method     string `json:"method,omitempty"`
	NodeMethod string `json:"node_method,omitempty"`
	RebootID   string `json:"reboot_id,omitempty"`
	// RebootOutcome is empty when the reboot worked (the agent
	// acknowledged, or the power was cycled) or its outcome was not known
	// yet when the boot came (a fast node reports its boot while the
	// reboot is still running); RebootOutcomeFailed or RebootOutcomeInterrupted when the
	// server does not know that the reboot reached the node: the boot may
	// or may not be the reboot's.
	RebootOutcome string     `json:"reboot_outcome,omitempty"`
	RequestedAt   *time.Time `json:"requested_at,omitempty"`
	// WatchdogTry is, for a watchdog reboot, its try number (1 to
	// WatchdogTries).
	WatchdogTry   int `json:"watchdog_try,omitempty"`
	WatchdogTries int `json:"watchdog_tries,omitempty"`
	// Campaign, Iteration and Iterations: the campaign whose reboot this
	// boot is (Iteration of Iterations; in rounds mode the round).
	Campaign     string `json:"campaign,omitempty"`
	CampaignName string `json:"campaign_name,omitempty"`
	Iteration    int    `json:"iteration,omitempty"`
	Iterations   int    `json:"iterations,omitempty"`
}

// Done report limits.
const (
	MaxDoneMetrics   = 32
	MaxMetricKey     = 64
	MinDoneStatus    = 0
	MaxDoneStatus    = 255
	MaxNodeMethodLen = 32
)

// DoneReport is the body of POST /api/v1/node-done: the experiment of the
// boot BootID finished, with an exit status (0 to 255) and a few numbers
// (keys of letters, digits, '.', '_' and '-'; finite values).
type DoneReport struct {
	MAC     string             `json:"mac"`
	BootID  string             `json:"boot_id"`
	Status  int                `json:"status"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// DoneReply answers a DoneReport: the campaign iteration it ended, if any.
type DoneReply struct {
	Campaign  string `json:"campaign,omitempty"`
	Iteration int    `json:"iteration,omitempty"`
}
