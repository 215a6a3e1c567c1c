package campaign

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// run is one running campaign.
type run struct {
	e      *Engine
	ctx    context.Context // ends at Stop or when the engine stops
	cancel context.CancelFunc
	ended  chan struct{}

	mu sync.Mutex
	c  store.Campaign // +checklocks:mu
	// nodes by MAC, and their MACs by name. +checklocks:mu
	nodes map[string]*store.CampaignNode
	order []string
	// last holds each node's latest row, by MAC: its current (or last)
	// iteration's, resumed from the store or as it progresses; earlier
	// rows are the store's only, so memory stays one row a node.
	// +checklocks:mu
	last map[string]store.CampaignBoot
	// stopped: a user stopped the campaign. +checklocks:mu
	stopped bool
	subs    map[*sub]bool // +checklocks:mu
	// subsDone: the followers' streams have ended; no new one starts.
	// +checklocks:mu
	subsDone bool
	// resumed holds, by MAC, the waits of the iterations a previous
	// server left incomplete, made with the run: the engine puts them in
	// place at once, so that no boot or done report is missed before
	// their iterations resume. Read-only once the run is made.
	resumed map[string]*wait
}

func newRun(e *Engine, c store.Campaign, nodes []store.CampaignNode, boots []store.CampaignBoot) *run {
	r := &run{e: e, c: c, ended: make(chan struct{}), nodes: map[string]*store.CampaignNode{},
		last: map[string]store.CampaignBoot{}, subs: map[*sub]bool{}}
	r.ctx, r.cancel = context.WithCancel(e.base)
	for i := range nodes {
		n := nodes[i]
		r.nodes[n.MAC] = &n
		r.order = append(r.order, n.MAC)
	}
	sort.Slice(r.order, func(i, j int) bool { return r.nodes[r.order[i]].Name < r.nodes[r.order[j]].Name })
	for _, b := range boots {
		if b.Iteration >= r.last[b.MAC].Iteration {
			r.last[b.MAC] = b
		}
	}
	r.resumed = map[string]*wait{}
	for mac, b := range r.last {
		if n := r.nodes[mac]; n != nil && n.State == api.NodeActive && !terminal(b.Outcome) {
			r.resumed[mac] = newWait(c, b)
		}
	}
	return r
}

// doneLocked reports whether the node's iteration it is over: a later
// one exists, or its row is complete (before a restart, say).
func (r *run) doneLocked(mac string, it int) bool {
	b, ok := r.last[mac]
	return ok && (b.Iteration > it || b.Iteration == it && terminal(b.Outcome))
}

// hasActive reports whether the node is active in the campaign. Called
// under the engine's lock.
func (r *run) hasActive(mac string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[mac]
	return n != nil && n.State == api.NodeActive
}

func (r *run) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
}

func (r *run) snapshot() (store.Campaign, []store.CampaignNode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

func (r *run) snapshotLocked() (store.Campaign, []store.CampaignNode) {
	nodes := make([]store.CampaignNode, len(r.order))
	for i, mac := range r.order {
		nodes[i] = *r.nodes[mac]
	}
	return r.c, nodes
}

// loop runs the campaign to its end, or until it is stopped or the engine
// stops.
func (r *run) loop() {
	r.settleResumed()
	if r.campaign().Mode == api.CampaignFree {
		r.free()
	} else {
		r.rounds()
	}
	r.finish()
}

func (r *run) campaign() store.Campaign {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c
}

// rounds runs the rounds from the one the campaign had reached.
func (r *run) rounds() {
	c := r.campaign()
	for round := max(c.Round, 1); round <= c.Repeat && r.ctx.Err() == nil; round++ {
		macs := r.owned(round, r.due(round))
		if len(macs) == 0 {
			continue
		}
		r.mu.Lock()
		r.c.Round = round
		c = r.c
		// With the round's change: a follower's state says round-1 and
		// gets this event, or says round and does not.
		r.publishLocked(api.CampaignEvent{Type: api.CampaignEventRound, Round: round})
		r.mu.Unlock()
		if err := r.e.writer.now(r.ctx, func(ctx context.Context) error { return r.e.cfg.Store.UpdateCampaign(ctx, c) }); err != nil {
			return
		}
		r.iterate(round, macs)
	}
}

// due returns the active nodes whose iteration it is not done yet.
func (r *run) due(it int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, mac := range r.order {
		n := r.nodes[mac]
		if n.State != api.NodeActive {
			continue
		}
		if r.doneLocked(mac, it) {
			continue // done before a restart
		}
		out = append(out, mac)
	}
	return out
}

// free runs each node on its own clock.
func (r *run) free() {
	var wg sync.WaitGroup
	r.mu.Lock()
	macs := append([]string(nil), r.order...)
	r.mu.Unlock()
	for _, mac := range macs {
		wg.Go(func() {
			c := r.campaign()
			for it := 1; it <= c.Repeat && r.ctx.Err() == nil; it++ {
				if len(r.owned(it, r.dueNode(mac, it))) == 0 {
					if !r.active(mac) {
						return
					}
					continue
				}
				r.iterate(it, []string{mac})
				r.mu.Lock()
				if it > r.c.Round {
					r.c.Round = it
				}
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func (r *run) dueNode(mac string, it int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[mac]
	if n.State != api.NodeActive {
		return nil
	}
	if r.doneLocked(mac, it) {
		return nil
	}
	return []string{mac}
}

func (r *run) active(mac string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[mac].State == api.NodeActive
}

// owned returns the nodes of macs that iteration it may reboot: those
// another user owns now (Config.Owners, asked once for all of them)
// leave the campaign, state taken, with a reason naming the owner; their
// iterations so far stay as they are. A node whose iteration it was
// resumed after a restart is not asked about: its reboot was asked
// before.
func (r *run) owned(it int, macs []string) []string {
	if r.e.cfg.Owners == nil || len(macs) == 0 {
		return macs
	}
	r.mu.Lock()
	c := r.c
	var ask []Target
	for _, mac := range macs {
		if r.last[mac].Iteration != it {
			ask = append(ask, Target{MAC: mac, Name: r.nodes[mac].Name})
		}
	}
	r.mu.Unlock()
	if len(ask) == 0 {
		return macs
	}
	taken, err := r.e.cfg.Owners.Taken(r.ctx, c, ask)
	if err != nil {
		// The reboot path reads the inventory again, and fails the nodes
		// it cannot reboot.
		if r.ctx.Err() == nil {
			r.e.log.Warn("campaign: cannot check the nodes' owners", "campaign", c.ID, "err", err)
		}
		return macs
	}
	if len(taken) == 0 {
		return macs
	}
	step := "round"
	if c.Mode == api.CampaignFree {
		step = "iteration"
	}
	var keep []string
	var left []store.CampaignNode
	r.mu.Lock()
	for _, mac := range macs {
		n := r.nodes[mac]
		owner, ok := taken[mac]
		if !ok || r.last[mac].Iteration == it {
			keep = append(keep, mac)
			continue
		}
		n.State = api.NodeTaken
		n.Reason = fmt.Sprintf("owned by %s before %s %d: no longer rebooted by this campaign", owner, step, it)
		left = append(left, *n)
	}
	r.mu.Unlock()
	for _, n := range left {
		r.e.log.Info("campaign: node left, another user owns it", "campaign", c.ID, "node", n.Name, "owner", taken[n.MAC])
		r.e.writer.add([]store.CampaignNode{n}, nil)
		an := ToAPINode(n, nil)
		r.publish(api.CampaignEvent{Type: api.CampaignEventNode, Node: &an})
	}
	return keep
}

// terminal reports whether an iteration with this outcome is over.
func terminal(outcome string) bool {
	switch outcome {
	case api.BootCompleted, api.BootFailed, api.BootDoneTimeout, api.BootStopped:
		return true
	}
	return false
}

// iterate runs iteration it of the given nodes: their rows written, then
// one reboot batch of those not rebooted before a restart, then each
// node's wait for its boot (and done report), and its hold.
func (r *run) iterate(it int, macs []string) {
	now := time.Now().UTC()
	r.mu.Lock()
	c := r.c
	var rows []store.CampaignBoot
	var targets []Target
	iters := make(map[string]*iteration, len(macs))
	for _, mac := range macs {
		n := r.nodes[mac]
		row, resumed := r.last[mac]
		if resumed = resumed && row.Iteration == it; !resumed {
			row = store.CampaignBoot{Campaign: c.ID, MAC: mac, Name: n.Name, Iteration: it, PrevBootID: r.e.cfg.Boots.BootID(mac),
				RequestedAt: now, Status: -1, Outcome: api.BootRequested}
			targets = append(targets, Target{MAC: mac, Name: n.Name})
		}
		rows = append(rows, row)
		w := r.resumed[mac] // in place since the start
		if !resumed || w == nil || w.iteration != it {
			w = newWait(c, row)
		}
		iters[mac] = &iteration{r: r, c: c, row: row, w: w, resumed: resumed}
	}
	r.mu.Unlock()
	// Each node's wait is in place before its reboot: a node that boots
	// at once is not missed.
	r.e.mu.Lock()
	for mac, x := range iters {
		r.e.waits[mac] = x.w
	}
	r.e.mu.Unlock()
	defer func() {
		r.e.mu.Lock()
		for mac, x := range iters {
			if r.e.waits[mac] == x.w {
				delete(r.e.waits, mac)
			}
		}
		r.e.mu.Unlock()
	}()
	// The rows that say the reboots are asked are stored before the
	// reboots are: a server that resumes never reboots a node twice for
	// one iteration. The nodes' rows are not written: a node's iteration
	// is its latest row's.
	if err := r.e.writer.now(r.ctx, func(ctx context.Context) error {
		return r.e.cfg.Store.SaveCampaignProgress(ctx, nil, rows)
	}); err != nil {
		return // stopped
	}
	for _, row := range rows {
		r.setRow(row)
	}
	if len(targets) > 0 {
		// The reboot outlives a stop: a node is not left half-rebooted.
		r.e.running.Add(1) // in a campaign's goroutine: the count is not 0
		go func() {
			defer r.e.running.Done()
			r.e.cfg.Rebooter.Reboot(r.e.base, Batch{Campaign: c, Iteration: it, Nodes: targets}, func(o Outcome) {
				if x := iters[o.MAC]; x != nil {
					x.w.rebooted(o)
				}
			})
		}()
	}
	var wg sync.WaitGroup
	for _, x := range iters {
		wg.Go(x.run)
	}
	wg.Wait()
}

// setRow keeps a row's latest state, and the node's iteration (its
// latest row's, as Tally counts it), and publishes the row, at once.
func (r *run) setRow(b store.CampaignBoot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[b.MAC] = b
	model := ""
	if n := r.nodes[b.MAC]; n != nil {
		model = n.Model
		n.Iteration = max(n.Iteration, b.Iteration)
	}
	ab := ToAPIBoot(b, model)
	r.publishLocked(api.CampaignEvent{Type: api.CampaignEventBoot, Boot: &ab})
}

// endIteration records an iteration's end: the row, and the node's counts, state
// and quarantine. The node's row is written only when its state changes,
// with the row that changed it: its counters are the rows' (Tally).
// stored, if not nil, is closed once the row is committed.
func (r *run) endIteration(b store.CampaignBoot, stored chan struct{}) {
	r.mu.Lock()
	n := r.nodes[b.MAC]
	c := r.c
	was := n.State
	count(n, b)
	q := settle(c, n, b)
	node := *n
	r.mu.Unlock()
	if q != nil {
		r.e.log.Warn("campaign: node quarantined", "campaign", c.ID, "node", node.Name, "reason", q.Reason)
		if err := r.e.writer.now(r.e.lastWrites(), func(ctx context.Context) error { return r.e.cfg.Store.SetQuarantines(ctx, []store.Quarantine{*q}) }); err != nil {
			r.e.log.Error("campaign: cannot record a quarantine", "node", node.Name, "err", err)
		}
	}
	var nodes []store.CampaignNode
	if node.State != was {
		nodes = []store.CampaignNode{node}
	}
	r.e.writer.addWaiting(nodes, []store.CampaignBoot{b}, stored)
	r.setRow(b)
	if f := r.e.cfg.OnIteration; f != nil {
		f(b.Outcome)
	}
	if node.State != api.NodeActive || q != nil {
		an := ToAPINode(node, nil)
		r.publish(api.CampaignEvent{Type: api.CampaignEventNode, Node: &an})
	}
}

// settleResumed gives each active node whose latest row, resumed from
// the store, is complete the state its iteration's end leads to (a
// server killed during the hold of a node's last iteration had written
// the row, not yet the end), as an uninterrupted run would have. A node
// stopped says the campaign was: its end is recorded as a Stop's.
func (r *run) settleResumed() {
	r.mu.Lock()
	c := r.c
	var qs []store.Quarantine
	var nodes []store.CampaignNode
	for _, mac := range r.order {
		n := r.nodes[mac]
		if n.State == api.NodeStopped {
			// Only a Stop's end writes it, in one transaction for all
			// the campaign's nodes, just before the campaign's own end:
			// the previous server died between the two.
			r.stopped = true
		}
		b, ok := r.last[mac]
		if !ok || !terminal(b.Outcome) || n.State != api.NodeActive {
			continue
		}
		if q := settle(c, n, b); q != nil {
			qs = append(qs, *q)
		}
		if n.State != api.NodeActive {
			nodes = append(nodes, *n)
		}
	}
	r.mu.Unlock()
	if len(qs) > 0 {
		if err := r.e.writer.now(r.e.lastWrites(), func(ctx context.Context) error { return r.e.cfg.Store.SetQuarantines(ctx, qs) }); err != nil {
			r.e.log.Error("campaign: cannot record a quarantine", "campaign", c.ID, "err", err)
		}
	}
	if len(nodes) == 0 {
		return
	}
	r.e.log.Info("campaign: resumed nodes whose last iteration had ended", "campaign", c.ID, "nodes", len(nodes))
	r.e.writer.add(nodes, nil)
	for _, n := range nodes {
		an := ToAPINode(n, nil)
		r.publish(api.CampaignEvent{Type: api.CampaignEventNode, Node: &an})
	}
}

// finish records the campaign's end: done when no node is active any
// more, stopped after Stop; a campaign whose engine stopped stays running,
// for the next server to resume.
func (r *run) finish() {
	r.mu.Lock()
	stopped := r.stopped
	active := 0
	var nodes []store.CampaignNode
	for _, mac := range r.order {
		n := r.nodes[mac]
		if n.State == api.NodeActive {
			if stopped {
				n.State = api.NodeStopped
				nodes = append(nodes, *n)
				continue
			}
			active++
		}
	}
	if !stopped && active > 0 {
		r.mu.Unlock() // the engine stopped: resumed at the next start
		r.closeSubs()
		return
	}
	r.c.State = api.CampaignDone
	if stopped {
		r.c.State = api.CampaignStopped
	}
	r.c.FinishedAt = time.Now().UTC()
	c := r.c
	r.mu.Unlock()
	r.e.writer.add(nodes, nil)
	r.e.writer.flush()
	if err := r.e.writer.now(r.e.lastWrites(), func(ctx context.Context) error { return r.e.cfg.Store.UpdateCampaign(ctx, c) }); err != nil {
		r.e.log.Error("campaign: cannot record its end", "campaign", c.ID, "err", err)
	}
	r.e.log.Info("campaign ended", "campaign", c.ID, "state", c.State)
	ac := r.apiCampaign()
	r.publish(api.CampaignEvent{Type: api.CampaignEventState, Campaign: &ac})
	r.publish(api.CampaignEvent{Type: api.CampaignEventEnd})
	r.closeSubs()
}

// apiCampaign is the campaign as the API shows it, from memory.
func (r *run) apiCampaign() api.Campaign {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apiCampaignLocked()
}

func (r *run) apiCampaignLocked() api.Campaign {
	c, nodes := r.snapshotLocked()
	return ToAPICampaign(c, nodes, r.last)
}
