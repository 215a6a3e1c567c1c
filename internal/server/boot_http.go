package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
)

// maxBeats bounds the heartbeats of one request.
const maxBeats = 10000

// runReboot reboots nodes through the engine, keeps the boot tracker
// informed (boot ids before, down on acknowledgement, record IDs after)
// and records the results as one batch.
func (s *Server) runReboot(ctx context.Context, nodes []reboot.Node, req api.RebootRequest, progress func(reboot.Result)) ([]reboot.Result, string, error) {
	macs := make([]string, len(nodes))
	names := make([]string, len(nodes))
	for i, n := range nodes {
		macs[i], names[i] = n.MAC, n.Name
	}
	s.boots.beginReboot(macs, names, s.boots.cfg.Clock.Now())
	results := s.engine.Reboot(ctx, nodes, req.Hard, func(i int, res reboot.Result) {
		if res.OK && !res.Joined {
			s.boots.rebooted(res.Node.MAC, req.Cause, res.Method)
		}
		if progress != nil {
			progress(res)
		}
	})
	batch := sqlstore.NewID()
	records := make([]store.Reboot, 0, len(results))
	for _, res := range results {
		if !res.Joined { // else recorded by the request that did it
			records = append(records, toRecord(res, batch, req))
		}
	}
	ids, err := s.store.AddReboots(ctx, records)
	if err != nil {
		return results, batch, err
	}
	for i, rec := range records {
		s.boots.recorded(rec.NodeMAC, ids[i])
	}
	return results, batch, nil
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
	nodes, err := s.rebootTargets(ctx, req)
	if err != nil {
		s.log.Warn("boot watchdog: cannot reboot", "node", d.Name, "err", err)
		return
	}
	results, _, err := s.runReboot(ctx, nodes, req, nil)
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
	reply := api.HeartbeatReply{Interval: api.Duration(s.boots.cfg.HeartbeatInterval)}
	for i, b := range req.Beats {
		mac := macs[i]
		if !s.boots.heartbeat(mac, b.BootID) {
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

	waiting, changed := s.boots.notBooted(macs)
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
		still, changed = s.boots.notBooted(waiting)
		left := make(map[string]bool, len(still))
		for _, m := range still {
			left[m] = true
		}
		for _, m := range waiting {
			if !left[m] {
				st, _ := s.boots.status(m)
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
	s.boots.mu.Lock()
	wake := s.boots.wake
	s.boots.mu.Unlock()
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

func toAPIRecord(rec store.Reboot) api.RebootRecord {
	rr := api.RebootRecord{ID: rec.ID, Batch: rec.Batch, Requester: rec.Requester, Cause: rec.Cause,
		NodeResult: api.NodeResult{Node: rec.NodeName, MAC: rec.NodeMAC, OK: rec.OK, Method: rec.Method,
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
		rr.Attempts = append(rr.Attempts, api.Attempt{Method: a.Method, Error: a.Error, Started: a.Started, Elapsed: api.Duration(a.Finished.Sub(a.Started))})
	}
	return rr
}

// withBoot gives a listed node its boot state from the tracker.
func (s *Server) withBoot(n api.Node) api.Node {
	n.Boot, n.Booted = s.boots.status(n.MAC)
	return n
}
