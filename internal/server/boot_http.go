package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/history"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
)

// maxBeats bounds the heartbeats of one request.
const maxBeats = 10000

// runReboot reboots nodes through the engine as one batch. The batch's
// records are added (running) before any node is touched, and each is
// completed when the node's outcome is known (internal/history); the boot
// tracker hears of each node's reboot when its pipeline starts and ends.
// progress, if not nil, gets each node's record as the API shows it, once
// stored.
func (s *Server) runReboot(ctx context.Context, ts targets, req api.RebootRequest, progress func(*api.NodeResult)) ([]reboot.Result, string, error) {
	return s.runRebootWith(ctx, ts, req, boot.RebootInfo{}, progress)
}

// runRebootWith is runReboot with the campaign part of the boot context
// (info's campaign fields and Wait, the campaign's boot timeout) the
// nodes' next boots get. Without a Wait in info, each node's reboot waits
// for its boot as long as ts says.
func (s *Server) runRebootWith(ctx context.Context, ts targets, req api.RebootRequest, info boot.RebootInfo, progress func(*api.NodeResult)) ([]reboot.Result, string, error) {
	nodes := ts.nodes
	b := &batchRun{s: s, ctx: ctx, batch: sqlstore.NewID(), req: req, info: info, waits: ts.waits, progress: progress,
		started: make([]bool, len(nodes))}
	now := time.Now()
	recs := make([]store.Reboot, len(nodes))
	for i, n := range nodes {
		recs[i] = store.Reboot{Batch: b.batch, Requester: req.Requester, Cause: req.Cause, NodeMAC: n.MAC, NodeName: n.Name, RequestedAt: now, FinishedAt: now}
	}
	ids, err := s.history.BeginBatch(ctx, recs)
	if err != nil {
		// The reboots go on: each pipeline adds its record as it starts.
		s.log.Warn("cannot record the batch's reboots before they start, recording each as it starts", "batch", b.batch, "nodes", len(nodes), "err", err)
		ids = make([]string, len(nodes))
	}
	b.ids = ids
	results := s.engine.RebootObserved(ctx, nodes, req.Hard, s.observe(b))
	return results, b.batch, b.err()
}

// batchRun is the engine Observer of one runReboot.
type batchRun struct {
	s     *Server
	ctx   context.Context
	batch string
	req   api.RebootRequest
	info  boot.RebootInfo // the campaign's part of the boot context
	waits []time.Duration // the nodes' boot waits, by node index
	ids   []string        // record IDs, by node index; ids[i] changes on node i's pipeline only
	// started[i]: the tracker heard of node i's reboot (Started), so
	// hears of its end. Written and read on node i's pipeline only.
	started  []bool
	progress func(*api.NodeResult)

	mu     sync.Mutex
	failed int   // +checklocks:mu
	first  error // +checklocks:mu
}

// Started tells the tracker that node n's reboot starts; its record is
// there already (or, if the batch's could not be added, is added now).
func (b *batchRun) Started(i int, n reboot.Node) {
	if b.ids[i] == "" {
		now := time.Now()
		id, err := b.s.history.Begin(b.ctx, store.Reboot{Batch: b.batch, Requester: b.req.Requester, Cause: b.req.Cause,
			NodeMAC: n.MAC, NodeName: n.Name, RequestedAt: now, FinishedAt: now})
		if err != nil { // the reboot goes on; Finished adds its record whole
			b.s.log.Warn("cannot record a reboot before it starts", "node", n.Name, "batch", b.batch, "err", err)
		}
		b.ids[i] = id
	}
	info := b.info
	info.RecordID, info.Requester, info.Cause = b.ids[i], b.req.Requester, b.req.Cause
	if info.Wait == 0 {
		info.Wait = b.waits[i]
	}
	b.s.boots.BeginReboot(n.MAC, n.Name, info, b.s.boots.Now())
	b.started[i] = true
}

// Finished completes node i's record, then tells the tracker and the
// client. A node the request joined has no record of its own: the
// request's that rebooted it has the outcome.
func (b *batchRun) Finished(i int, res reboot.Result) {
	rec := history.FromResult(res, b.batch, b.req.Requester, b.req.Cause)
	if res.Joined {
		if b.ids[i] != "" {
			if err := b.s.history.Drop(b.ctx, b.ids[i]); err != nil {
				b.fail(res.Node.Name, err)
			}
		}
	} else {
		rec.ID = b.ids[i]
		id, err := b.s.history.Finish(b.ctx, rec)
		if err != nil {
			b.fail(res.Node.Name, err)
		}
		rec.ID = id
		if b.started[i] {
			// Else the pipeline never started (ctx ended before): the
			// node's pending reboot, if any, is another's.
			// recorded: the record holds the outcome, which tells a
			// restarted server what the tracker may not have written.
			b.s.boots.RebootEnded(res.Node.MAC, b.req.Cause, res.Method, bootOutcome(res), err == nil)
		}
	}
	if b.progress != nil {
		nr := toAPIRecord(rec).NodeResult
		withCuts(&nr, res)
		b.progress(&nr)
	}
}

// bootOutcome is how the tracker hears of a reboot's outcome.
func bootOutcome(res reboot.Result) boot.Outcome {
	switch {
	case res.OK:
		return boot.Rebooted
	case res.MayHaveActed():
		return boot.Failed
	}
	return boot.NotReached
}

func (b *batchRun) fail(node string, err error) {
	b.s.log.Error("cannot record reboot", "node", node, "batch", b.batch, "err", err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failed++
	if b.first == nil {
		b.first = err
	}
}

func (b *batchRun) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first == nil {
		return nil
	}
	return fmt.Errorf("%d of the batch's reboot records not stored, the first: %w", b.failed, b.first)
}

// watchdogReboot hard-reboots one node for the boot watchdog, recorded
// with requester "walt" and cause "bootup timeout".
func (s *Server) watchdogReboot(ctx context.Context, mac string) {
	d, err := s.store.Device(ctx, mac)
	if err != nil {
		s.log.Warn("boot watchdog: node gone", "mac", mac, "err", err)
		return
	}
	req := api.RebootRequest{Set: d.Name, Hard: true, Requester: api.WatchdogRequester, Cause: api.CauseBootupTimeout, Force: true}
	ts, err := s.rebootTargets(ctx, req)
	if err != nil {
		s.log.Warn("boot watchdog: cannot reboot", "node", d.Name, "err", err)
		return
	}
	results, _, err := s.runReboot(ctx, ts, req, nil)
	if err != nil {
		s.log.Error("boot watchdog: cannot record reboot", "node", d.Name, "err", err)
	}
	for _, r := range results {
		if !r.OK {
			s.log.Warn("boot watchdog: hard reboot failed", "node", r.Node.Name, "err", r.Err())
		}
	}
}

// heartbeats takes agents' heartbeats; it only touches memory.
func (s *Server) heartbeats(ctx context.Context, req api.Heartbeats) (api.HeartbeatReply, error) {
	macs, err := checkHeartbeats(req)
	if err != nil {
		return api.HeartbeatReply{}, err
	}
	reply := api.HeartbeatReply{Interval: api.Duration(s.boots.HeartbeatInterval())}
	for i, b := range req.Beats {
		mac := macs[i]
		if !s.heartbeatFrom(ctx, mac) {
			continue // not listed for a report either: it would be refused
		}
		if !s.boots.Heartbeat(mac, b.BootID) {
			reply.Report = append(reply.Report, mac)
		}
	}
	return reply, nil
}

// wait streams WaitEvents until every node of the set is booted, the
// timeout or the client leaves.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	var req api.WaitRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, s.log, err)
		return
	}
	if err := waitTimeoutRange.Check(time.Duration(req.Timeout)); err != nil {
		writeError(w, s.log, invalidf("%v", err))
		return
	}
	inv, err := s.inventory(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	devs, err := inv.resolve(r.Context(), req.Set, req.Requester, true)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	ctx := r.Context()
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout))
		defer cancel()
	}
	st := s.stream(w)
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(st)
	send := func(ev api.WaitEvent) {
		if enc.Encode(ev) == nil {
			st.Flush()
		}
	}
	macs := make([]string, len(devs))
	names := make(map[string]string, len(devs))
	for i, d := range devs {
		macs[i], names[d.MAC] = d.MAC, d.Name
	}
	nameList := func(ms []string) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = names[m]
		}
		sort.Strings(out)
		return out
	}

	waiting, changed := s.boots.NotBooted(macs)
	if len(waiting) > 0 {
		if woken := s.wakeForWait(ctx, devs, waiting); len(woken) > 0 {
			send(api.WaitEvent{Type: api.WaitWoken, Nodes: woken})
		}
	}
	for len(waiting) > 0 {
		send(api.WaitEvent{Type: api.WaitWaiting, Nodes: nameList(waiting)})
		select {
		case <-changed:
		case <-ctx.Done():
			if r.Context().Err() == nil {
				send(api.WaitEvent{Type: api.WaitTimeout, Nodes: nameList(waiting)})
			}
			return
		}
		var still []string
		still, changed = s.boots.NotBooted(waiting)
		left := make(map[string]bool, len(still))
		for _, m := range still {
			left[m] = true
		}
		for _, m := range waiting {
			if !left[m] {
				st, _ := s.boots.Status(m)
				at := st.Since
				send(api.WaitEvent{Type: api.WaitBooted, Node: names[m], At: &at})
			}
		}
		waiting = still
	}
	send(api.WaitEvent{Type: api.WaitDone})
}

// wakeForWait calls the wake hook (by default powersave's WakeNodes) on
// the waited-for nodes that are not booted, and returns the names of
// those it powered on.
func (s *Server) wakeForWait(ctx context.Context, devs []store.Device, waiting []string) []string {
	s.wake.mu.Lock()
	wake := s.wake.f
	s.wake.mu.Unlock()
	if wake == nil {
		wake = s.wakePowersave
	}
	down := make(map[string]bool, len(waiting))
	for _, m := range waiting {
		down[m] = true
	}
	var sel []store.Device
	for _, d := range devs {
		if down[d.MAC] {
			sel = append(sel, d)
		}
	}
	woken, err := wake(ctx, sel)
	if err != nil {
		s.log.Warn("cannot wake nodes up before waiting for them", "err", err)
	}
	return woken
}

// wakePowersave is the default WakeFunc: powersave's WakeNodes.
func (s *Server) wakePowersave(ctx context.Context, nodes []store.Device) ([]string, error) {
	macs := make([]string, len(nodes))
	names := make(map[string]string, len(nodes))
	for i, d := range nodes {
		macs[i], names[d.MAC] = d.MAC, d.Name
	}
	woken, err := s.WakeNodes(ctx, macs)
	out := make([]string, len(woken))
	for i, m := range woken {
		out[i] = names[m]
	}
	return out, err
}

// rebootsOfSet returns the reboot records of a set's nodes, newest first,
// at most f.Limit (0: all).
func (s *Server) rebootsOfSet(ctx context.Context, set, requester string, f store.RebootFilter) ([]store.Reboot, error) {
	inv, err := s.inventory(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := inv.resolve(ctx, set, requester, true)
	if err != nil {
		return nil, err
	}
	var out []store.Reboot
	for _, d := range devs {
		f.NodeMAC = d.MAC
		recs, err := s.store.Reboots(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RequestedAt.After(out[j].RequestedAt) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// toAPIRecord is the API's view of a reboot record: the one conversion
// behind both the reboot stream's node results and the history.
func toAPIRecord(rec store.Reboot) api.RebootRecord {
	rr := api.RebootRecord{NodeResult: api.NodeResult{ID: rec.ID, Batch: rec.Batch, Requester: rec.Requester, Cause: rec.Cause,
		State: string(rec.State), Node: rec.NodeName, MAC: rec.NodeMAC, OK: rec.OK, Method: rec.Method,
		Requested: rec.RequestedAt, Finished: rec.FinishedAt, Attempts: []api.Attempt{}}}
	if !rec.AckAt.IsZero() {
		t := rec.AckAt
		rr.Ack = &t
	}
	if !rec.BootedAt.IsZero() {
		t := rec.BootedAt
		d := api.Duration(rec.BootedAt.Sub(rec.RequestedAt))
		rr.Booted, rr.BootDuration, rr.BootID = &t, &d, rec.BootID
	}
	for _, a := range rec.Attempts {
		rr.Attempts = append(rr.Attempts, api.Attempt{Method: a.Method, Error: a.Error, Code: a.Code, Started: a.Started, Elapsed: api.Duration(a.Finished.Sub(a.Started)),
			CutVerified: a.CutVerified, Cut: a.Cut})
	}
	return rr
}

// withBoot gives a listed node its boot state from the tracker.
func (s *Server) withBoot(n api.Node) api.Node {
	n.Boot, n.Booted = s.boots.Status(n.MAC)
	return n
}
