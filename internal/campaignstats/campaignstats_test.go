package campaignstats

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
)

// campaign builds a campaign of nodes n0…n(k−1), models by node index.
func campaign(id string, k int, model func(i int) string) api.Campaign {
	c := api.Campaign{ID: id, State: api.CampaignDone}
	for i := range k {
		c.Nodes = append(c.Nodes, api.CampaignNode{Node: fmt.Sprintf("n%02d", i), Model: model(i), State: api.NodeFinished})
	}
	return c
}

// rows gives every node of c `rounds` completed boots whose durations
// (ms) come from draw.
func rows(c api.Campaign, rounds int, draw func(node int) float64) []api.CampaignBoot {
	var out []api.CampaignBoot
	for r := 1; r <= rounds; r++ {
		for i, n := range c.Nodes {
			d := api.Duration(time.Duration(draw(i) * float64(time.Millisecond)))
			out = append(out, api.CampaignBoot{Campaign: c.ID, Node: n.Node, Iteration: r,
				Method: "soft-reboot", BootDuration: &d, Outcome: api.BootCompleted})
		}
	}
	return out
}

// TestStatsIndependent checks Stats against figures computed here by the
// plainest means: counting loops, a sorted slice read by hand, a
// two-pass standard deviation.
func TestStatsIndependent(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	c := campaign("c1", 7, func(i int) string { return []string{"rpi-b", "pc-x86"}[i%2] })
	c.Nodes[3].State, c.Nodes[3].Reason = api.NodeQuarantined, "2 failed boots in a row"
	outcomes := []string{api.BootCompleted, api.BootCompleted, api.BootCompleted, api.BootFailed,
		api.BootDoneTimeout, api.BootStopped, api.BootBooted}
	methods := []string{"soft-reboot", "PoE-reboot", ""}
	var boots []api.CampaignBoot
	for r := 1; r <= 40; r++ {
		for _, n := range c.Nodes {
			b := api.CampaignBoot{Campaign: "c1", Node: n.Node, Iteration: r,
				Outcome: outcomes[rng.IntN(len(outcomes))], Method: methods[rng.IntN(3)],
				Fallback: rng.IntN(5) == 0, Rescued: rng.IntN(7) == 0}
			if b.Outcome != api.BootFailed {
				d := api.Duration(time.Duration(300+rng.IntN(500)) * time.Millisecond)
				b.BootDuration = &d
			}
			if b.Outcome == api.BootCompleted {
				st := rng.IntN(3)
				b.Status = &st
				b.Metrics = map[string]float64{"score": rng.Float64()}
			}
			boots = append(boots, b)
		}
	}
	got := Stats(c, boots)
	if len(got.Nodes) != 7 || got.Campaign.ID != "c1" {
		t.Fatalf("Stats: %d nodes, campaign %q; want 7, c1", len(got.Nodes), got.Campaign.ID)
	}
	check := func(name string, st api.NodeStats, sel func(api.CampaignBoot) bool) {
		var att, comp, fail, fb, resc int
		methods := map[string]int{}
		statuses := map[string]int{}
		var times, scores []float64
		for _, b := range boots {
			if !sel(b) {
				continue
			}
			if b.Outcome != "stopped" {
				att++
			}
			switch b.Outcome {
			case "completed":
				comp++
			case "failed", "done-timeout":
				fail++
			}
			if b.Method != "" {
				methods[b.Method]++
			}
			if b.Fallback {
				fb++
			}
			if b.Rescued {
				resc++
			}
			if b.BootDuration != nil {
				times = append(times, float64(*b.BootDuration)/1e9)
			}
			if b.Status != nil {
				statuses[fmt.Sprint(*b.Status)]++
				scores = append(scores, b.Metrics["score"])
			}
		}
		if st.Attempted != att || st.Completed != comp || st.Failed != fail || st.Fallbacks != fb || st.Rescued != resc {
			t.Errorf("%s: attempted/completed/failed/fallbacks/rescued = %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d",
				name, st.Attempted, st.Completed, st.Failed, st.Fallbacks, st.Rescued, att, comp, fail, fb, resc)
		}
		if diff := cmp.Diff(methods, st.Methods); diff != "" {
			t.Errorf("%s: methods (-want +got):\n%s", name, diff)
		}
		if diff := cmp.Diff(statuses, st.Statuses); diff != "" {
			t.Errorf("%s: statuses (-want +got):\n%s", name, diff)
		}
		want := plainSummary(times)
		if st.BootTime == nil || !summaryNear(*st.BootTime, want) {
			t.Errorf("%s: boot time = %+v, want %+v", name, st.BootTime, want)
		}
		if ws, ok := st.Metrics["score"]; !ok || !summaryNear(ws, plainSummary(scores)) || len(st.Metrics) != 1 {
			t.Errorf("%s: metrics = %+v, want score %+v", name, st.Metrics, plainSummary(scores))
		}
	}
	check("all", got.All, func(api.CampaignBoot) bool { return true })
	for i, n := range got.Nodes {
		if n.Node != c.Nodes[i].Node || n.Model != c.Nodes[i].Model || n.State != c.Nodes[i].State || n.Reason != c.Nodes[i].Reason {
			t.Errorf("node %d = %s/%s/%s/%q, want %+v", i, n.Node, n.Model, n.State, n.Reason, c.Nodes[i])
		}
		check(n.Node, n, func(b api.CampaignBoot) bool { return b.Node == n.Node })
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("json.Marshal(Stats) = %v", err)
	}
}

// plainSummary: min, max from a sorted copy, median and p95 by the
// textbook formula of R's type 7 written out, mean by sum, SD two-pass.
func plainSummary(x []float64) api.Summary {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	n := len(s)
	q := func(p float64) float64 {
		h := float64(n-1) * p
		j := int(h)
		if j+1 >= n {
			return s[n-1]
		}
		return s[j]*(1-(h-float64(j))) + s[j+1]*(h-float64(j))
	}
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	mean := sum / float64(n)
	ss := 0.0
	for _, v := range s {
		ss += (v - mean) * (v - mean)
	}
	return api.Summary{N: n, Min: s[0], Max: s[n-1], Median: q(0.5), P95: q(0.95), Mean: mean, SD: math.Sqrt(ss / float64(n-1))}
}

func summaryNear(got, want api.Summary) bool {
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9 }
	return got.N == want.N && close(got.Min, want.Min) && close(got.Max, want.Max) && close(got.Median, want.Median) &&
		close(got.P95, want.P95) && close(got.Mean, want.Mean) && close(got.SD, want.SD)
}

func TestStatsOrderAndEmpty(t *testing.T) {
	t.Parallel()
	c := campaign("c", 2, func(int) string { return "m" })
	one := api.Duration(time.Second)
	boots := []api.CampaignBoot{
		{Node: "zz", Model: "other", Outcome: api.BootCompleted, BootDuration: &one},
		{Node: "aa", Outcome: api.BootFailed},
		{Node: "zz", Outcome: api.BootStopped},
	}
	got := Stats(c, boots)
	var names []string
	for _, n := range got.Nodes {
		names = append(names, n.Node+"/"+n.Model)
	}
	if diff := cmp.Diff([]string{"n00/m", "n01/m", "aa/", "zz/other"}, names); diff != "" {
		t.Errorf("Stats nodes (-want +got):\n%s", diff)
	}
	if n := got.Nodes[0]; n.BootTime != nil || n.Attempted != 0 || n.Methods == nil {
		t.Errorf("node without rows = %+v, want zero counts, no boot time, empty methods", n)
	}
	if zz := got.Nodes[3]; zz.Attempted != 1 || zz.Completed != 1 || zz.BootTime == nil || zz.BootTime.N != 1 {
		t.Errorf("zz = %+v, want 1 attempt (the stopped row does not count), 1 boot", zz)
	}
	for _, s := range []api.CampaignStats{got, Stats(api.Campaign{}, nil)} {
		if _, err := json.Marshal(s); err != nil {
			t.Errorf("json.Marshal(Stats) = %v", err)
		}
	}
}

func TestOutliers(t *testing.T) {
	t.Parallel()
	// Model a: six nodes near 500 ms and one at 900 ms; model b: two
	// nodes only (too few for the rule), far apart.
	medians := []float64{500, 505, 495, 510, 490, 502, 900, 300, 900}
	c := campaign("c", len(medians), func(i int) string {
		if i >= 7 {
			return "b"
		}
		return "a"
	})
	rng := rand.New(rand.NewPCG(13, 14))
	got := Stats(c, rows(c, 9, func(i int) float64 { return medians[i] + rng.Float64() - 0.5 }))
	for i, n := range got.Nodes {
		if want := i == 6; n.Outlier != want {
			t.Errorf("%s (median %v ms, model %s): outlier %v (%s), want %v", n.Node, medians[i], n.Model, n.Outlier, n.OutlierNote, want)
		}
	}
	if note := got.Nodes[6].OutlierNote; !strings.Contains(note, "above") || !strings.Contains(note, "7 nodes of model a") {
		t.Errorf("outlier note = %q, want it to say above, 7 nodes of model a", note)
	}
	// Identical nodes: a MAD of 0 is floored at 1 % of the median, so a
	// node 0.5 % away is not an outlier but one 10 % away is.
	same := []float64{500, 500, 500, 500, 502.5, 550}
	c2 := campaign("c2", len(same), func(int) string { return "a" })
	got2 := Stats(c2, rows(c2, 3, func(i int) float64 { return same[i] }))
	for i, n := range got2.Nodes {
		if want := i == 5; n.Outlier != want {
			t.Errorf("identical nodes: %s (%v ms) outlier %v, want %v", n.Node, same[i], n.Outlier, want)
		}
	}
}

// TestCompareDetectsShift is item 10 of issue 14: 30 nodes × 10 boots
// drawn uniformly from 300–800 ms, or log-normally around 500 ms; 20 %
// longer boots are told apart, a second campaign from the same
// distribution is not (fixed seeds).
func TestCompareDetectsShift(t *testing.T) {
	t.Parallel()
	for _, dist := range []struct {
		name string
		ms   func(*rand.Rand) float64
		// trueShift is the shift of the medians in seconds: 20 % of 550 ms
		// (uniform) or of 500 ms (log-normal, median 500 ms).
		trueShift float64
	}{
		{"uniform", func(r *rand.Rand) float64 { return 300 + 500*r.Float64() }, 0.110},
		{"log-normal", func(r *rand.Rand) float64 { return 500 * math.Exp(0.25*r.NormFloat64()) }, 0.100},
	} {
		t.Run(dist.name, func(t *testing.T) {
			t.Parallel()
			draw := func(seed uint64, factor float64) (api.Campaign, []api.CampaignBoot) {
				rng := rand.New(rand.NewPCG(seed, 99))
				c := campaign(fmt.Sprint("c", seed), 30, func(i int) string { return []string{"rpi", "pc"}[i%2] })
				return c, rows(c, 10, func(int) float64 { return factor * dist.ms(rng) })
			}
			a, aBoots := draw(1, 1)
			same, sameBoots := draw(2, 1)
			slow, slowBoots := draw(3, 1.2)

			noChange := Compare(a, aBoots, same, sameBoots)
			for _, m := range append(noChange.Models, noChange.All) {
				if m.Changed || m.MannWhitneyP < 0.05 {
					t.Errorf("same distribution, model %q: changed %v, p %v; want no change", m.Model, m.Changed, m.MannWhitneyP)
				}
				if ci := m.ShiftCI; ci == nil || ci[0] > 0 || ci[1] < 0 {
					t.Errorf("same distribution, model %q: shift CI %v, want one around 0", m.Model, ci)
				}
			}

			changed := Compare(a, aBoots, slow, slowBoots)
			all := changed.All
			if !all.Changed || all.MannWhitneyP >= 0.001 {
				t.Errorf("20 %% slower: changed %v, p %v; want a change with p < 0.001", all.Changed, all.MannWhitneyP)
			}
			if ci := all.ShiftCI; ci == nil || ci[0] > dist.trueShift || ci[1] < dist.trueShift || all.ShiftPercent < 10 || all.ShiftPercent > 30 {
				t.Errorf("20 %% slower: shift %v s %v (%.1f %%), want %v s inside, ≈ 20 %%", all.Shift, ci, all.ShiftPercent, dist.trueShift)
			}
			if len(changed.Models) != 2 || changed.Models[0].Model != "pc" || changed.Models[1].Model != "rpi" {
				t.Fatalf("models = %+v, want pc, rpi", changed.Models)
			}
			for _, m := range changed.Models {
				if m.A.N != 150 || m.B.N != 150 || !m.Changed {
					t.Errorf("model %s: n %d/%d, changed %v; want 150/150, changed", m.Model, m.A.N, m.B.N, m.Changed)
				}
			}
			if changed.A != a.ID || changed.B != slow.ID {
				t.Errorf("comparison of %s and %s, want %s and %s", changed.A, changed.B, a.ID, slow.ID)
			}
		})
	}
}

func TestCompareRates(t *testing.T) {
	t.Parallel()
	c := campaign("a", 20, func(int) string { return "m" })
	good := rows(c, 10, func(int) float64 { return 500 })
	bad := rows(c, 10, func(int) float64 { return 500 })
	for i := range bad {
		switch {
		case i%8 == 0: // 25 of 200 failed
			bad[i].Outcome, bad[i].BootDuration = api.BootFailed, nil
		case i%5 == 1: // 40, of which 5 (i ≡ 16 mod 40) failed instead
			bad[i].Fallback = true
		}
	}
	bad[0].Outcome = api.BootStopped // not an attempt
	got := Compare(c, good, c, bad).All
	if got.AttemptsA != 200 || got.AttemptsB != 199 || got.FailedA != 0 || got.FailedB != 24 || got.FallbacksB != 35 {
		t.Fatalf("counts = %+v", got)
	}
	if !got.Changed || got.FailureP >= 1e-6 || got.FallbackP >= 1e-6 || got.MannWhitneyP != 1 {
		t.Errorf("failures 0 → 24, fallbacks 0 → 35: p %v, %v, rank p %v, changed %v", got.FailureP, got.FallbackP, got.MannWhitneyP, got.Changed)
	}
	empty := Compare(api.Campaign{}, nil, c, bad)
	if _, err := json.Marshal(empty); err != nil || empty.All.ShiftPercent != 0 || empty.All.ShiftCI != nil {
		t.Errorf("Compare(empty, b) = %+v, %v", empty.All, err)
	}
}
