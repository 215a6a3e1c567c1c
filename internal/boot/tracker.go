// Package boot tracks the boot state of every node: booted, booting or
// down, since when and why, the node's last sign of life, and the boot
// that completes each reboot (docs/boot-tracking.md). It alone owns that
// state. Heartbeats only touch memory; changes are written to the store
// in batches by one flusher, with the platform log ("node rpi1 is
// booted"). A periodic sweep marks silent nodes down and runs the boot
// watchdog, which hard-reboots stuck nodes through the Watchdog it is
// given.
//
// Lifecycle: New loads the state (I/O on the caller's context); Run
// sweeps until its context ends, then stops the sweeps, cancels watchdog
// reboots in progress, waits for every goroutine of the tracker and
// writes what is pending: nothing of the tracker touches the store after
// Run returns.
package boot

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// Store is what the tracker needs of the server's store.
type Store interface {
	Devices(ctx context.Context) ([]store.Device, error)
	BootStatuses(ctx context.Context) ([]store.BootStatus, error)
	SetBootStatuses(ctx context.Context, bs []store.BootStatus) error
	SetRebootsBooted(ctx context.Context, bs []store.RebootBoot) error
	AddLogLines(ctx context.Context, ls []store.LogLine) error
	LogLines(ctx context.Context, after int64, limit int) ([]store.LogLine, error)
}

// Limit is a node's boot watchdog settings.
type Limit struct {
	// Timeout is boot.timeout; 0: the watchdog leaves the node alone.
	Timeout time.Duration
	// Retries is boot.retries: the hard reboots tried before giving up.
	Retries int
}

// A Watchdog is what the boot watchdog needs from the server.
type Watchdog interface {
	// Limits returns the limits of the given nodes, by MAC.
	Limits(ctx context.Context, macs []string) (map[string]Limit, error)
	// Reboot hard-reboots a node stuck in its boot (recorded with
	// requester walt, cause "bootup timeout"), and returns when it is
	// done or ctx ended.
	Reboot(ctx context.Context, mac string)
}

// Clock is the time source of boot tracking; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Config configures boot tracking. Zero fields take the defaults.
type Config struct {
	// HeartbeatInterval is the period agents are told to beat at; 10s.
	HeartbeatInterval time.Duration
	// Silence: a node whose agent promised heartbeats and sent nothing
	// for this long is down; 25s (detected within Silence + Sweep).
	Silence time.Duration
	// Sweep is the period of the silence and watchdog checks; 1s.
	Sweep time.Duration
	// Clock defaults to the real clock.
	Clock Clock
}

func (c *Config) setDefaults() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = api.DefaultHeartbeatInterval
	}
	if c.Silence <= 0 {
		c.Silence = 25 * time.Second
	}
	if c.Sweep <= 0 {
		c.Sweep = time.Second
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
}

// nodeBoot is one node's boot state.
type nodeBoot struct {
	mac, name string
	bootID    string
	booted    bool
	since     time.Time
	cause     string
	method    string
	note      string
	// lastMethod: the method of the last successful reboot.
	lastMethod string
	// retriesLeft counts the watchdog's hard reboots left; -1: the
	// node's boot.retries, resolved at the next sweep.
	retriesLeft int
	// beats: the agent reported a boot id, so it sends heartbeats and
	// silence means down.
	beats bool
	// lastSeen is the baseline of silence: the last sign of life, or the
	// server's start. seen is the last sign of life known, across
	// restarts (the store's Device.LastSeen at load); zero if none.
	lastSeen, seen time.Time
	// reboot is the reboot in progress, nil if none.
	reboot *pendingReboot
	// watchdog: a watchdog reboot is running; watchdogTry of
	// watchdogTries is its number.
	watchdog                   bool
	watchdogTry, watchdogTries int
	// context is why the current boot happened; nil before the first
	// boot this server saw.
	context *api.BootContext
	// done is the experiment's report for the current boot; nil if none.
	done *Done
	// past holds the hashes of the node's last boot ids before the
	// current one (this server's), newest at pastNext-1: a report of one
	// of them is a stale report, not a new boot.
	past     [pastBoots]uint64
	pastNext int
}

// pastBoots is how many of a node's earlier boots the tracker remembers,
// to refuse their late reports: a report retried over a server's restart
// can come after several newer boots of a fast-booting node.
const pastBoots = 8

// pastLocked says whether bootID is one of the node's earlier boots, not
// its current one.
func (n *nodeBoot) pastLocked(seed maphash.Seed, bootID string) bool {
	if bootID == "" || bootID == n.bootID {
		return false
	}
	h := maphash.String(seed, bootID)
	for _, p := range n.past {
		if p == h && p != 0 {
			return true
		}
	}
	return false
}

// RebootInfo describes a reboot the server starts, for the boot context
// of the node's next boot.
type RebootInfo struct {
	// RecordID is the reboot's record, added before the node was
	// touched; empty if it could not be.
	RecordID  string
	Requester string
	Cause     string
	// Campaign, CampaignName, Iteration and Iterations are set for a
	// campaign's reboot.
	Campaign, CampaignName string
	Iteration, Iterations  int
	// Wait is how long after it was asked the reboot can still be the
	// cause of its node's next boot: the node's boot wait (its
	// boot.timeout × (boot.retries + 1) with the watchdog on) or a
	// campaign's --boot-timeout; 0 or more than MaxWait: MaxWait. A boot
	// that comes later is not the reboot's: whoever waited for it has
	// given up, and the boot has another cause (someone pulled the
	// plug) that the server does not know.
	Wait time.Duration
}

// MaxWait bounds RebootInfo.Wait: the longest a campaign waits for a
// boot (--boot-timeout), and the boot wait of a node whose watchdog is
// off.
const MaxWait = 24 * time.Hour

// Deadline is the last time at which a boot is still the reboot's, for
// a reboot asked at at.
func (i RebootInfo) Deadline(at time.Time) time.Time {
	if i.Wait <= 0 || i.Wait > MaxWait {
		return at.Add(MaxWait)
	}
	return at.Add(i.Wait)
}

// Outcome is how a reboot ended, for RebootEnded.
type Outcome int

const (
	// Rebooted: the agent acknowledged, or a hard reboot worked.
	Rebooted Outcome = iota + 1
	// Failed: no method worked, but one may have reached the node (a
	// request sent and no reply, a power device that did not answer):
	// the node may reboot anyway, so its next boot within the reboot's
	// wait is still the reboot's.
	Failed
	// NotReached: no method worked and none reached the node
	// (connection refused, no route, the agent's KO, no power method,
	// forbidden on switch): the node's next boot is not the reboot's.
	NotReached
	// Interrupted: the server that asked the reboot stopped before
	// knowing its outcome (its record says interrupted): the request may
	// or may not have reached the node, and the node's next boot within
	// the reboot's wait is the reboot's, saying so (Awaited, Restore).
	Interrupted
)

// contextOutcome is what a boot context says of a reboot that ended
// this way (api.BootContext.RebootOutcome): nothing when it worked or is
// not known yet.
func (o Outcome) contextOutcome() string {
	switch o {
	case Failed:
		return api.RebootOutcomeFailed
	case Interrupted:
		return api.RebootOutcomeInterrupted
	}
	return ""
}

// Done is an experiment's report that its boot's work is finished.
type Done struct {
	BootID  string
	At      time.Time
	Status  int
	Metrics map[string]float64
}

// Booted is a new boot, as observers hear of it.
type Booted struct {
	MAC, Name, BootID string
	At                time.Time
	Context           api.BootContext
}

// DoneReport is a done report, as observers hear of it.
type DoneReport struct {
	MAC, Name string
	Done      Done
}

// An Observer hears of every new boot and done report, after the tracker
// has taken it into account. Its methods are called on the reporting
// request's goroutine, outside the tracker's lock, and must not block.
type Observer interface {
	NodeBooted(b Booted)
	NodeDone(d DoneReport)
}

// pendingReboot follows one reboot until the node's next boot.
type pendingReboot struct {
	requested time.Time
	// deadline: a boot after it is not the reboot's (RebootInfo.Wait).
	// campaignDeadline, for a reboot with a campaign in its info: a
	// boot after it is not the campaign's iteration (the campaign's
	// wait, which the watchdog's rescue of its boot inherits).
	deadline, campaignDeadline time.Time
	info                       RebootInfo
	// method is the method that rebooted the node, once known; outcome,
	// how the reboot ended, once known (zero before).
	method  string
	outcome Outcome
	// watchdogTry of watchdogTries: set for a boot watchdog's reboot.
	watchdogTry, watchdogTries int
	// booted: the node reported a new boot, recorded as the reboot's;
	// ended: the engine reported the reboot's outcome. Once both are
	// true, nothing is pending.
	booted, ended bool
}

func (n *nodeBoot) state() string {
	switch {
	case n.booted:
		return api.StateBooted
	case n.reboot != nil || rebootCause(n.cause):
		return api.StateBooting
	}
	return api.StateDown
}

// rebootCause reports whether a node down for this cause was taken down
// by a reboot of the server's (a user's, the watchdog's, a campaign's):
// it is booting, not down.
func rebootCause(cause string) bool {
	switch cause {
	case "", api.CauseUnknown, api.CauseStartup, api.CausePowersave:
		return false
	}
	return true
}

func (n *nodeBoot) status() store.BootStatus {
	return store.BootStatus{MAC: n.mac, BootID: n.bootID, Booted: n.booted, Since: n.since, Cause: n.cause,
		Method: n.method, LastMethod: n.lastMethod, RetriesLeft: n.retriesLeft, LastSeen: n.seen}
}

func (n *nodeBoot) apiStatus() *api.BootStatus {
	return &api.BootStatus{State: n.state(), Since: n.since, Cause: n.cause, Method: n.method, Note: n.note,
		BootID: n.bootID, LastRebootMethod: n.lastMethod}
}

// Tracker holds the boot state of every node.
type Tracker struct {
	cfg   Config
	store Store
	log   *slog.Logger
	plog  *PlatformLog
	// wd runs the watchdog's reboots; nil: no watchdog.
	wd Watchdog

	// seed hashes the nodes' past boot ids (nodeBoot.past).
	seed maphash.Seed

	mu    sync.Mutex
	nodes map[string]*nodeBoot // by MAC; +checklocks:mu
	// changed is closed and replaced at each change of a node's booted
	// state (waiters watch it). +checklocks:mu
	changed chan struct{}
	// Writes waiting for the flusher. +checklocks:mu
	dirty map[string]bool
	// deferred holds the statuses of nodes down for a reboot whose
	// record says it worked, by MAC: each is written when its time comes
	// (the sweep), unless a later change of the node's writes it first
	// (deferDownLocked). +checklocks:mu
	deferred map[string]time.Time
	boots    []store.RebootBoot
	// next is the outcome of the flush that will write the changes
	// pending now; writing, that of the flush writing now (nil if none).
	// +checklocks:mu
	next, writing *flushResult
	flushing      bool
	stop          func() bool
	closed        bool
	observers     []Observer
	// running counts the tracker's goroutines (flusher, sweep, watchdog
	// reboots); close waits for them, so that none outlives the store.
	// Add is called under mu while !closed only.
	running sync.WaitGroup
	// watchdogCtx ends at close: a watchdog reboot in progress stops.
	watchdogCtx    context.Context
	cancelWatchdog context.CancelFunc

	flushMu sync.Mutex // one flush at a time
}

// New loads every node's boot state from st. wd may be nil (no watchdog).
func New(ctx context.Context, cfg Config, st Store, log *slog.Logger, wd Watchdog) (*Tracker, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{cfg: cfg, store: st, log: log, wd: wd, seed: maphash.MakeSeed(), nodes: map[string]*nodeBoot{}, changed: make(chan struct{}), dirty: map[string]bool{}, deferred: map[string]time.Time{}, next: newFlushResult()}
	t.watchdogCtx, t.cancelWatchdog = context.WithCancel(context.WithoutCancel(ctx))
	plog, err := newPlatformLog(ctx, st, cfg.Clock)
	if err != nil {
		return nil, err
	}
	t.plog = plog
	devs, err := st.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("boot tracking: %w", err)
	}
	statuses, err := st.BootStatuses(ctx)
	if err != nil {
		return nil, fmt.Errorf("boot tracking: %w", err)
	}
	byMAC := make(map[string]store.BootStatus, len(statuses))
	for _, b := range statuses {
		byMAC[b.MAC] = b
	}
	now := cfg.Clock.Now()
	for _, d := range devs {
		if d.Type != store.TypeNode {
			continue
		}
		n := &nodeBoot{mac: d.MAC, name: d.Name, booted: d.Booted, since: now, retriesLeft: -1, lastSeen: now, seen: d.LastSeen}
		if b, ok := byMAC[d.MAC]; ok {
			n.bootID, n.booted, n.since, n.cause, n.method, n.lastMethod, n.retriesLeft =
				b.BootID, b.Booted, b.Since, b.Cause, b.Method, b.LastMethod, b.RetriesLeft
			n.beats = b.BootID != ""
		} else if !d.Booted {
			n.cause = api.CauseStartup
		}
		t.nodes[d.MAC] = n
	}
	return t, nil
}

// Run sweeps until ctx ends, then closes the tracker (Close) and returns
// nil.
func (t *Tracker) Run(ctx context.Context) error {
	t.Start()
	<-ctx.Done()
	t.Close()
	return nil
}

// Start begins the periodic sweeps (Run calls it); stop ends them. For
// tests that drive a tracker without Run: Close must still be called.
func (t *Tracker) Start() (stop func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop == nil && !t.closed {
		t.stop = t.cfg.Clock.AfterFunc(t.cfg.Sweep, t.tick)
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.closed = true
		if t.stop != nil {
			t.stop()
		}
	}
}

func (t *Tracker) tick() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.running.Add(1)
	t.mu.Unlock()
	defer t.running.Done()
	t.sweep()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.stop = t.cfg.Clock.AfterFunc(t.cfg.Sweep, t.tick)
	}
}

// Close stops the sweeps, cancels watchdog reboots in progress, waits for
// every goroutine of the tracker and writes what is pending. Nothing of
// the tracker touches the store after it returns.
func (t *Tracker) Close() {
	t.mu.Lock()
	t.closed = true
	if t.stop != nil {
		t.stop()
	}
	t.mu.Unlock()
	t.cancelWatchdog()
	t.running.Wait()
	t.mu.Lock()
	for mac := range t.deferred { // a clean stop leaves the store exact
		t.dirty[mac] = true
	}
	clear(t.deferred)
	t.mu.Unlock()
	t.Flush()
}

// changedLocked wakes the waiters.
func (t *Tracker) changedLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// markDirtyLocked queues n's status for the store.
func (t *Tracker) markDirtyLocked(n *nodeBoot) {
	t.dirty[n.mac] = true
	delete(t.deferred, n.mac) // the flush writes its latest status
	t.kickLocked()
}

// downDelay bounds how long the status of a node down for a reboot
// waits to be written (deferDownLocked).
const downDelay = 2 * time.Minute

// deferDownLocked holds back the status of a node that its reboot p has
// just taken down, which was booted and had nothing waiting to be
// written: the node's boot, which usually comes first, writes its status
// instead (a soft reboot then writes one boot status, not two). The
// status is written at the earlier of downDelay from now and p's
// deadline, or by the node's next change, or at Close. Until then a
// restarted server knows it all the same from the reboot's record
// (written before the tracker hears of the outcome): Restore makes the
// node booting from it (docs/boot-tracking.md, "What is written, and
// when").
func (t *Tracker) deferDownLocked(n *nodeBoot, p *pendingReboot) {
	delete(t.dirty, n.mac)
	at := t.cfg.Clock.Now().Add(downDelay)
	if p.deadline.Before(at) {
		at = p.deadline
	}
	t.deferred[n.mac] = at
}

func (t *Tracker) kickLocked() {
	if !t.flushing && !t.closed { // once closed, close's own flush writes
		t.flushing = true
		t.running.Add(1)
		go func() {
			defer t.running.Done()
			t.flushLoop()
		}()
	}
}

// flushDelay is how long a change waits for the flusher, which then
// writes it with every change that came meanwhile: the boot reports of a
// reboot of many nodes, about one a millisecond each for a thousand
// nodes, go in transactions of tens of rows instead of one each
// (measured: without the wait, most passes wrote a single row). What the
// store holds is that much behind the tracker, whose memory answers
// every read.
const flushDelay = 10 * time.Millisecond

func (t *Tracker) flushLoop() {
	for {
		time.Sleep(flushDelay)
		if t.flush() != nil {
			time.Sleep(flushRetryDelay) // the store is failing: no busy loop
		}
		t.mu.Lock()
		if len(t.dirty) == 0 && len(t.boots) == 0 && !t.plog.hasPending() {
			t.flushing = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// flushRetryDelay is the pause of the flusher after a flush that failed,
// before it tries again.
const flushRetryDelay = time.Second

// A flushResult is the outcome of one flush: done is closed once it is
// known, and err then says whether the store holds what it wrote.
type flushResult struct {
	done chan struct{}
	err  error
}

func newFlushResult() *flushResult { return &flushResult{done: make(chan struct{})} }

// Flush writes the pending changes: boot statuses, reboot boot times,
// log lines. Errors are logged: the state stays right in memory, and the
// statuses and boot times are written again at the next flush.
func (t *Tracker) Flush() { _ = t.flush() }

func (t *Tracker) flush() error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	statuses := make([]store.BootStatus, 0, len(t.dirty))
	for mac := range t.dirty {
		if n := t.nodes[mac]; n != nil {
			statuses = append(statuses, n.status())
		}
	}
	t.dirty = map[string]bool{}
	boots := t.boots
	t.boots = nil
	res := t.next
	t.next, t.writing = newFlushResult(), res
	t.mu.Unlock()
	lines := t.plog.take()
	err := t.write(statuses, boots, lines)
	t.mu.Lock()
	if err != nil { // again at the next flush, unless newer changes replaced them
		for _, b := range statuses {
			if _, ok := t.nodes[b.MAC]; ok {
				if _, later := t.deferred[b.MAC]; !later {
					t.dirty[b.MAC] = true
				}
			}
		}
		t.boots = append(boots, t.boots...)
	}
	t.writing = nil
	t.mu.Unlock()
	res.err = err
	close(res.done)
	return err
}

// write writes one flush's changes, in one transaction where the store
// can (stateWriter).
func (t *Tracker) write(statuses []store.BootStatus, boots []store.RebootBoot, lines []store.LogLine) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if sw, ok := t.store.(stateWriter); ok {
		if sw.SetBootState(ctx, statuses, boots, lines) == nil {
			return nil
		}
		// Each part on its own, as without SetBootState: one that
		// fails does not take the others with it, and is logged.
	}
	serr := t.store.SetBootStatuses(ctx, statuses)
	if serr != nil {
		t.log.Error("cannot record boot statuses", "nodes", len(statuses), "err", serr)
	}
	berr := t.store.SetRebootsBooted(ctx, boots)
	if berr != nil {
		t.log.Error("cannot record reboot boot times", "reboots", len(boots), "err", berr)
	}
	t.plog.write(ctx, t.log, lines)
	return errors.Join(serr, berr)
}

// ErrStopped: the tracker was closed, and writes no more.
var ErrStopped = errors.New("boot tracking is stopped")

// Stored returns once the store holds the boot statuses and reboot boot
// times the tracker had changed when it was called (log lines aside):
// the answer to a boot report waits for it, so that a server killed
// after answering has the boot. An error says that they could not be
// written (they are tried again) or that ctx ended first.
func (t *Tracker) Stored(ctx context.Context) error {
	t.mu.Lock()
	res := t.writing
	if len(t.dirty) > 0 || len(t.boots) > 0 {
		if t.closed {
			t.mu.Unlock()
			return ErrStopped
		}
		res = t.next
		t.kickLocked()
	}
	t.mu.Unlock()
	if res == nil {
		return nil
	}
	select {
	case <-res.done:
		return res.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A stateWriter writes a whole flush in one transaction (sqlstore's
// SetBootState), all or nothing.
type stateWriter interface {
	SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error
}

// nodeLocked returns the node's state, created if new.
func (t *Tracker) nodeLocked(mac, name string) *nodeBoot {
	n := t.nodes[mac]
	if n == nil {
		n = &nodeBoot{mac: mac, name: name, since: t.cfg.Clock.Now(), retriesLeft: -1, cause: api.CauseStartup}
		t.nodes[mac] = n
	}
	if name != "" {
		n.name = name
	}
	return n
}

// Observe adds an observer of boots and done reports. Call it before
// nodes report (before the server serves).
func (t *Tracker) Observe(o Observer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observers = append(t.observers, o)
}

// Report handles a boot report: a boot id other than the known one (or
// none, from an agent that does not send any) is a new boot, unless it is
// one of the node's earlier boots (ErrPastBoot): a report delayed past
// the node's next boots, which changes nothing. nodeMethod is the node's
// account of how it got there ("kexec"), if any. It returns the context
// of the node's current boot.
func (t *Tracker) Report(mac, name, bootID, nodeMethod string) (api.BootContext, error) {
	t.mu.Lock()
	if n := t.nodes[mac]; n != nil && n.pastLocked(t.seed, bootID) {
		cur := n.bootID
		t.mu.Unlock()
		return api.BootContext{}, fmt.Errorf("boot %s: %w (it booted since: %s)", bootID, ErrPastBoot, cur)
	}
	now := t.cfg.Clock.Now()
	n := t.nodeLocked(mac, name)
	n.beats = bootID != ""
	n.lastSeen, n.seen = now, now
	if bootID != "" && bootID == n.bootID {
		t.aliveLocked(n)
		t.markDirtyLocked(n) // its last sign of life, for the store
		ctx := api.BootContext{BootID: bootID, Cause: api.BootCauseUnknown}
		if n.context != nil {
			ctx = *n.context
		} // else: a boot reported to an earlier server
		t.mu.Unlock()
		return ctx, nil
	}
	t.bootedLocked(n, bootID, now, nodeMethod)
	b := Booted{MAC: mac, Name: n.name, BootID: bootID, At: now, Context: *n.context}
	obs := t.observers
	t.mu.Unlock()
	for _, o := range obs {
		o.NodeBooted(b)
	}
	return b.Context, nil
}

// ErrPastBoot: a boot report names one of the node's earlier boots.
var ErrPastBoot = errors.New("an earlier boot of the node")

// PastBoot says whether bootID is one of the node's boots before its
// current one, whose report Report refuses.
func (t *Tracker) PastBoot(mac, bootID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[mac]
	return n != nil && n.pastLocked(t.seed, bootID)
}

// ErrStaleBoot: a done report names a boot that is not the node's current
// one.
var ErrStaleBoot = errors.New("not the node's current boot")

// ErrUnknownNode: a report names a node the tracker does not know.
var ErrUnknownNode = errors.New("node never reported a boot")

// ReportDone records that the experiment of the node's current boot is
// done. A second report for the same boot replaces the first.
func (t *Tracker) ReportDone(mac string, d Done) error {
	t.mu.Lock()
	n := t.nodes[mac]
	switch {
	case n == nil || n.bootID == "":
		t.mu.Unlock()
		return ErrUnknownNode
	case d.BootID != n.bootID:
		t.mu.Unlock()
		return fmt.Errorf("boot %s: %w (%s)", d.BootID, ErrStaleBoot, n.bootID)
	}
	d.At = t.cfg.Clock.Now()
	n.done = &d
	r := DoneReport{MAC: mac, Name: n.name, Done: d}
	obs := t.observers
	t.mu.Unlock()
	for _, o := range obs {
		o.NodeDone(r)
	}
	return nil
}

// Done returns the done report of the node's current boot; nil if none
// came (since this server started).
func (t *Tracker) Done(mac string) *Done {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.nodes[mac]; n != nil && n.done != nil {
		d := *n.done
		return &d
	}
	return nil
}

// BootContext returns why the node's current boot happened; nil if the
// server saw no boot of it.
func (t *Tracker) BootContext(mac string) *api.BootContext {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.nodes[mac]; n != nil && n.context != nil {
		c := *n.context
		return &c
	}
	return nil
}

// BootID returns the node's current boot id; empty if none is known.
func (t *Tracker) BootID(mac string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.nodes[mac]; n != nil {
		return n.bootID
	}
	return ""
}

// Heartbeat handles one heartbeat; false means the agent must report.
func (t *Tracker) Heartbeat(mac, bootID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[mac]
	if n == nil || bootID == "" || bootID != n.bootID {
		return false
	}
	n.lastSeen = t.cfg.Clock.Now()
	n.seen = n.lastSeen
	n.beats = true
	t.aliveLocked(n)
	return true
}

// aliveLocked handles a sign of life in the known boot: a node found
// silent is booted again (it was only unreachable); a node rebooted by
// the server stays booting until it reports a new boot.
func (t *Tracker) aliveLocked(n *nodeBoot) {
	if n.booted || n.cause != api.CauseUnknown {
		return
	}
	t.setBootedLocked(n, n.lastSeen)
}

// bootedLocked handles a new boot.
func (t *Tracker) bootedLocked(n *nodeBoot, bootID string, now time.Time, nodeMethod string) {
	if n.bootID != "" {
		n.past[n.pastNext] = maphash.String(t.seed, n.bootID)
		n.pastNext = (n.pastNext + 1) % pastBoots
	}
	n.bootID = bootID
	n.done = nil
	c := &api.BootContext{BootID: bootID, Cause: api.BootCauseUnknown, NodeMethod: nodeMethod}
	if p := n.reboot; p != nil && !p.booted && now.After(p.deadline) {
		n.reboot = nil // too late to be the reboot's: a boot of unknown cause
	} else if p != nil && !p.booted {
		if !p.ended && n.booted {
			// The boot came before the reboot's outcome (the agent
			// answers, then reboots): the node went down meanwhile, and
			// the log says so before the boot, as for every reboot.
			t.plog.add(n.name, downLine(n.name, p.info.Cause, "", ""))
		}
		c.Cause, c.Requester, c.Method, c.RebootID = p.info.Cause, p.info.Requester, p.method, p.info.RecordID
		c.RebootOutcome = p.outcome.contextOutcome()
		if p.info.Campaign != "" && !now.After(p.campaignDeadline) {
			if p.info.Cause != api.CauseBootupTimeout {
				c.Cause = api.BootCauseCampaign
			}
			c.Campaign, c.CampaignName, c.Iteration, c.Iterations = p.info.Campaign, p.info.CampaignName, p.info.Iteration, p.info.Iterations
		}
		c.WatchdogTry, c.WatchdogTries = p.watchdogTry, p.watchdogTries
		at := p.requested
		c.RequestedAt = &at
		p.booted = true
		if p.info.RecordID != "" { // else the record could not be added
			t.boots = append(t.boots, store.RebootBoot{ID: p.info.RecordID, BootID: bootID, At: now})
		}
		if p.ended {
			n.reboot = nil
		}
	}
	n.context = c
	t.setBootedLocked(n, now)
}

func (t *Tracker) setBootedLocked(n *nodeBoot, now time.Time) {
	n.booted, n.since, n.cause, n.method, n.note = true, now, "", "", ""
	n.retriesLeft = -1
	t.plog.add(n.name, fmt.Sprintf("node %s is booted", n.name))
	t.log.Debug("node booted", "node", n.name, "boot_id", n.bootID)
	t.markDirtyLocked(n)
	t.changedLocked()
}

// downLocked marks a node not booted and logs why.
func (t *Tracker) downLocked(n *nodeBoot, since time.Time, cause, method, note string) {
	n.booted, n.since, n.cause, n.method, n.note = false, since, cause, method, note
	t.plog.add(n.name, downLine(n.name, cause, method, note))
	t.markDirtyLocked(n)
	t.changedLocked()
}

// downLine is the platform log's line for a node gone down.
func downLine(name, cause, method, note string) string {
	details := "cause: " + cause
	if method != "" {
		details += ", method: " + method
	}
	if note != "" {
		details += ", note: " + note
	}
	return fmt.Sprintf("node %s is down (%s)", name, details)
}

// BeginReboot notes that a node's reboot starts: the node's next boot
// completes it.
func (t *Tracker) BeginReboot(mac, name string, info RebootInfo, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodeLocked(mac, name)
	p := &pendingReboot{requested: at, deadline: info.Deadline(at), info: info}
	p.campaignDeadline = p.deadline
	if n.watchdog && info.Cause == api.CauseBootupTimeout {
		p.watchdogTry, p.watchdogTries = n.watchdogTry, n.watchdogTries
		if old := n.reboot; old != nil && !old.booted && old.info.Campaign != "" && !at.After(old.campaignDeadline) {
			// The watchdog rescues a campaign's reboot: a boot
			// within the campaign's wait is still its iteration.
			p.info.Campaign, p.info.CampaignName = old.info.Campaign, old.info.CampaignName
			p.info.Iteration, p.info.Iterations = old.info.Iteration, old.info.Iterations
			p.campaignDeadline = old.campaignDeadline
		}
	}
	// A reboot still waiting for its boot is superseded: the next boot
	// completes the latest reboot.
	n.reboot = p
}

// RebootEnded records the outcome of the reboot BeginReboot began. A
// node rebooted (its agent acknowledged, or its power was cycled) is down
// until it reports a new boot; once both the outcome and the boot are
// known, nothing is pending. A failed reboot leaves the node's state as
// it was; one that may have reached the node stays pending until its
// deadline (RebootInfo.Wait), one that did not (NotReached) is dropped.
//
// recorded says that the reboot's record holds its outcome (written
// before this call): a restarted server can then tell from the record
// that the node went down, and the tracker may write the node's status
// later (deferDownLocked).
func (t *Tracker) RebootEnded(mac, cause, method string, outcome Outcome, recorded bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[mac]
	if n == nil || n.reboot == nil {
		return
	}
	p := n.reboot
	ok := outcome == Rebooted
	if outcome == NotReached && !p.booted {
		n.reboot = nil
		return
	}
	p.outcome = outcome
	if ok {
		n.lastMethod = method
		p.method = method
	}
	if p.booted && n.context != nil && n.context.RebootID == p.info.RecordID && n.context.Method == "" && n.context.RebootOutcome == "" {
		// The boot came before the outcome: its context says it, at
		// the node's next report of the boot.
		n.context.Method, n.context.RebootOutcome = p.method, outcome.contextOutcome()
	}
	if p.booted { // the new boot was reported before the outcome
		n.reboot = nil
		t.markDirtyLocked(n)
		return
	}
	p.ended = true
	if !ok {
		return
	}
	if cause != api.CauseBootupTimeout {
		n.retriesLeft = -1
	}
	// Restore tells this down state from the record alone when the
	// store says booted since before the request, as it does when the
	// node was booted and nothing of it waits to be written.
	held := recorded && p.info.RecordID != "" && n.booted && !t.dirty[n.mac]
	t.downLocked(n, p.requested, cause, method, "")
	if held {
		t.deferDownLocked(n, p)
	}
}

// Forget drops a node that left the inventory.
func (t *Tracker) Forget(mac string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.nodes, mac)
	delete(t.deferred, mac)
}

// MarkDown is for the parts of the server that take nodes down on
// purpose, such as powersave (cause api.CausePowersave, which the
// watchdog leaves alone).
func (t *Tracker) MarkDown(mac, cause, method string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.nodes[mac]; n != nil {
		n.reboot = nil
		t.downLocked(n, t.cfg.Clock.Now(), cause, method, "")
	}
}

// Status returns a node's boot status, or a down status for a node that
// never reported.
func (t *Tracker) Status(mac string) (*api.BootStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.nodes[mac]
	if n == nil {
		return &api.BootStatus{State: api.StateDown, Note: "never reported"}, false
	}
	return n.apiStatus(), n.booted
}

// LastSeen returns when the node's agent was last heard of (a report or
// a heartbeat, before a restart too); zero if never.
func (t *Tracker) LastSeen(mac string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.nodes[mac]; n != nil {
		return n.seen
	}
	return time.Time{}
}

// NotBooted returns the MACs of the given ones that are not booted, and
// a channel closed at the next change.
func (t *Tracker) NotBooted(macs []string) ([]string, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, mac := range macs {
		if n := t.nodes[mac]; n == nil || !n.booted {
			out = append(out, mac)
		}
	}
	return out, t.changed
}

// sweep marks silent nodes down and runs the boot watchdog.
func (t *Tracker) sweep() {
	now := t.cfg.Clock.Now()
	t.mu.Lock()
	var stuck []string // watchdog candidates
	for mac, at := range t.deferred {
		if n := t.nodes[mac]; n != nil && !now.Before(at) {
			t.markDirtyLocked(n)
		}
	}
	for _, n := range t.nodes {
		if n.booted && n.beats && now.Sub(n.lastSeen) >= t.cfg.Silence {
			t.downLocked(n, now, api.CauseUnknown, "", fmt.Sprintf("no heartbeat for %s", t.cfg.Silence))
			n.retriesLeft = -1
		}
		if p := n.reboot; p != nil && p.ended && !p.booted && now.After(p.deadline) {
			// Its boot will not come: the node is not booting for it
			// any more. (One still in progress is left to its end,
			// which marks the node down if it rebooted it.)
			n.reboot = nil
		}
		if t.watchdogCandidateLocked(n) {
			stuck = append(stuck, n.mac)
		}
	}
	t.mu.Unlock()
	if len(stuck) == 0 {
		return
	}
	// Limits are read once per sweep, and only when a node is not booted.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	limits, err := t.wd.Limits(ctx, stuck)
	cancel()
	if err != nil {
		t.log.Error("boot watchdog: cannot read settings", "err", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		if l, ok := limits[n.mac]; ok && t.watchdogCandidateLocked(n) {
			t.watchdogLocked(n, now, l)
		}
	}
}

func (t *Tracker) watchdogCandidateLocked(n *nodeBoot) bool {
	return !n.booted && !n.watchdog && n.cause != api.CausePowersave && n.retriesLeft != 0 && t.wd != nil
}

func (t *Tracker) watchdogLocked(n *nodeBoot, now time.Time, l Limit) {
	if l.Timeout <= 0 {
		return
	}
	if n.retriesLeft < 0 {
		n.retriesLeft = l.Retries
		if n.retriesLeft == 0 {
			return
		}
	}
	if now.Before(n.since.Add(l.Timeout)) {
		return
	}
	n.retriesLeft--
	n.since = now // a failed hard reboot is tried again a timeout later
	n.watchdog = true
	n.watchdogTries = l.Retries
	n.watchdogTry = l.Retries - n.retriesLeft
	left := "last try"
	if n.retriesLeft > 0 {
		left = fmt.Sprintf("%d retries left", n.retriesLeft)
	}
	t.plog.add(n.name, fmt.Sprintf("%s: boot timeout reached, trying hard-reboot (%s).", n.name, left))
	t.log.Warn("boot timeout reached, trying hard-reboot", "node", n.name, "retries_left", n.retriesLeft)
	t.markDirtyLocked(n)
	mac := n.mac
	t.running.Add(1) // sweep holds mu and runs only while !closed
	go func() {
		defer t.running.Done()
		t.wd.Reboot(t.watchdogCtx, mac)
		t.mu.Lock()
		defer t.mu.Unlock()
		if n := t.nodes[mac]; n != nil {
			n.watchdog = false
		}
	}()
}

// HeartbeatInterval is the period agents are told to beat at.
func (t *Tracker) HeartbeatInterval() time.Duration { return t.cfg.HeartbeatInterval }

// Now is the tracker's clock.
func (t *Tracker) Now() time.Time { return t.cfg.Clock.Now() }

// Log is the platform log the tracker writes.
func (t *Tracker) Log() *PlatformLog { return t.plog }
