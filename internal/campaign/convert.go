package campaign

import (
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// ToAPICampaign is the API's view of a campaign; last holds each node's
// latest row, by MAC (for its phase and last boot time).
func ToAPICampaign(c store.Campaign, nodes []store.CampaignNode, last map[string]store.CampaignBoot) api.Campaign {
	ac := api.Campaign{ID: c.ID, Name: c.Name, Requester: c.Requester, Set: c.Set, Mode: c.Mode, Repeat: c.Repeat, Hard: c.Hard,
		Hold: api.Duration(c.Hold), UntilDone: c.UntilDone, DoneTimeout: api.Duration(c.DoneTimeout), BootTimeout: api.Duration(c.BootTimeout),
		Quarantine: c.Quarantine, State: c.State, Created: c.CreatedAt, Round: c.Round, Nodes: make([]api.CampaignNode, len(nodes))}
	if !c.FinishedAt.IsZero() {
		t := c.FinishedAt
		ac.Finished = &t
	}
	for i, n := range nodes {
		var row *store.CampaignBoot
		if b, ok := last[n.MAC]; ok {
			row = &b
		}
		ac.Nodes[i] = ToAPINode(n, row)
	}
	return ac
}

// ToAPINode is the API's view of a campaign node; last, if not nil, is
// its latest row.
func ToAPINode(n store.CampaignNode, last *store.CampaignBoot) api.CampaignNode {
	an := api.CampaignNode{Node: n.Name, MAC: n.MAC, Model: n.Model, State: n.State, Iteration: n.Iteration, Booted: n.Booted,
		Failed: n.Failed, FailedInRow: n.FailedInRow, Reason: n.Reason}
	if last != nil {
		an.Phase = last.Outcome
		if !last.BootedAt.IsZero() {
			d := api.Duration(last.BootedAt.Sub(last.RequestedAt))
			an.LastBoot = &d
		}
	}
	return an
}

// ToAPIBoot is the API's view of a row.
func ToAPIBoot(b store.CampaignBoot, model string) api.CampaignBoot {
	ab := api.CampaignBoot{Campaign: b.Campaign, Node: b.Name, MAC: b.MAC, Model: model, Iteration: b.Iteration, RebootID: b.RebootID,
		Requested: b.RequestedAt, Method: b.Method, Fallback: b.Fallback, Rescued: b.Rescued, NodeMethod: b.NodeMethod, BootID: b.BootID,
		Metrics: b.Metrics, Outcome: b.Outcome, Error: b.Error, Code: b.Code}
	ab.Ack, ab.Down, ab.Booted, ab.Done = timePtr(b.AckAt), timePtr(b.DownAt), timePtr(b.BootedAt), timePtr(b.DoneAt)
	if !b.BootedAt.IsZero() {
		d := api.Duration(b.BootedAt.Sub(b.RequestedAt))
		ab.BootDuration = &d
	}
	if b.Status >= 0 {
		s := b.Status
		ab.Status = &s
	}
	return ab
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
