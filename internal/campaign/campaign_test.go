package campaign_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Loopback blocks of this package's labs (127.<octet>.x.y): one per test,
// none shared with another package's.
const (
	octetRounds = 150 + iota
	octetFree
	octetStop
	octetResume
)

// rig is a server with a simulated lab whose nodes report their boots to
// it, as walt-lab's do.
type rig struct {
	env *servertest.Env
	lab *lab.Lab
}

func newRig(t *testing.T, octet, nodes int, faults map[string]lab.Fault) *rig {
	t.Helper()
	r := &rig{env: servertest.New(t, nil, nil)}
	r.lab = r.env.StartLab(t, lab.Config{Nodes: nodes, Octet: octet, Faults: faults})
	return r
}

// follow reads the campaign's events until its end, and returns them.
func follow(t *testing.T, c *client.Client, id string) []api.CampaignEvent {
	t.Helper()
	var evs []api.CampaignEvent
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := c.FollowCampaign(ctx, id, true, func(ev api.CampaignEvent) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		t.Fatalf("follow campaign %s: %v", id, err)
	}
	return evs
}

// rowsByNode groups a campaign's rows by node name.
func rowsByNode(boots []api.CampaignBoot) map[string][]api.CampaignBoot {
	out := map[string][]api.CampaignBoot{}
	for _, b := range boots {
		out[b.Node] = append(out[b.Node], b)
	}
	return out
}

// A campaign in rounds reboots every healthy node once per round, each
// boot proven by a new boot id; a node that never comes back and one that
// cannot be rebooted leave after two failed rounds, quarantined, and the
// others go on.
func TestRoundsCampaign(t *testing.T) {
	t.Parallel()
	faults := map[string]lab.Fault{"node03": lab.NeverBoots, "node07": lab.Refused}
	r := newRig(t, octetRounds, 10, faults)
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Force: true, Name: "warm",
		Repeat: 4, BootTimeout: api.Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if camp.ID != "1" || camp.State != api.CampaignRunning || len(camp.Nodes) != 10 || camp.Mode != api.CampaignRounds || camp.Quarantine != api.DefaultQuarantine {
		t.Fatalf("started campaign = %+v, want campaign 1, running, 10 nodes, rounds, quarantine after 2", camp)
	}
	evs := follow(t, c, camp.ID)
	// The stream starts with the campaign's state (its round then),
	// then says each new round.
	if evs[0].Type != api.CampaignEventState || evs[0].Campaign == nil || evs[len(evs)-1].Type != api.CampaignEventEnd {
		t.Fatalf("events: first %+v, last %+v; want the state first, the end last", evs[0], evs[len(evs)-1])
	}
	rounds := evs[0].Campaign.Round
	for _, ev := range evs {
		if ev.Type == api.CampaignEventRound {
			rounds++
			if ev.Round != rounds {
				t.Errorf("round event says round %d, want %d", ev.Round, rounds)
			}
		}
	}
	if rounds != 4 {
		t.Errorf("the events went up to round %d, want 4", rounds)
	}

	got, err := c.Campaign(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.CampaignDone || got.Round != 4 || got.Finished == nil {
		t.Errorf("campaign at its end = state %s round %d finished %v, want done, round 4, a finish time", got.State, got.Round, got.Finished)
	}
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := rowsByNode(boots)
	for _, n := range got.Nodes {
		rows := byNode[n.Node]
		if _, faulty := faults[n.Node]; faulty {
			if n.State != api.NodeQuarantined || n.Failed != 2 || n.Booted != 0 || len(rows) != 2 || n.Reason == "" {
				t.Errorf("%s: state %s, %d failed, %d booted, %d rows, reason %q; want quarantined after 2 failed rows", n.Node, n.State, n.Failed, n.Booted, len(rows), n.Reason)
			}
			for _, b := range rows {
				if b.Outcome != api.BootFailed || b.Error == "" {
					t.Errorf("%s iteration %d: outcome %s error %q, want failed with a reason", n.Node, b.Iteration, b.Outcome, b.Error)
				}
			}
			continue
		}
		if n.State != api.NodeFinished || n.Booted != 4 || n.Failed != 0 || len(rows) != 4 {
			t.Errorf("%s: state %s, %d booted, %d failed, %d rows; want finished with 4 good boots", n.Node, n.State, n.Booted, n.Failed, len(rows))
		}
		prev := ""
		for i, b := range rows {
			if b.Iteration != i+1 || b.Outcome != api.BootCompleted || b.Method != "soft-reboot" || b.BootID == "" || b.RebootID == "" ||
				b.Booted == nil || b.BootDuration == nil || !b.Booted.After(b.Requested) || b.BootID == prev {
				t.Errorf("%s row %d = %+v, want iteration %d completed by soft-reboot with a new boot id after the request", n.Node, i, b, i+1)
			}
			prev = b.BootID
		}
		// One reboot per round: the first boot, then one per round.
		if ln := r.lab.Node(n.Node); ln.Boots() != 5 {
			t.Errorf("%s booted %d times, want 5 (power on + 4 rounds)", n.Node, ln.Boots())
		}
	}
	qs, err := r.env.Store.Quarantines(t.Context())
	if err != nil || len(qs) != 2 {
		t.Errorf("quarantines = %+v, %v, want node03 and node07", qs, err)
	}
	nl, err := c.Nodes(t.Context(), map[string]string{"name": "node03"})
	if err != nil || nl.NumNodes != 1 || nl.Nodes[0].Quarantine == nil || nl.Nodes[0].Quarantine.Campaign != camp.ID {
		t.Errorf("node03 as listed = %+v, %v, want its quarantine by campaign %s", nl.Nodes, err, camp.ID)
	}

	// A later campaign leaves the quarantined nodes out, until cleared.
	next, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "node03,node07,node01", Requester: "alice", Force: true, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Nodes) != 1 || next.Nodes[0].Node != "node01" {
		t.Errorf("campaign over two quarantined nodes and node01 has nodes %+v, want node01 only", next.Nodes)
	}
	follow(t, c, next.ID)
	if _, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "node03", Requester: "alice", Force: true, Repeat: 1}); err == nil {
		t.Error("a campaign over a quarantined node alone started")
	}
	if err := c.ClearQuarantine(t.Context(), "node07", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.ClearQuarantine(t.Context(), "node07", "alice"); err == nil {
		t.Error("clearing a quarantine twice succeeded")
	}
}

// In free mode each node cycles on its own clock: every node gets its
// iterations, and a slow node does not hold the others back.
func TestFreeCampaign(t *testing.T) {
	t.Parallel()
	r := newRig(t, octetFree, 4, map[string]lab.Fault{"node04": lab.SlowBoot})
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "bob", Force: true, Repeat: 3, Mode: api.CampaignFree})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, c, camp.ID)
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := rowsByNode(boots)
	for _, name := range []string{"node01", "node02", "node03", "node04"} {
		if rows := byNode[name]; len(rows) != 3 || rows[2].Outcome != api.BootCompleted {
			t.Errorf("%s: %d rows (%+v), want 3 completed", name, len(rows), rows)
		}
	}
	// The fast nodes finished their third boot before the slow one its
	// second: nobody waited for it.
	fastEnd := byNode["node01"][2].Booted
	slowSecond := byNode["node04"][1].Booted
	if fastEnd == nil || slowSecond == nil || !fastEnd.Before(*slowSecond) {
		t.Errorf("node01's third boot at %v, node04's second at %v: want the fast node not held back", fastEnd, slowSecond)
	}
}

// A stopped campaign reboots nothing more; its nodes say stopped.
func TestStopCampaign(t *testing.T) {
	t.Parallel()
	r := newRig(t, octetStop, 3, nil)
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "carol", Force: true, Repeat: 1000,
		Hold: api.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopCampaign(t.Context(), camp.ID, api.CampaignStopRequest{Requester: "dave"}); err == nil {
		t.Error("dave stopped carol's campaign without --force")
	}
	// Wait until every node has booted in round 1 (and holds).
	testutil.EventuallyNil(t, 20*time.Second, "round 1 booted", func() error {
		got, err := c.Campaign(t.Context(), camp.ID)
		if err != nil {
			return err
		}
		for _, n := range got.Nodes {
			if n.Phase != api.BootCompleted {
				return fmt.Errorf("%s is %s", n.Node, n.Phase)
			}
		}
		return nil
	})
	got, err := c.StopCampaign(t.Context(), camp.ID, api.CampaignStopRequest{Requester: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.CampaignStopped || got.Round != 1 {
		t.Errorf("stopped campaign: state %s round %d, want stopped in round 1", got.State, got.Round)
	}
	for _, n := range got.Nodes {
		if n.State != api.NodeStopped {
			t.Errorf("%s: state %s, want stopped", n.Node, n.State)
		}
		if b := r.lab.Node(n.Node).Boots(); b != 2 {
			t.Errorf("%s booted %d times, want 2: power on and round 1", n.Node, b)
		}
	}
	if _, err := c.StopCampaign(t.Context(), camp.ID, api.CampaignStopRequest{Requester: "carol"}); err == nil {
		t.Error("a stopped campaign was stopped again")
	}
}

// Bad requests change nothing and name their culprit.
func TestCampaignRequestRefused(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, nil)
	if _, err := e.Client.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:09:01", IP: "127.0.0.1", Name: "n1", Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  api.CampaignRequest
		want string
	}{
		{api.CampaignRequest{Set: "n1", Repeat: 0}, "repeat"},
		{api.CampaignRequest{Set: "n1", Repeat: api.MaxCampaignRepeat + 1}, "repeat"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Mode: "chaos"}, "mode"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Quarantine: -1}, "quarantine"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Hold: api.Duration(-time.Second)}, "hold"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, BootTimeout: api.Duration(time.Millisecond)}, "boot_timeout"},
		{api.CampaignRequest{Set: "nope", Repeat: 1}, "nope"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Name: "bad\x00name"}, "name"},
	} {
		_, err := e.Client.StartCampaign(t.Context(), tc.req)
		if err == nil || !containsFold(err.Error(), tc.want) {
			t.Errorf("StartCampaign(%+v) = %v, want an error naming %q", tc.req, err, tc.want)
		}
	}
	if cs, err := e.Store.Campaigns(t.Context(), store.CampaignFilter{}); err != nil || len(cs) != 0 {
		t.Errorf("campaigns after refused requests = %+v, %v, want none", cs, err)
	}
	if _, err := e.Client.Campaign(t.Context(), "99"); err == nil {
		t.Error("campaign 99 shown")
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
