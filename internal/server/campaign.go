package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/bound"
	"github.com/walt-testbed/walt/internal/campaign"
	"github.com/walt-testbed/walt/internal/campaignstats"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Bounds of a campaign request (docs/campaigns.md).
var (
	campaignRepeatRange     = bound.Int{Name: "repeat", Min: 1, Max: api.MaxCampaignRepeat}
	campaignQuarantineRange = bound.Int{Name: "quarantine", Min: 1, Max: api.MaxQuarantine}
	campaignHoldRange       = bound.Duration{Name: "hold", Min: 0, Max: 24 * time.Hour}
	campaignDoneRange       = bound.Duration{Name: "done_timeout", Min: time.Second, Max: 24 * time.Hour}
	campaignBootRange       = bound.Duration{Name: "boot_timeout", Min: time.Second, Max: 24 * time.Hour}
)

// checkCampaignRequest checks a request whole and fills in the defaults.
func checkCampaignRequest(req *api.CampaignRequest) error {
	if req.Mode == "" {
		req.Mode = api.CampaignRounds
	}
	if req.Mode != api.CampaignRounds && req.Mode != api.CampaignFree {
		return culprits(invalidf("mode: %q is not a campaign mode (rounds or free)", req.Mode), []string{"mode"})
	}
	if req.Quarantine == 0 {
		req.Quarantine = api.DefaultQuarantine
	}
	if req.DoneTimeout == 0 {
		req.DoneTimeout = api.Duration(api.DefaultDoneTimeout)
	}
	if req.BootTimeout == 0 {
		req.BootTimeout = api.Duration(api.DefaultBootTimeout)
	}
	for _, err := range []error{
		campaignRepeatRange.Check(int64(req.Repeat)),
		campaignQuarantineRange.Check(int64(req.Quarantine)),
		campaignHoldRange.Check(time.Duration(req.Hold)),
		campaignDoneRange.Check(time.Duration(req.DoneTimeout)),
		campaignBootRange.Check(time.Duration(req.BootTimeout)),
	} {
		if err != nil {
			return invalidf("%v", err)
		}
	}
	return nil
}

// startCampaign resolves the set under the ownership rules, leaves out
// the nodes in quarantine, and starts the campaign.
func (s *Server) startCampaign(ctx context.Context, req api.CampaignRequest) (api.Campaign, error) {
	if err := checkCampaignRequest(&req); err != nil {
		return api.Campaign{}, err
	}
	inv, err := s.inventory(ctx)
	if err != nil {
		return api.Campaign{}, err
	}
	devs, err := inv.resolve(ctx, req.Set, req.Requester, true)
	if err != nil {
		return api.Campaign{}, err
	}
	if err := checkOwners(devs, req.Requester, req.Force); err != nil {
		return api.Campaign{}, err
	}
	qs, err := s.store.Quarantines(ctx)
	if err != nil {
		return api.Campaign{}, err
	}
	quarantined := make(map[string]store.Quarantine, len(qs))
	for _, q := range qs {
		quarantined[q.MAC] = q
	}
	var nodes []store.CampaignNode
	var left []string
	for _, d := range devs {
		if q, ok := quarantined[d.MAC]; ok {
			left = append(left, fmt.Sprintf("%s (quarantined by campaign %s: %s)", d.Name, q.Campaign, q.Reason))
			continue
		}
		nodes = append(nodes, store.CampaignNode{MAC: d.MAC, Name: d.Name, Model: d.Model, State: api.NodeActive})
	}
	if n := len(nodes) * req.Repeat; n > api.MaxCampaignBoots {
		return api.Campaign{}, culprits(invalidf("repeat: %d nodes × %d reboots is %d boots, at most %d in one campaign", len(nodes), req.Repeat, n, api.MaxCampaignBoots), []string{"repeat"})
	}
	if len(nodes) == 0 {
		return api.Campaign{}, invalidf("every node of the set is in quarantine: %s (walt node clear-quarantine NODE_SET lifts it)", strings.Join(left, ", "))
	}
	c := store.Campaign{Name: req.Name, Requester: req.Requester, Set: req.Set, Mode: req.Mode, Repeat: req.Repeat, Hard: req.Hard,
		Force: req.Force, UntilDone: req.UntilDone, Hold: time.Duration(req.Hold), DoneTimeout: time.Duration(req.DoneTimeout),
		BootTimeout: time.Duration(req.BootTimeout), Quarantine: req.Quarantine, CreatedAt: time.Now().UTC()}
	c, err = s.campaigns.Start(ctx, c, nodes)
	if err != nil {
		return api.Campaign{}, err
	}
	if len(left) > 0 {
		s.log.Info("campaign: nodes in quarantine left out", "campaign", c.ID, "nodes", strings.Join(left, ", "))
	}
	return s.campaignView(ctx, c.ID)
}

// campaignView returns a campaign as the API shows it: from memory while
// it runs here, else from the store.
func (s *Server) campaignView(ctx context.Context, id string) (api.Campaign, error) {
	if c, ok := s.campaigns.View(id); ok {
		return c, nil
	}
	cs, err := s.store.Campaigns(ctx, store.CampaignFilter{ID: id})
	if err != nil {
		return api.Campaign{}, err
	}
	if len(cs) == 0 {
		return api.Campaign{}, culprits(kindf(vocab.ErrNotFound, "no campaign %q (walt campaign show lists them)", id), []string{id})
	}
	nodes, err := s.store.CampaignNodes(ctx, id)
	if err != nil {
		return api.Campaign{}, err
	}
	rows, err := s.store.CampaignBoots(ctx, id)
	if err != nil {
		return api.Campaign{}, err
	}
	// The nodes' rows hold their last state; their counts are the rows'.
	campaign.Tally(nodes, rows)
	last := map[string]store.CampaignBoot{}
	for _, b := range rows { // by iteration: the latest wins
		last[b.MAC] = b
	}
	return campaign.ToAPICampaign(cs[0], nodes, last), nil
}

// campaignID checks the {id} of a campaign path.
func campaignID(r *http.Request) (string, error) {
	return checkCampaignID("id", r.PathValue("id"))
}

// checkCampaignID checks the campaign id given as field.
func checkCampaignID(field, id string) (string, error) {
	if n, err := strconv.ParseUint(id, 10, 63); err != nil || n == 0 || strconv.FormatUint(n, 10) != id {
		return "", culprits(kindf(vocab.ErrNotFound, "no campaign %.32q: campaign ids are numbers such as 12", id), []string{field})
	}
	return id, nil
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "limit", "state"); err != nil {
		writeError(w, s.log, err)
		return
	}
	limit, err := queryLimit(r.URL.Query().Get("limit"), 100)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "", api.CampaignRunning, api.CampaignDone, api.CampaignStopped:
	default:
		writeError(w, s.log, culprits(invalidf("state: %.32q is not a campaign state (running, done or stopped)", state), []string{"state"}))
		return
	}
	cs, err := s.store.Campaigns(r.Context(), store.CampaignFilter{State: state, Limit: limit})
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	list := api.CampaignList{Campaigns: make([]api.Campaign, len(cs))}
	for i, c := range cs {
		if live, _, ok := s.campaigns.Snapshot(c.ID); ok {
			c = live
		}
		list.Campaigns[i] = campaign.ToAPICampaign(c, nil, nil) // nodes: GET /campaigns/{id}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) showCampaign(w http.ResponseWriter, r *http.Request) {
	id, err := campaignID(r)
	if err == nil {
		err = checkQuery(r)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	c, err := s.campaignView(r.Context(), id)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) stopCampaign(w http.ResponseWriter, r *http.Request) {
	id, err := campaignID(r)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	var req api.CampaignStopRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, s.log, err)
		return
	}
	c, err := s.campaignView(r.Context(), id)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if c.Requester != req.Requester && !req.Force {
		writeError(w, s.log, kindf(vocab.ErrForbidden, "campaign %s belongs to %s: add --force to stop it anyway", id, c.Requester))
		return
	}
	if err := s.campaigns.Stop(r.Context(), id); err != nil {
		writeError(w, s.log, err)
		return
	}
	s.log.Info("campaign stopped", "campaign", id, "by", req.Requester)
	if c, err = s.campaignView(r.Context(), id); err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// campaignBoots returns a campaign's rows as the API shows them.
func (s *Server) campaignBoots(ctx context.Context, id string) (api.Campaign, []api.CampaignBoot, error) {
	c, err := s.campaignView(ctx, id)
	if err != nil {
		return api.Campaign{}, nil, err
	}
	s.campaigns.Flush()
	rows, err := s.store.CampaignBoots(ctx, id)
	if err != nil {
		return api.Campaign{}, nil, err
	}
	models := make(map[string]string, len(c.Nodes))
	for _, n := range c.Nodes {
		models[n.MAC] = n.Model
	}
	out := make([]api.CampaignBoot, len(rows))
	for i, b := range rows {
		out[i] = campaign.ToAPIBoot(b, models[b.MAC])
	}
	return c, out, nil
}

// campaignRows serves a campaign's rows through view: its boots, or its
// statistics.
func (s *Server) campaignRows(view func(api.Campaign, []api.CampaignBoot) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := campaignID(r)
		if err == nil {
			err = checkQuery(r)
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		c, boots, err := s.campaignBoots(r.Context(), id)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, view(c, boots))
	}
}

// campaignEvents streams a campaign's events: its state first, then, with
// ?follow=true and while it runs, each change; the stream ends with an end
// event when the campaign does.
func (s *Server) campaignEvents(w http.ResponseWriter, r *http.Request) {
	id, err := campaignID(r)
	if err == nil {
		err = checkQuery(r, "follow")
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	follow := false
	if v := r.URL.Query().Get("follow"); v != "" {
		if follow, err = strconv.ParseBool(v); err != nil {
			writeError(w, s.log, culprits(invalidf("follow: %.32q is not true or false", v), []string{"follow"}))
			return
		}
	}
	feed, cancel, err := s.campaignFeed(r.Context(), id, follow)
	if err != nil {
		if r.Context().Err() == nil { // else the client left
			writeError(w, s.log, err)
		}
		return
	}
	defer cancel()
	st := s.stream(w)
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.WriteHeader(http.StatusOK)
	// Events go out in batches (eventStream), as a reboot's results do:
	// a round of 1000 nodes is a few tens of writes, not thousands.
	es := events(st)
	defer es.close()
	for {
		select {
		case ev, ok := <-feed:
			if !ok {
				return
			}
			es.send(ev)
			if len(feed) == 0 && s.campaigns.Lagged(id, feed) {
				if c, err := s.campaignView(r.Context(), id); err == nil {
					es.send(api.CampaignEvent{Type: api.CampaignEventState, At: time.Now().UTC(), Campaign: &c})
				}
			}
		case <-r.Context().Done():
			return
		case <-s.streams.Done():
			return
		}
	}
}

// storedRunning reports whether the store says the campaign is running.
func (s *Server) storedRunning(ctx context.Context, id string) bool {
	cs, err := s.store.Campaigns(ctx, store.CampaignFilter{ID: id})
	return err == nil && len(cs) == 1 && cs[0].State == api.CampaignRunning
}

func (s *Server) clearQuarantine(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "requester"); err != nil {
		writeError(w, s.log, err)
		return
	}
	requester := r.URL.Query().Get("requester")
	if err := checkTexts(requesterField(requester)); err != nil {
		writeError(w, s.log, err)
		return
	}
	requester, err := requesterOf(r.Context(), requester)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	d, err := s.deviceNamed(r.Context(), r.PathValue("node"))
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if who, err := identity(r.Context()); err != nil || (!who.Admin && d.Owner != "" && d.Owner != requester) {
		if err == nil {
			err = kindf(errForbidden, "node %s belongs to %s: its owner or an admin lifts its quarantine", d.Name, d.Owner)
		}
		writeError(w, s.log, err)
		return
	}
	ok, err := s.store.ClearQuarantine(r.Context(), d.MAC)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if !ok {
		writeError(w, s.log, culprits(kindf(vocab.ErrNotFound, "node %s is not in quarantine", d.Name), []string{d.Name}))
		return
	}
	s.log.Info("quarantine cleared", "node", d.Name, "by", requester)
	w.WriteHeader(http.StatusNoContent)
}

// quarantines returns the quarantined nodes by MAC, for node listings.
func (s *Server) quarantines(ctx context.Context) (map[string]*api.Quarantine, error) {
	qs, err := s.store.Quarantines(ctx)
	if err != nil || len(qs) == 0 {
		return nil, err
	}
	out := make(map[string]*api.Quarantine, len(qs))
	for _, q := range qs {
		out[q.MAC] = &api.Quarantine{Campaign: q.Campaign, Reason: q.Reason, Since: q.Since}
	}
	return out, nil
}

// campaignRebooter reboots campaign nodes through the server's reboot
// path: recorded in the history, heard of by the boot tracker, with the
// campaign in the boot's context.
type campaignRebooter struct{ s *Server }

func (cr campaignRebooter) Reboot(ctx context.Context, b campaign.Batch, done func(campaign.Outcome)) {
	s := cr.s
	// A node forgotten (or renamed) since the campaign started fails its
	// iteration alone: the others are rebooted.
	inv, err := s.inventory(ctx)
	if err != nil {
		failAllNodes(s, b.Nodes, done, err)
		return
	}
	var names []string
	for _, n := range b.Nodes {
		if i, ok := inv.byName[n.Name]; ok && inv.devices[i].MAC == n.MAC {
			names = append(names, n.Name)
			continue
		}
		done(campaign.Outcome{MAC: n.MAC, Error: fmt.Sprintf("node %s is no longer in the inventory under that name", n.Name), Code: string(api.CodeNotFound)})
	}
	if len(names) == 0 {
		return
	}
	// Ownership was checked when the campaign started, and before this
	// iteration (Taken).
	req := api.RebootRequest{Set: strings.Join(names, ","), Hard: b.Campaign.Hard, Requester: b.Campaign.Requester, Force: true,
		Cause: campaignCause(b.Campaign, b.Iteration)}
	ts, err := s.rebootTargets(ctx, req)
	if err != nil {
		failAllNodes(s, b.Nodes, done, err)
		return
	}
	// The campaign waits for each boot its own --boot-timeout: a later
	// boot is not the iteration's.
	info := boot.RebootInfo{Campaign: b.Campaign.ID, CampaignName: b.Campaign.Name, Iteration: b.Iteration, Iterations: b.Campaign.Repeat,
		Wait: b.Campaign.BootTimeout}
	_, _, err = s.runRebootWith(ctx, ts, req, info, func(nr *api.NodeResult) { done(outcomeOf(nr)) })
	if err != nil {
		s.log.Error("campaign: cannot record reboots", "campaign", b.Campaign.ID, "err", err)
	}
}

// Taken returns the owners of the nodes c may no longer reboot: the
// start's rule (checkOwners, with the campaign's requester and force)
// applied to their owners now. One read, none for a forced campaign: the
// node's row for one node (a node's cycle in free mode), every device for
// more (a round). A node
// no longer in the inventory is left to Reboot, which fails it.
func (cr campaignRebooter) Taken(ctx context.Context, c store.Campaign, nodes []campaign.Target) (map[string]string, error) {
	if c.Force {
		return nil, nil // any owner is accepted: nothing to read
	}
	var devs []store.Device
	if len(nodes) == 1 {
		d, err := cr.s.store.Device(ctx, nodes[0].MAC)
		if errors.Is(err, vocab.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		devs = []store.Device{d}
	} else {
		all, err := cr.s.store.Devices(ctx)
		if err != nil {
			return nil, err
		}
		want := make(map[string]bool, len(nodes))
		for _, n := range nodes {
			want[n.MAC] = true
		}
		for _, d := range all {
			if want[d.MAC] {
				devs = append(devs, d)
			}
		}
	}
	var taken map[string]string
	for _, d := range devs {
		if checkOwners([]store.Device{d}, c.Requester, c.Force) != nil {
			if taken == nil {
				taken = map[string]string{}
			}
			taken[d.MAC] = d.Owner
		}
	}
	return taken, nil
}

// campaignCause is the cause of the reboots of c's iteration it, in its
// reboot records: "campaign 3 round 2/10" ("iteration" in free mode).
func campaignCause(c store.Campaign, it int) string {
	step := "round"
	if c.Mode == api.CampaignFree {
		step = "iteration"
	}
	return fmt.Sprintf("campaign %s %s %d/%d", c.ID, step, it, c.Repeat)
}

// parseCampaignCause reads a campaignCause back: the campaign's ID, the
// iteration and the number of iterations; false for any other cause.
func parseCampaignCause(cause string) (id string, it, n int, ok bool) {
	rest, found := strings.CutPrefix(cause, "campaign ")
	if !found || len(cause) > 100 {
		return "", 0, 0, false
	}
	id, rest, _ = strings.Cut(rest, " ")
	step, frac, _ := strings.Cut(rest, " ")
	a, b, _ := strings.Cut(frac, "/")
	it, errIt := strconv.Atoi(a)
	n, errN := strconv.Atoi(b)
	if id == "" || (step != "round" && step != "iteration") || errIt != nil || errN != nil || it < 1 || it > n || n > api.MaxCampaignRepeat ||
		strconv.Itoa(it) != a || strconv.Itoa(n) != b {
		return "", 0, 0, false
	}
	return id, it, n, true
}

// failAllNodes gives every node of a batch the outcome of err.
func failAllNodes(s *Server, nodes []campaign.Target, done func(campaign.Outcome), err error) {
	_, ae := toAPIError(err, s.log)
	for _, n := range nodes {
		done(campaign.Outcome{MAC: n.MAC, Error: ae.Message, Code: string(ae.Code)})
	}
}

// outcomeOf is a node's reboot result as a campaign sees it.
func outcomeOf(nr *api.NodeResult) campaign.Outcome {
	o := campaign.Outcome{MAC: nr.MAC, RebootID: nr.ID, OK: nr.OK, Method: nr.Method}
	if nr.Ack != nil {
		o.Ack = *nr.Ack
	}
	if n := len(nr.Attempts); n > 0 {
		last := nr.Attempts[n-1]
		if nr.OK {
			o.Fallback = n > 1
		} else {
			o.Error, o.Code = last.Error, last.Code
		}
	}
	return o
}

func (s *Server) compareCampaigns(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "a", "b"); err != nil {
		writeError(w, s.log, err)
		return
	}
	var sides [2]struct {
		c     api.Campaign
		boots []api.CampaignBoot
	}
	for i, key := range []string{"a", "b"} {
		id := r.URL.Query().Get(key)
		if n, err := strconv.ParseUint(id, 10, 63); err != nil || n == 0 || strconv.FormatUint(n, 10) != id {
			writeError(w, s.log, culprits(invalidf("%s: %.32q is not a campaign id (a number such as 12)", key, id), []string{key}))
			return
		}
		c, boots, err := s.campaignBoots(r.Context(), id)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		sides[i].c, sides[i].boots = c, boots
	}
	writeJSON(w, http.StatusOK, campaignstats.Compare(sides[0].c, sides[0].boots, sides[1].c, sides[1].boots))
}

// campaignFeed returns the events of campaign id and a function to call
// when done with them: with follow, those of its run on this server
// (waiting for a campaign the last server left running to be resumed);
// otherwise, or if it is not running here, its state then the end.
func (s *Server) campaignFeed(ctx context.Context, id string, follow bool) (<-chan api.CampaignEvent, func(), error) {
	if follow {
		events, cancel, ok := s.campaigns.Subscribe(id)
		if !ok && s.storedRunning(ctx, id) { // left running by the last server, not resumed yet
			select {
			case <-s.campaigns.Resumed():
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			events, cancel, ok = s.campaigns.Subscribe(id)
		}
		if ok {
			return events, cancel, nil
		}
	}
	c, err := s.campaignView(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan api.CampaignEvent, 2)
	now := time.Now().UTC()
	ch <- api.CampaignEvent{Type: api.CampaignEventState, At: now, Campaign: &c}
	// The end of the stream: also for a campaign the store says
	// running that this server does not run (it could not resume it).
	ch <- api.CampaignEvent{Type: api.CampaignEventEnd, At: now}
	close(ch)
	return ch, func() {}, nil
}
