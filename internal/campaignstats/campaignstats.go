// Package campaignstats turns a campaign's boot rows into the statistics
// of GET /api/v1/campaigns/{id}/stats (Stats) and the comparison of two
// campaigns of GET /api/v1/campaign-comparisons (Compare). The numbers
// come from internal/stats; docs/campaign-stats.md says what each means.
//
// Both functions are pure: they read their arguments, never change them,
// and their work is O(r log r) for r rows.
package campaignstats

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/stats"
)

// MaxMetrics bounds the metric keys summarized per node (and for the
// whole set): an experiment may report up to api.MaxDoneMetrics keys per
// boot, but different ones each boot. The keys reported by the most boots
// are kept (ties: by name).
const MaxMetrics = 64

// Outlier rule (docs/campaign-stats.md): among the nodes of one model with
// a boot time, at least OutlierMinNodes of them, a node is an outlier when
// its median boot time is more than OutlierMADs scaled MADs from the
// median of the nodes' medians. The scaled MAD is 1.4826 × the median
// absolute deviation of the node medians (so that it estimates the
// standard deviation of normal data), floored at OutlierFloor of the
// model's median so that nodes within a percent of each other are never
// outliers.
const (
	OutlierMinNodes = 3
	OutlierMADs     = 3.0
	OutlierFloor    = 0.01
	madScale        = 1.4826
)

// Seconds returns a row's boot duration in seconds, and whether it has
// one.
func Seconds(b api.CampaignBoot) (float64, bool) {
	if b.BootDuration == nil {
		return 0, false
	}
	return time.Duration(*b.BootDuration).Seconds(), true
}

// attempted tells whether a row counts as an attempt: every row but those
// of iterations cut short by the campaign's stop.
func attempted(b api.CampaignBoot) bool { return b.Outcome != api.BootStopped }

// failed tells whether a row is a failed iteration.
func failed(b api.CampaignBoot) bool {
	return b.Outcome == api.BootFailed || b.Outcome == api.BootDoneTimeout
}

// acc accumulates the rows of one node, or of the whole set.
type acc struct {
	st      api.NodeStats
	times   []float64
	metrics map[string][]float64
}

func newAcc(node, model string) *acc {
	return &acc{st: api.NodeStats{Node: node, Model: model, Methods: map[string]int{}}}
}

func (a *acc) add(b api.CampaignBoot) {
	st := &a.st
	if attempted(b) {
		st.Attempted++
	}
	if b.Outcome == api.BootCompleted {
		st.Completed++
	}
	if failed(b) {
		st.Failed++
	}
	if b.Method != "" {
		st.Methods[b.Method]++
	}
	if b.Fallback {
		st.Fallbacks++
	}
	if b.Rescued {
		st.Rescued++
	}
	if s, ok := Seconds(b); ok {
		a.times = append(a.times, s)
	}
	if b.Status != nil {
		if st.Statuses == nil {
			st.Statuses = map[string]int{}
		}
		st.Statuses[strconv.Itoa(*b.Status)]++
	}
	for k, v := range b.Metrics {
		if a.metrics == nil {
			a.metrics = map[string][]float64{}
		}
		a.metrics[k] = append(a.metrics[k], v)
	}
}

// finish computes the summaries.
func (a *acc) finish() api.NodeStats {
	st := a.st
	if len(a.times) > 0 {
		s := stats.Summarize(a.times)
		st.BootTime = &s
	}
	if len(a.metrics) > 0 {
		keys := slices.SortedFunc(maps.Keys(a.metrics), func(x, y string) int {
			return cmp.Or(cmp.Compare(len(a.metrics[y]), len(a.metrics[x])), cmp.Compare(x, y))
		})
		st.Metrics = make(map[string]api.Summary, min(len(keys), MaxMetrics))
		for _, k := range keys[:min(len(keys), MaxMetrics)] {
			st.Metrics[k] = stats.Summarize(a.metrics[k])
		}
	}
	return st
}

// nodeOrder returns the campaign's nodes in its order, then the nodes
// that only rows name, by name, with their models.
func nodeOrder(c api.Campaign, boots []api.CampaignBoot) (names []string, model map[string]string) {
	model = make(map[string]string, len(c.Nodes))
	for _, n := range c.Nodes {
		if _, dup := model[n.Node]; !dup {
			names = append(names, n.Node)
		}
		model[n.Node] = n.Model
	}
	var extra []string
	for _, b := range boots {
		m, ok := model[b.Node]
		switch {
		case !ok:
			extra = append(extra, b.Node)
			model[b.Node] = b.Model
		case m == "" && b.Model != "":
			model[b.Node] = b.Model
		}
	}
	slices.Sort(extra)
	return append(names, extra...), model
}

// Stats computes a campaign's statistics from its boot rows: per node (in
// the campaign's order; nodes only rows name come last, by name) and for
// the whole set (All, Node empty). See docs/campaign-stats.md.
func Stats(c api.Campaign, boots []api.CampaignBoot) api.CampaignStats {
	names, model := nodeOrder(c, boots)
	per := make(map[string]*acc, len(names))
	for _, n := range names {
		per[n] = newAcc(n, model[n])
	}
	all := newAcc("", "")
	for _, b := range boots {
		per[b.Node].add(b)
		all.add(b)
	}
	out := api.CampaignStats{Campaign: c, All: all.finish(), Nodes: make([]api.NodeStats, 0, len(names))}
	state := make(map[string]api.CampaignNode, len(c.Nodes))
	for _, n := range c.Nodes {
		state[n.Node] = n
	}
	for _, n := range names {
		st := per[n].finish()
		st.State, st.Reason = state[n].State, state[n].Reason
		out.Nodes = append(out.Nodes, st)
	}
	markOutliers(out.Nodes)
	return out
}

// markOutliers applies the outlier rule within each model.
func markOutliers(nodes []api.NodeStats) {
	byModel := map[string][]int{}
	for i, n := range nodes {
		if n.BootTime != nil {
			byModel[n.Model] = append(byModel[n.Model], i)
		}
	}
	for modelName, idx := range byModel {
		if len(idx) < OutlierMinNodes {
			continue
		}
		medians := make([]float64, len(idx))
		for j, i := range idx {
			medians[j] = nodes[i].BootTime.Median
		}
		center := stats.Median(medians)
		dev := make([]float64, len(medians))
		for j, m := range medians {
			dev[j] = math.Abs(m - center)
		}
		scale := max(madScale*stats.Median(dev), OutlierFloor*math.Abs(center))
		if scale == 0 {
			continue
		}
		what := "nodes"
		if modelName != "" {
			what = "nodes of model " + modelName
		}
		for j, i := range idx {
			d := (medians[j] - center) / scale
			if math.Abs(d) <= OutlierMADs {
				continue
			}
			dir := "above"
			if d < 0 {
				dir = "below"
			}
			nodes[i].Outlier = true
			nodes[i].OutlierNote = fmt.Sprintf("median boot %s is %.1f scaled MADs %s the median %s of the %d %s",
				fmtSeconds(medians[j]), math.Abs(d), dir, fmtSeconds(center), len(idx), what)
		}
	}
}

// fmtSeconds prints seconds as a duration rounded to the millisecond.
func fmtSeconds(s float64) string {
	return time.Duration(math.Round(s*1000) * float64(time.Millisecond)).String()
}
