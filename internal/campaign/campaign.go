// Package campaign runs reboot campaigns: a node set rebooted Repeat
// times, in rounds (every node together, the next round once all have
// booted) or freely (each node on its own clock), each iteration of each
// node one row in the store (docs/campaigns.md).
//
// The engine owns the campaigns' state. It hears of boots and done
// reports as an observer of the boot tracker, reboots through the
// Rebooter it is given, and writes each iteration's row as it progresses:
// the row that says a reboot was asked is written before the reboot is,
// so that a server that resumes the campaign after a crash never reboots
// a node twice for one iteration; later changes are written in batches.
// A node's own row is written when its state changes (quarantined,
// finished...), not at each iteration's end: its counters are counted
// from its rows (Tally) wherever the store is read.
//
// Lifecycle: New starts nothing; Run resumes the campaigns the store says
// are running, serves Start and Stop until its context ends, then stops
// every campaign's goroutines (the campaigns stay running in the store,
// for the next start) and writes what is pending.
package campaign

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Store is what the engine needs of the server's store.
type Store interface {
	AddCampaign(ctx context.Context, c store.Campaign, nodes []store.CampaignNode) (string, error)
	UpdateCampaign(ctx context.Context, c store.Campaign) error
	Campaigns(ctx context.Context, f store.CampaignFilter) ([]store.Campaign, error)
	CampaignNodes(ctx context.Context, id string) ([]store.CampaignNode, error)
	SaveCampaignProgress(ctx context.Context, nodes []store.CampaignNode, boots []store.CampaignBoot) error
	CampaignBoots(ctx context.Context, id string) ([]store.CampaignBoot, error)
	SetQuarantines(ctx context.Context, qs []store.Quarantine) error
}

// Target is a node to reboot.
type Target struct {
	MAC, Name string
}

// Batch is one call of the Rebooter: nodes of one campaign at one
// iteration.
type Batch struct {
	Campaign  store.Campaign
	Iteration int
	Nodes     []Target
}

// Outcome is one node's reboot outcome.
type Outcome struct {
	MAC      string
	RebootID string
	OK       bool
	Method   string
	// Fallback: an attempt failed before the one that rebooted the node.
	Fallback bool
	Ack      time.Time
	// Error and Code are the last attempt's, when the reboot failed.
	Error, Code string
}

// A Rebooter reboots nodes for campaigns.
type Rebooter interface {
	// Reboot reboots b's nodes as one batch, recorded under the
	// campaign's requester with the campaign as the cause, and calls
	// done with each node's outcome as soon as it is known (from any
	// goroutine). It returns once every outcome is known.
	Reboot(ctx context.Context, b Batch, done func(Outcome))
}

// Owners tells which nodes a campaign may no longer reboot.
type Owners interface {
	// Taken returns, by MAC, the owner of each of the given nodes that c
	// may no longer reboot under the ownership rules of its start (a
	// node another user owns now, c not started with Force). The engine
	// asks once before each iteration that reboots nodes (a round, or
	// one node's cycle in free mode).
	Taken(ctx context.Context, c store.Campaign, nodes []Target) (map[string]string, error)
}

// Boots is what the engine needs of the boot tracker.
type Boots interface {
	// BootID is the node's current boot id; empty if none is known.
	BootID(mac string) string
	// Status is the node's boot state, and whether it is booted.
	Status(mac string) (*api.BootStatus, bool)
	// Done is the done report of the node's current boot; nil if none.
	Done(mac string) *boot.Done
	Observe(o boot.Observer)
}

// Config configures an Engine.
type Config struct {
	Store    Store
	Rebooter Rebooter
	Boots    Boots
	// Owners, if not nil, is asked before each iteration which nodes
	// may no longer be rebooted: they leave the campaign (NodeTaken).
	Owners Owners
	Logger *slog.Logger
	// OnIteration, if not nil, hears of each iteration's end, with its
	// outcome (the server's metrics).
	OnIteration func(outcome string)
}

// Errors of Start and Stop; they wrap vocab's error kinds so that the
// server maps them as it maps the store's.
var (
	ErrBusy    = fmt.Errorf("%w: node already in a running campaign", vocab.ErrConflict)
	ErrNoNodes = fmt.Errorf("%w: no node left to run the campaign on", vocab.ErrInvalid)
	ErrClosed  = fmt.Errorf("%w: the campaign engine is stopped", vocab.ErrUnavailable)
)

// Engine runs campaigns.
type Engine struct {
	cfg Config
	log *slog.Logger

	// base ends when Run ends: the campaigns' goroutines stop.
	base    context.Context
	stopAll context.CancelFunc

	mu sync.Mutex
	// runs holds the running campaigns by ID. +checklocks:mu
	runs map[string]*run
	// waits holds, by MAC, the iteration waiting for the node's boot or
	// done report. A node is in one running campaign at a time.
	// +checklocks:mu
	waits map[string]*wait
	// closed is set when Run has stopped. +checklocks:mu
	closed bool
	// dones holds, by MAC, the wait of the iteration the node's last
	// done report ended (or a previous server stored as ended by one).
	// +checklocks:mu
	dones map[string]*wait

	running sync.WaitGroup // the campaigns' goroutines
	writer  *writer
	// resumed is closed once Run has resumed the running campaigns (or
	// the engine is closed).
	resumed    chan struct{}
	resumeOnce sync.Once
	// resumeFirst: DoneStored waits for resumed (ResumeFirst).
	resumeFirst atomic.Bool
}

// New returns an engine; Run starts it.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, runs: map[string]*run{}, waits: map[string]*wait{}, dones: map[string]*wait{}, resumed: make(chan struct{})}
	e.base, e.stopAll = context.WithCancel(context.Background())
	e.writer = newWriter(cfg.Store, cfg.Logger)
	cfg.Boots.Observe(observer{e})
	return e
}

// Run resumes the running campaigns, then runs until ctx ends; it then
// stops the campaigns' goroutines and writes what is pending. It returns
// nil.
func (e *Engine) Run(ctx context.Context) error {
	e.resume(ctx)
	e.resumeOnce.Do(func() { close(e.resumed) })
	<-ctx.Done()
	e.Close()
	return nil
}

// ResumeFirst makes DoneStored wait, before it answers, for Run to have
// resumed the campaigns a previous server left running (a done report
// may end one of their iterations). The server calls it before it serves
// the API, then runs the engine; without it (a test serving the API with
// an engine it never runs) DoneStored does not wait.
func (e *Engine) ResumeFirst() { e.resumeFirst.Store(true) }

// Resumed returns a channel closed once the campaigns a previous server
// left running are running here again (or the engine is closed).
func (e *Engine) Resumed() <-chan struct{} { return e.resumed }

// Close stops every campaign's goroutines (the campaigns stay running in
// the store) and writes what is pending. Run calls it; so must a caller
// that started campaigns without Run.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.resumeOnce.Do(func() { close(e.resumed) })
	e.stopAll()
	e.running.Wait()
	e.writer.flush()
	e.writer.wait()
}

// resume restarts every campaign the store says is running.
func (e *Engine) resume(ctx context.Context) {
	cs, err := e.cfg.Store.Campaigns(ctx, store.CampaignFilter{State: api.CampaignRunning})
	if err != nil {
		e.log.Error("campaigns: cannot read the running campaigns, none resumed", "err", err)
		return
	}
	for _, c := range cs {
		nodes, err := e.cfg.Store.CampaignNodes(ctx, c.ID)
		if err == nil {
			var boots []store.CampaignBoot
			if boots, err = e.cfg.Store.CampaignBoots(ctx, c.ID); err == nil {
				Tally(nodes, boots) // the nodes' rows hold their last state, not their counts
				e.log.Info("campaign resumed", "campaign", c.ID, "round", c.Round, "nodes", len(nodes))
				err = e.launch(c, nodes, boots)
			}
		}
		if err != nil {
			e.log.Error("campaigns: cannot resume a campaign", "campaign", c.ID, "err", err)
		}
	}
}

// Start stores a new campaign over nodes (those in quarantine already
// left out by the caller, and given in quarantined, so that the campaign
// shows them) and starts it.
func (e *Engine) Start(ctx context.Context, c store.Campaign, nodes []store.CampaignNode) (store.Campaign, error) {
	if len(nodes) == 0 {
		return store.Campaign{}, ErrNoNodes
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return store.Campaign{}, ErrClosed
	}
	for _, n := range nodes {
		if id := e.campaignOfLocked(n.MAC); id != "" {
			e.mu.Unlock()
			return store.Campaign{}, fmt.Errorf("%s: %w %s", n.Name, ErrBusy, id)
		}
	}
	e.mu.Unlock()
	c.State, c.Round = api.CampaignRunning, 0
	id, err := e.cfg.Store.AddCampaign(ctx, c, nodes)
	if err != nil {
		return store.Campaign{}, err
	}
	c.ID = id
	for i := range nodes {
		nodes[i].Campaign = id
	}
	e.log.Info("campaign started", "campaign", id, "name", c.Name, "requester", c.Requester, "nodes", len(nodes), "repeat", c.Repeat, "mode", c.Mode)
	if err := e.launch(c, nodes, nil); err != nil {
		return store.Campaign{}, err
	}
	return c, nil
}

// campaignOfLocked returns the running campaign the node is active in.
func (e *Engine) campaignOfLocked(mac string) string {
	for id, r := range e.runs {
		if r.hasActive(mac) {
			return id
		}
	}
	return ""
}

// launch starts a campaign's goroutine.
func (e *Engine) launch(c store.Campaign, nodes []store.CampaignNode, boots []store.CampaignBoot) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	r := newRun(e, c, nodes, boots)
	e.runs[c.ID] = r
	for mac, w := range r.resumed {
		e.waits[mac] = w
	}
	for mac, b := range r.last {
		if terminal(b.Outcome) && !b.DoneAt.IsZero() && b.BootID != "" && e.dones[mac] == nil {
			e.dones[mac] = storedWait(c, b)
		}
	}
	// The resumed waits hear of boots and done reports from now on; the
	// tracker has those that came before (the API serves while the engine
	// resumes). Taken here, before Resumed says the engine has resumed.
	for mac, w := range r.resumed {
		if w.resume(e.cfg.Boots, mac) {
			e.dones[mac] = w
		}
	}
	e.running.Add(1)
	go func() {
		defer e.running.Done()
		r.loop()
		e.mu.Lock()
		delete(e.runs, c.ID)
		for mac, w := range r.resumed {
			if e.waits[mac] == w { // its iteration never resumed
				delete(e.waits, mac)
			}
		}
		e.mu.Unlock()
		if e.base.Err() == nil {
			// Stopped by a user before those iterations resumed: a done
			// report one took ended nothing. (When the engine stops, it
			// stays unanswered: the node reports it to the next server.)
			for _, w := range r.resumed {
				w.close(true)
			}
		}
		// Ended once no longer listed: a Stop that waited for it, then
		// another, finds it ended, not running.
		close(r.ended)
	}()
	return nil
}

// Stop stops a running campaign: nodes in the middle of an iteration
// are left as they are (a reboot in progress completes), their rows say
// stopped. It returns the campaign once stopped.
func (e *Engine) Stop(ctx context.Context, id string) error {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		cs, err := e.cfg.Store.Campaigns(ctx, store.CampaignFilter{ID: id})
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return fmt.Errorf("campaign %s: %w", id, vocab.ErrNotFound)
		}
		return fmt.Errorf("campaign %s: %w: it is %s already", id, vocab.ErrConflict, cs[0].State)
	}
	r.stop()
	select {
	case <-r.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lastWrites is the context of the writes that record an outcome (a
// quarantine, a campaign's end): they are tried while the engine runs
// and, once it stops, for a few seconds more (Close waits for them),
// rather than lost.
func (e *Engine) lastWrites() context.Context {
	if e.base.Err() == nil {
		return e.base
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.base), 5*time.Second)
	context.AfterFunc(ctx, cancel)
	return ctx
}

// Running returns the number of campaigns running here.
func (e *Engine) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.runs)
}

// View returns a running campaign as the API shows it, from memory (each
// node's latest row included); false if it is not running here.
func (e *Engine) View(id string) (api.Campaign, bool) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		return api.Campaign{}, false
	}
	return r.apiCampaign(), true
}

// Snapshot returns a running campaign's state from memory; false if it
// is not running here.
func (e *Engine) Snapshot(id string) (store.Campaign, []store.CampaignNode, bool) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		return store.Campaign{}, nil, false
	}
	c, nodes := r.snapshot()
	return c, nodes, true
}

// Flush writes the pending progress (the API flushes before it reads
// the store).
func (e *Engine) Flush() { e.writer.flush() }

// Subscribe returns the events of a running campaign, and a function to
// call when done with them. The channel is closed when the campaign
// ends; a subscriber that falls behind gets a fresh state event instead
// of the events it missed. false if the campaign is not running here.
func (e *Engine) Subscribe(id string) (<-chan api.CampaignEvent, func(), bool) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r == nil {
		return nil, nil, false
	}
	return r.subscribe()
}

// observer is the engine as the boot tracker's observer.
type observer struct{ e *Engine }

func (o observer) NodeBooted(b boot.Booted) {
	o.e.mu.Lock()
	w := o.e.waits[b.MAC]
	o.e.mu.Unlock()
	if w != nil {
		w.booted(b)
	}
}

func (o observer) NodeDone(d boot.DoneReport) {
	o.e.mu.Lock()
	w := o.e.waits[d.MAC]
	o.e.mu.Unlock()
	if w != nil && w.done(d.Done) {
		o.e.mu.Lock()
		o.e.dones[d.MAC] = w
		o.e.mu.Unlock()
	}
}

// DoneStored returns the campaign iteration that the done report of the
// node's boot ended ("", 0 if none), once the row recording it is
// committed: what the server answers to it, so that a node told its
// report ended an iteration never has it lost by a server killed next.
// It is called after the tracker told the engine of the report. A report
// that ends no iteration returns at once (after ResumeFirst, once the
// campaigns a previous server left running are resumed: their iterations
// may take it). If ctx ends first, the error is of vocab.ErrUnavailable's
// kind: the node reports again.
func (e *Engine) DoneStored(ctx context.Context, mac, bootID string) (string, int, error) {
	if e.resumeFirst.Load() {
		select {
		case <-e.resumed:
		case <-ctx.Done():
			return "", 0, fmt.Errorf("%w: the campaigns are not resumed yet (%v): report it again", vocab.ErrUnavailable, context.Cause(ctx))
		}
	}
	e.mu.Lock()
	w := e.dones[mac]
	e.mu.Unlock()
	if w == nil {
		return "", 0, nil
	}
	return w.stored(ctx, bootID)
}
