package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/campaignstats"
)

// fuzzRows decodes rows from bytes, 4 per row: node, outcome and flags,
// duration, status or metric.
func fuzzRows(data []byte) (api.Campaign, []api.CampaignBoot) {
	c := api.Campaign{ID: "f"}
	for i := range 4 {
		c.Nodes = append(c.Nodes, api.CampaignNode{Node: fmt.Sprintf("n%d", i), Model: []string{"a", "b"}[i%2]})
	}
	outcomes := []string{api.BootCompleted, api.BootFailed, api.BootDoneTimeout, api.BootStopped, api.BootBooted, api.BootRequested}
	var boots []api.CampaignBoot
	for i := 0; i+3 < len(data) && len(boots) < 500; i += 4 {
		b := api.CampaignBoot{Node: fmt.Sprintf("n%d", data[i]%6), Iteration: i/4 + 1,
			Outcome: outcomes[int(data[i+1])%len(outcomes)], Fallback: data[i+1]&0x40 != 0, Rescued: data[i+1]&0x80 != 0}
		if data[i+1]&0x20 != 0 {
			b.Method = "m\x1b" + string(rune('a'+data[i]%3))
		}
		if data[i+2] != 0 {
			d := api.Duration(time.Duration(data[i+2]) * 13 * time.Millisecond)
			b.BootDuration = &d
		}
		if data[i+3] < 128 {
			st := int(data[i+3]) % 4
			b.Status = &st
			b.Metrics = map[string]float64{fmt.Sprint("k", data[i+3]%5): float64(data[i+3])}
		}
		boots = append(boots, b)
	}
	return c, boots
}

// FuzzStatsRender: for any rows, the per-node counts add up to the whole
// set's, the results encode as JSON, and every renderer works, within
// the chart's width and without control characters.
func FuzzStatsRender(f *testing.F) {
	f.Add([]byte("\x00\x00\x10\x00\x01\x01\x20\x05\x02\x63\x00\xff\x03\x03\x40\x10"), uint8(80))
	f.Add(bytes.Repeat([]byte{1, 0, 7, 0}, 40), uint8(40))
	f.Fuzz(func(t *testing.T, data []byte, width uint8) {
		c, boots := fuzzRows(data)
		s := campaignstats.Stats(c, boots)
		var att, comp, fail, fb, n int
		for _, ns := range s.Nodes {
			att, comp, fail, fb = att+ns.Attempted, comp+ns.Completed, fail+ns.Failed, fb+ns.Fallbacks
			if ns.BootTime != nil {
				n += ns.BootTime.N
			}
			if ns.Completed+ns.Failed > ns.Attempted {
				t.Fatalf("node %s: completed %d + failed %d > attempted %d", ns.Node, ns.Completed, ns.Failed, ns.Attempted)
			}
		}
		all := s.All
		allN := 0
		if all.BootTime != nil {
			allN = all.BootTime.N
		}
		if att != all.Attempted || comp != all.Completed || fail != all.Failed || fb != all.Fallbacks || n != allN {
			t.Fatalf("nodes add up to %d/%d/%d/%d/%d, all says %d/%d/%d/%d/%d", att, comp, fail, fb, n,
				all.Attempted, all.Completed, all.Failed, all.Fallbacks, allN)
		}
		half := len(boots) / 2
		cmpd := campaignstats.Compare(c, boots[:half], c, boots[half:])
		if _, err := json.Marshal([]any{s, cmpd}); err != nil {
			t.Fatalf("json.Marshal = %v", err)
		}
		var out bytes.Buffer
		if err := Table(&out, s); err != nil {
			t.Fatal(err)
		}
		if err := Compare(&out, cmpd); err != nil {
			t.Fatal(err)
		}
		if err := CSV(&out, s); err != nil {
			t.Fatal(err)
		}
		w := max(int(width), MinWidth)
		var chart bytes.Buffer
		if err := Chart(&chart, s, w); err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(chart.String(), "\n") {
			if utf8.RuneCountInString(l) > w {
				t.Fatalf("Chart(width %d) line %q", w, l)
			}
		}
		out.Write(chart.Bytes())
		for _, r := range out.String() {
			if r == 0x1b {
				t.Fatalf("output holds ESC:\n%q", out.String())
			}
		}
	})
}
