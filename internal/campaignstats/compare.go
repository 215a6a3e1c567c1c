package campaignstats

import (
	"slices"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/stats"
)

// Alpha is the significance level of ModelComparison.Changed.
const Alpha = 1 - stats.Level

// group gathers one side's rows of one model (or of every model).
type group struct {
	times                       []float64
	attempts, failed, fallbacks int
}

func (g *group) add(b api.CampaignBoot) {
	if s, ok := Seconds(b); ok {
		g.times = append(g.times, s)
	}
	if attempted(b) {
		g.attempts++
		if failed(b) {
			g.failed++
		}
		if b.Fallback {
			g.fallbacks++
		}
	}
}

// groups splits a campaign's rows by their node's model, as Stats sees
// it: the campaign's, else the first the node's rows give.
func groups(c api.Campaign, boots []api.CampaignBoot) (all *group, byModel map[string]*group) {
	_, model := nodeOrder(c, boots)
	all, byModel = &group{}, map[string]*group{}
	for _, b := range boots {
		m := model[b.Node]
		g := byModel[m]
		if g == nil {
			g = &group{}
			byModel[m] = g
		}
		g.add(b)
		all.add(b)
	}
	return all, byModel
}

// Compare tells whether booting changed from campaign a to campaign b:
// for every node model found in either (Models, by name; nodes without a
// model form the model "") and for all rows (All), the boot time
// summaries, the Hodges–Lehmann shift of B against A with its 95 %
// interval, the Mann–Whitney test, and Fisher's exact tests of the failure
// and fallback rates among attempted boots. Changed is true when one of
// the three tests gives p < Alpha; the tests of each model are read on
// their own (no correction for the number of models).
func Compare(a api.Campaign, aBoots []api.CampaignBoot, b api.Campaign, bBoots []api.CampaignBoot) api.CampaignComparison {
	allA, modelsA := groups(a, aBoots)
	allB, modelsB := groups(b, bBoots)
	out := api.CampaignComparison{A: a.ID, B: b.ID, All: compareGroups("", allA, allB)}
	names := make([]string, 0, len(modelsA)+len(modelsB))
	for m := range modelsA {
		names = append(names, m)
	}
	for m := range modelsB {
		if modelsA[m] == nil {
			names = append(names, m)
		}
	}
	slices.Sort(names)
	out.Models = make([]api.ModelComparison, 0, len(names))
	for _, m := range names {
		ga, gb := modelsA[m], modelsB[m]
		if ga == nil {
			ga = &group{}
		}
		if gb == nil {
			gb = &group{}
		}
		out.Models = append(out.Models, compareGroups(m, ga, gb))
	}
	return out
}

func compareGroups(model string, a, b *group) api.ModelComparison {
	sa, sb := stats.NewSample(a.times), stats.NewSample(b.times)
	mc := api.ModelComparison{
		Model:      model,
		A:          sa.Summary(),
		B:          sb.Summary(),
		AttemptsA:  a.attempts,
		AttemptsB:  b.attempts,
		FailedA:    a.failed,
		FailedB:    b.failed,
		FallbacksA: a.fallbacks,
		FallbacksB: b.fallbacks,
	}
	mw := sa.RankTest(sb)
	mc.MannWhitneyU, mc.MannWhitneyP = mw.U, mw.P
	shift := sa.ShiftTo(sb)
	mc.Shift, mc.ShiftCI = shift.Estimate, shift.CI
	if mc.A.Median != 0 && sb.Len() > 0 {
		mc.ShiftPercent = 100 * mc.Shift / mc.A.Median
	}
	mc.FailureP = stats.FisherExact(a.failed, a.attempts-a.failed, b.failed, b.attempts-b.failed)
	mc.FallbackP = stats.FisherExact(a.fallbacks, a.attempts-a.fallbacks, b.fallbacks, b.attempts-b.fallbacks)
	mc.Changed = mc.MannWhitneyP < Alpha || mc.FailureP < Alpha || mc.FallbackP < Alpha
	return mc
}
