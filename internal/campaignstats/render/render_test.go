package render

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/campaignstats"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixture is a campaign of 5 nodes × 12 rounds, fixed seed: one slow
// node (an outlier), one quarantined with failures, fallbacks.
func fixture(id string, factor float64, seed uint64) (api.Campaign, []api.CampaignBoot) {
	rng := rand.New(rand.NewPCG(seed, 1))
	c := api.Campaign{ID: id, State: api.CampaignDone, Repeat: 12}
	for i := range 5 {
		c.Nodes = append(c.Nodes, api.CampaignNode{Node: fmt.Sprintf("rpi-%d", i+1), Model: "rpi-b", State: api.NodeFinished})
	}
	c.Nodes[4].State, c.Nodes[4].Reason = api.NodeQuarantined, "2 failed boots in a row"
	var boots []api.CampaignBoot
	for r := 1; r <= 12; r++ {
		for i, n := range c.Nodes {
			b := api.CampaignBoot{Campaign: id, Node: n.Node, Model: "rpi-b", Iteration: r, Method: "soft-reboot", Outcome: api.BootCompleted}
			ms := factor * (400 + 200*rng.Float64())
			if i == 3 {
				ms *= 2.5
			}
			if i == 4 && r > 10 {
				b.Outcome, b.Method = api.BootFailed, "PoE-reboot"
				b.Fallback = true
			} else {
				d := api.Duration(time.Duration(ms * float64(time.Millisecond)))
				b.BootDuration = &d
			}
			boots = append(boots, b)
		}
	}
	return c, boots
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	c, boots := fixture("c-1", 1, 7)
	s := campaignstats.Stats(c, boots)
	if !s.Nodes[3].Outlier {
		t.Fatalf("fixture: rpi-4 is no outlier: %+v", s.Nodes[3])
	}
	var table, chart, cmpOut, csvOut bytes.Buffer
	if err := Table(&table, s); err != nil {
		t.Fatal(err)
	}
	if err := Chart(&chart, s, 0); err != nil {
		t.Fatal(err)
	}
	c2, boots2 := fixture("c-2", 1.2, 8)
	if err := Compare(&cmpOut, campaignstats.Compare(c, boots, c2, boots2)); err != nil {
		t.Fatal(err)
	}
	if err := CSV(&csvOut, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", table.Bytes())
	golden(t, "chart.golden", chart.Bytes())
	golden(t, "compare.golden", cmpOut.Bytes())
	golden(t, "stats.csv", csvOut.Bytes())
	if !strings.Contains(cmpOut.String(), "CHANGED") {
		t.Errorf("Compare of a 20 %% slower campaign does not say CHANGED:\n%s", cmpOut.String())
	}
}

func TestChartWidth(t *testing.T) {
	t.Parallel()
	c, boots := fixture("c", 1, 3)
	c.Nodes[0].Node = "a-node-with-a-very-long-name-indeed"
	for i := range boots {
		if boots[i].Node == "rpi-1" {
			boots[i].Node = c.Nodes[0].Node
		}
	}
	s := campaignstats.Stats(c, boots)
	for _, width := range []int{MinWidth, 60, 80, 132, MaxWidth} {
		var out bytes.Buffer
		if err := Chart(&out, s, width); err != nil {
			t.Fatalf("Chart(width %d) = %v", width, err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("Chart(width %d): line of %d columns: %q", width, n, l)
			}
		}
		if len(lines) != len(s.Nodes)+4 {
			t.Errorf("Chart(width %d): %d lines, want %d nodes + all + scale + 2 of legend", width, len(lines), len(s.Nodes))
		}
	}
	for _, width := range []int{MinWidth - 1, MaxWidth + 1, -5} {
		if err := Chart(&bytes.Buffer{}, s, width); err == nil || !strings.Contains(err.Error(), strconv.Itoa(width)) {
			t.Errorf("Chart(width %d) = %v, want an error naming the width", width, err)
		}
	}
	var out bytes.Buffer
	if err := Chart(&out, campaignstats.Stats(api.Campaign{}, nil), 80); err != nil || !strings.Contains(out.String(), "no boot times") {
		t.Errorf("Chart(empty) = %q, %v", out.String(), err)
	}
}

// TestNoControlCharacters: names from the server cannot send escape
// sequences to the terminal.
func TestNoControlCharacters(t *testing.T) {
	t.Parallel()
	c, boots := fixture("c\x1b]0;x\a", 1, 3)
	c.Nodes[4].Reason = "evil\x1b[2J\r\nreason"
	for i := range boots {
		boots[i].Method = "m\x1b[31m"
	}
	s := campaignstats.Stats(c, boots)
	var out bytes.Buffer
	_ = Table(&out, s)
	_ = Chart(&out, s, 80)
	_ = Compare(&out, campaignstats.Compare(c, boots, c, boots))
	for _, r := range out.String() {
		if r != '\n' && (r < ' ' || r == 0x7f) {
			t.Fatalf("output holds control character %U:\n%q", r, out.String())
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	t.Parallel()
	c, boots := fixture("c", 1, 5)
	s := campaignstats.Stats(c, boots)
	var out bytes.Buffer
	if err := CSV(&out, s); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatalf("csv.ReadAll = %v", err)
	}
	if len(recs) != len(s.Nodes)+2 || !cmp.Equal(recs[0], CSVHeader) {
		t.Fatalf("CSV: %d records, header %v", len(recs), recs[0])
	}
	col := map[string]int{}
	for i, h := range CSVHeader {
		col[h] = i
	}
	for i, n := range s.Nodes {
		r := recs[i+1]
		med, err := strconv.ParseFloat(r[col["median_s"]], 64)
		if r[col["node"]] != n.Node || err != nil || med != n.BootTime.Median || r[col["reason"]] != n.Reason {
			t.Errorf("CSV row %d = %v, want node %s, median %v", i, r, n.Node, n.BootTime.Median)
		}
	}
	if last := recs[len(recs)-1]; last[0] != "all" || last[col["attempted"]] != strconv.Itoa(s.All.Attempted) {
		t.Errorf("CSV last row = %v, want the whole set", last)
	}
}
