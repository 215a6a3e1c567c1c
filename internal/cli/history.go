package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walt-testbed/walt/api"
)

func init() {
	register(&command{
		noun: "node", verb: "history", summary: "show the reboots of a (set of) node(s), with boot times",
		args: "node_set", minArgs: 1, maxArgs: 1,
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.BoolVar(&o.json, "json", false, "print the records as JSON (same shape as GET /api/v1/reboots)")
			fs.IntVar(&o.limit, "limit", 0, "show at most the `N` newest reboots (default: all)")
		},
		run: nodeHistory,
	})
}

func nodeHistory(ctx context.Context, e *env, args []string) int {
	if e.o.limit < 0 || e.o.limit > api.MaxLimit {
		fmt.Fprintf(e.Stderr, "Error: --limit %d: want 0 (all) to %d\nTry: walt node history --help\n", e.o.limit, api.MaxLimit)
		return ExitUsage
	}
	list, err := e.c.History(ctx, args[0], e.user, e.o.limit)
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, list)
	}
	if len(list.Reboots) == 0 {
		fmt.Fprintln(e.Stderr, "No reboots recorded for these nodes.")
		return ExitOK
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "requested\tnode\tcause\trequester\tresult\tack\tbooted after")
	for _, r := range list.Reboots {
		ack := "-"
		if r.Ack != nil {
			ack = roundDuration(r.Ack.Sub(r.Requested)).String()
		}
		booted := "-"
		switch {
		case r.BootDuration != nil:
			booted = roundDuration(time.Duration(*r.BootDuration)).String()
		case r.OK:
			booted = "not yet"
		}
		printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Requested.Local().Format("2006-01-02 15:04:05"),
			r.Node, r.Cause, r.Requester, resultText(r.NodeResult), ack, booted)
	}
	tw.Flush()
	return ExitOK
}

// resultText is the method that rebooted the node, or the failures.
func resultText(r api.NodeResult) string {
	switch {
	case r.State == api.RebootInterrupted:
		return "interrupted (the server stopped before the outcome)"
	case r.State == api.RebootRunning:
		return "in progress"
	case r.OK:
		return r.Method
	}
	var parts []string
	for _, a := range r.Attempts {
		parts = append(parts, fmt.Sprintf("%s (%s)", a.Method, a.Error))
	}
	return "failed " + strings.Join(parts, " and ")
}

// bootedText is the booted column of `walt node show`: yes, booting
// (since when) or NO (why).
func bootedText(n api.Node) string {
	b := n.Boot
	switch {
	case n.Booted:
		return "yes"
	case b == nil:
		return "NO"
	case b.State == api.StateBooting:
		return fmt.Sprintf("booting (since %s)", b.Since.Local().Format("15:04:05"))
	case b.Cause == api.CausePowersave:
		return "no (powersave)"
	case b.Cause != "":
		return fmt.Sprintf("NO (%s)", b.Cause)
	}
	return "NO"
}

func sortedRecords(rs []api.RebootRecord) []api.RebootRecord {
	out := append([]api.RebootRecord(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
