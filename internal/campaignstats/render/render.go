// Package render prints campaign statistics and comparisons for a
// terminal (walt campaign stats, walt campaign compare) and as CSV. The
// output is plain ASCII; nothing is conveyed by colour, and text that came
// from the server (node names, models, reasons) is printed with control
// characters replaced, so that it cannot drive the terminal.
package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/walt-testbed/walt/api"
)

// MinWidth and MaxWidth bound the width Chart draws to.
const (
	MinWidth     = 40
	MaxWidth     = 400
	DefaultWidth = 80
)

// maxName bounds the node name column of Chart; longer names are cut.
const maxName = 16

// clean replaces control and other non-printing characters by '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

// dur prints seconds as a duration rounded to the millisecond ("512ms",
// "1.523s").
func dur(s float64) string {
	return time.Duration(math.Round(s*1000) * float64(time.Millisecond)).String()
}

// signedDur prints a shift with its sign.
func signedDur(s float64) string {
	if s > 0 {
		return "+" + dur(s)
	}
	return dur(s)
}

// methods prints method counts sorted by method: "PoE-reboot:2 soft-reboot:8".
func methods(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", clean(k), m[k]))
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// Table writes one line per node and one for the whole set: boots
// completed of attempted, failed, boot time min / median / p95 / max,
// methods, fallbacks, state. Outliers are marked "outlier" in the state
// column; reasons and outlier notes follow the table, one line each.
func Table(w io.Writer, s api.CampaignStats) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tMODEL\tOK/TRIED\tFAILED\tMIN\tMEDIAN\tP95\tMAX\tMETHODS\tFALLBACKS\tSTATE")
	line := func(name string, n api.NodeStats) {
		times := "-\t-\t-\t-"
		if b := n.BootTime; b != nil {
			times = fmt.Sprintf("%s\t%s\t%s\t%s", dur(b.Min), dur(b.Median), dur(b.P95), dur(b.Max))
		}
		state := orDash(n.State)
		if n.Outlier {
			state += " outlier"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%s\t%d\t%s\n", name, orDash(n.Model), n.Completed, n.Attempted,
			n.Failed, times, methods(n.Methods), n.Fallbacks, state)
	}
	for _, n := range s.Nodes {
		line(clean(n.Node), n)
	}
	line("(all)", s.All)
	if err := tw.Flush(); err != nil {
		return err
	}
	if b := s.All.BootTime; b != nil {
		ci := "none (fewer than 6 boots)"
		if b.MedianCI != nil {
			ci = dur(b.MedianCI[0]) + " to " + dur(b.MedianCI[1])
		}
		fmt.Fprintf(w, "all boots: %d, mean %s, sd %s, median %s (95%% CI %s)\n", b.N, dur(b.Mean), dur(b.SD), dur(b.Median), ci)
	}
	for _, n := range s.Nodes {
		if n.Reason != "" {
			fmt.Fprintf(w, "%s: %s: %s\n", clean(n.Node), orDash(n.State), clean(n.Reason))
		}
		if n.Outlier {
			fmt.Fprintf(w, "%s: outlier: %s\n", clean(n.Node), clean(n.OutlierNote))
		}
	}
	return nil
}

// Chart writes one line per node: its boot times drawn on a scale shared
// by all nodes, "|" at the minimum and at the 95th percentile joined by
// "-", "M" at the median, "." on to the maximum; then the scale and a
// legend. width is the terminal's (DefaultWidth if 0; at least MinWidth,
// at most MaxWidth).
func Chart(w io.Writer, s api.CampaignStats, width int) error {
	if width == 0 {
		width = DefaultWidth
	}
	if width < MinWidth || width > MaxWidth {
		return fmt.Errorf("chart width %d: must be %d to %d columns", width, MinWidth, MaxWidth)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	nameW := len("(all)")
	for _, n := range s.Nodes {
		nameW = max(nameW, min(len(clean(n.Node)), maxName))
		if b := n.BootTime; b != nil {
			lo, hi = min(lo, b.Min), max(hi, b.Max)
		}
	}
	if b := s.All.BootTime; b != nil {
		lo, hi = min(lo, b.Min), max(hi, b.Max)
	}
	if lo > hi {
		_, err := fmt.Fprintln(w, "no boot times to chart")
		return err
	}
	// "name" + mark + " " + bar + " " + median label.
	label := 0
	for _, n := range append([]api.NodeStats{s.All}, s.Nodes...) {
		if n.BootTime != nil {
			label = max(label, len(dur(n.BootTime.Median)))
		}
	}
	barW := width - nameW - 3 - label
	pos := func(v float64) int {
		if hi == lo {
			return barW / 2
		}
		return min(barW-1, max(0, int(math.Round((v-lo)/(hi-lo)*float64(barW-1)))))
	}
	var sb strings.Builder
	row := func(name string, outlier bool, b *api.Summary) {
		mark := " "
		if outlier {
			mark = "!"
		}
		fmt.Fprintf(&sb, "%-*s%s ", nameW, truncate(name, nameW), mark)
		if b == nil {
			sb.WriteString("(no boot times)\n")
			return
		}
		bar := []byte(strings.Repeat(" ", barW))
		pMin, p95, pMax := pos(b.Min), pos(b.P95), pos(b.Max)
		for i := pMin; i <= pMax; i++ {
			bar[i] = '.'
		}
		for i := pMin; i <= p95; i++ {
			bar[i] = '-'
		}
		bar[pMin], bar[p95] = '|', '|'
		bar[pos(b.Median)] = 'M'
		fmt.Fprintf(&sb, "%s %s\n", bar, dur(b.Median))
	}
	for _, n := range s.Nodes {
		row(clean(n.Node), n.Outlier, n.BootTime)
	}
	row("(all)", false, s.All.BootTime)
	// The scale: the minimum under the bar's start, the maximum ending
	// under its end, the middle in between.
	scale := []byte(strings.Repeat(" ", barW))
	put := func(at int, label string) {
		at = min(max(at, 0), barW-len(label))
		copy(scale[max(at, 0):], label)
	}
	put(0, dur(lo))
	if barW >= 30 {
		put(barW/2-len(dur((lo+hi)/2))/2, dur((lo+hi)/2))
	}
	put(barW-len(dur(hi)), dur(hi))
	fmt.Fprintf(&sb, "%-*s  %s\n", nameW, "", strings.TrimRight(string(scale), " "))
	sb.WriteString("|--M--|... min, median, p95, max\n! outlier among its model\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

// truncate cuts s to n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// pfmt prints a p-value with its relation: "= 0.2544" (4 significant
// digits), "< 0.0001" below that.
func pfmt(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return "= " + strconv.FormatFloat(p, 'g', 4, 64)
}

// Compare writes the comparison of two campaigns: for every node and then
// for each model, the medians A → B, the shift with its interval and
// percentage, the rank test, the failure and fallback rates with Fisher's
// test, and the verdict ("changed" or "no evidence of change", at 5 %).
func Compare(w io.Writer, c api.CampaignComparison) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "A = %s, B = %s\n", clean(c.A), clean(c.B))
	block := func(title string, m api.ModelComparison) {
		verdict := "no evidence of change"
		if m.Changed {
			verdict = "CHANGED"
		}
		fmt.Fprintf(&sb, "\n%s: %s\n", title, verdict)
		if m.A.N == 0 || m.B.N == 0 {
			fmt.Fprintf(&sb, "  boot times: %d in A, %d in B: nothing to compare\n", m.A.N, m.B.N)
		} else {
			fmt.Fprintf(&sb, "  median boot  %s -> %s  (%d and %d boots)\n", dur(m.A.Median), dur(m.B.Median), m.A.N, m.B.N)
			ci := "no 95% CI: too few boots"
			if m.ShiftCI != nil {
				ci = fmt.Sprintf("95%% CI %s to %s", signedDur(m.ShiftCI[0]), signedDur(m.ShiftCI[1]))
			}
			fmt.Fprintf(&sb, "  shift        %s (%+.1f%% of A's median), %s\n", signedDur(m.Shift), m.ShiftPercent, ci)
			fmt.Fprintf(&sb, "  rank test    Mann-Whitney U = %g, p %s\n", m.MannWhitneyU, pfmt(m.MannWhitneyP))
		}
		fmt.Fprintf(&sb, "  failures     %d/%d -> %d/%d, Fisher p %s\n", m.FailedA, m.AttemptsA, m.FailedB, m.AttemptsB, pfmt(m.FailureP))
		fmt.Fprintf(&sb, "  fallbacks    %d/%d -> %d/%d, Fisher p %s\n", m.FallbacksA, m.AttemptsA, m.FallbacksB, m.AttemptsB, pfmt(m.FallbackP))
	}
	block("all nodes", c.All)
	for _, m := range c.Models {
		block("model "+orDash(m.Model), m)
	}
	sb.WriteString("\nchanged: a test gives p < 0.05 (shift: Hodges-Lehmann, B minus A)\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

// CSVHeader is the first line CSV writes.
var CSVHeader = []string{"scope", "node", "model", "state", "attempted", "completed", "failed",
	"fallbacks", "rescued", "boots", "min_s", "median_s", "p95_s", "max_s", "mean_s", "sd_s",
	"median_ci_low_s", "median_ci_high_s", "outlier", "methods", "reason"}

// CSV writes the per-node statistics, one row per node (scope "node") and
// one for the whole set (scope "all"), times in seconds, with CSVHeader
// first. Fields are quoted as RFC 4180 says.
func CSV(w io.Writer, s api.CampaignStats) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	rec := func(scope string, n api.NodeStats) []string {
		r := []string{scope, n.Node, n.Model, n.State, strconv.Itoa(n.Attempted), strconv.Itoa(n.Completed),
			strconv.Itoa(n.Failed), strconv.Itoa(n.Fallbacks), strconv.Itoa(n.Rescued)}
		if b := n.BootTime; b != nil {
			r = append(r, strconv.Itoa(b.N), num(b.Min), num(b.Median), num(b.P95), num(b.Max), num(b.Mean), num(b.SD))
			if b.MedianCI != nil {
				r = append(r, num(b.MedianCI[0]), num(b.MedianCI[1]))
			} else {
				r = append(r, "", "")
			}
		} else {
			r = append(r, "0", "", "", "", "", "", "", "", "")
		}
		m := ""
		if len(n.Methods) > 0 {
			m = methods(n.Methods)
		}
		return append(r, strconv.FormatBool(n.Outlier), m, n.Reason)
	}
	for _, n := range s.Nodes {
		if err := cw.Write(rec("node", n)); err != nil {
			return err
		}
	}
	if err := cw.Write(rec("all", s.All)); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
