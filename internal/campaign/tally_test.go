package campaign

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// Tally counts from a campaign's rows, given in any order, what the
// engine counts at each iteration's end, in order.
func TestTallyCountsAsIterationsEnd(t *testing.T) {
	t.Parallel()
	outcomes := []string{api.BootCompleted, api.BootDoneTimeout, api.BootFailed, api.BootStopped}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		nodes := []store.CampaignNode{{MAC: "a", State: api.NodeActive}, {MAC: "b", State: api.NodeActive}, {MAC: "c", State: api.NodeActive}}
		want := append([]store.CampaignNode(nil), nodes...)
		var boots []store.CampaignBoot
		for i := range want[:2] { // c has no row yet
			n := rng.IntN(12)
			for it := 1; it <= n; it++ {
				b := store.CampaignBoot{MAC: want[i].MAC, Iteration: it, Outcome: outcomes[rng.IntN(len(outcomes))]}
				if it == n && rng.IntN(2) == 0 {
					b.Outcome = api.BootRebooted // in progress: counts for nothing yet
				}
				boots = append(boots, b)
				want[i].Iteration = it
				count(&want[i], b)
			}
		}
		boots = append(boots, store.CampaignBoot{MAC: "stranger", Iteration: 3, Outcome: api.BootFailed})
		rng.Shuffle(len(boots), func(i, j int) { boots[i], boots[j] = boots[j], boots[i] })
		// Stale counters, as a node's row written iterations ago has.
		nodes[0].Iteration, nodes[0].Booted, nodes[1].FailedInRow = 1, 1, 1
		Tally(nodes, boots)
		if diff := cmp.Diff(want, nodes); diff != "" {
			t.Fatalf("round %d: Tally(%+v) (-want +got):\n%s", round, boots, diff)
		}
	}
}
