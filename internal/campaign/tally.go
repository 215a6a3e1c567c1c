package campaign

import (
	"fmt"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// The store keeps a campaign node's row as of its last change of state
// (active, then quarantined, finished, taken or stopped), not at each
// iteration's end: the counters of an active node are those of its rows,
// which Tally counts again where the rows are read (a campaign resumed
// after a restart, or shown from the store).

// counts reports how an iteration that ended with outcome counts: a
// boot, a failure, or neither (stopped).
func counts(outcome string) (booted, failed bool) {
	switch outcome {
	case api.BootCompleted, api.BootDoneTimeout:
		return true, false
	case api.BootFailed:
		return false, true
	}
	return false, false
}

// count adds the end of the node's next iteration, b, to its counters.
func count(n *store.CampaignNode, b store.CampaignBoot) {
	switch booted, failed := counts(b.Outcome); {
	case booted:
		n.Booted++
		n.FailedInRow = 0
	case failed:
		n.Failed++
		n.FailedInRow++
	}
}

// Tally sets the counters of a campaign's nodes (Iteration, Booted,
// Failed, FailedInRow) from the campaign's rows, in any order, as the
// engine counts them at each iteration's end: the iteration is the
// node's latest row's, an iteration in progress counts for nothing yet,
// and the failures in a row are those after the node's last good
// iteration. Rows of other nodes are ignored.
func Tally(nodes []store.CampaignNode, boots []store.CampaignBoot) {
	type tally struct{ iteration, booted, failed, lastGood, inRow int }
	by := make(map[string]*tally, len(nodes))
	for _, n := range nodes {
		by[n.MAC] = &tally{}
	}
	for _, b := range boots {
		t := by[b.MAC]
		if t == nil {
			continue
		}
		t.iteration = max(t.iteration, b.Iteration)
		switch booted, failed := counts(b.Outcome); {
		case booted:
			t.booted++
			t.lastGood = max(t.lastGood, b.Iteration)
		case failed:
			t.failed++
		}
	}
	for _, b := range boots {
		if t := by[b.MAC]; t != nil && b.Outcome == api.BootFailed && b.Iteration > t.lastGood {
			t.inRow++
		}
	}
	for i := range nodes {
		t := by[nodes[i].MAC]
		nodes[i].Iteration, nodes[i].Booted, nodes[i].Failed, nodes[i].FailedInRow = t.iteration, t.booted, t.failed, t.inRow
	}
}

// settle gives an active node the state the end of its iteration b
// (counted already) leads to: quarantined after c.Quarantine failed
// iterations in a row, with the quarantine to record; finished after the
// campaign's last iteration. A node in another state keeps it.
func settle(c store.Campaign, n *store.CampaignNode, b store.CampaignBoot) *store.Quarantine {
	if n.State != api.NodeActive {
		return nil
	}
	if b.Outcome == api.BootFailed && n.FailedInRow >= c.Quarantine {
		n.State = api.NodeQuarantined
		n.Reason = fmt.Sprintf("%d failed boots in a row (the last: %s)", n.FailedInRow, b.Error)
		return &store.Quarantine{MAC: n.MAC, Campaign: c.ID, Reason: n.Reason, Since: time.Now().UTC()}
	}
	if b.Iteration >= c.Repeat && b.Outcome != api.BootStopped {
		n.State = api.NodeFinished
	}
	return nil
}
