package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/nodeset"
)

func init() {
	register(
		&command{
			noun: "node", verb: "show", summary: "print infos about nodes (yours, or --all)",
			maxArgs: 0,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.all, "all", false, "show all nodes, not only yours")
				fs.BoolVar(&o.json, "json", false, "print the nodes as JSON (same shape as GET /api/v1/nodes)")
			},
			run: nodeShow,
		},
		&command{
			noun: "node", verb: "reboot", summary: "reboot a (set of) node(s)",
			args: "node_set", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.hard, "hard", false, "allow PoE-reboots only (power-cycle)")
				fs.BoolVar(&o.json, "json", false, "print per-node results as JSON")
				fs.BoolVar(&o.force, "force", false, "reboot nodes used by other users without asking")
				fs.BoolVar(&o.wait, "wait", false, "wait until the rebooted nodes are booted again, and print how long each took")
				timeoutFlag(fs, o)
				fs.IntVar(&o.camp.repeat, "repeat", 0, "reboot N times, as a campaign followed until it ends (see walt campaign start)")
				fs.DurationVar(&o.camp.hold, "hold", 0, "with --repeat: time left to the experiment after each boot")
				fs.BoolVar(&o.camp.untilDone, "until-done", false, "with --repeat: each boot lasts until the experiment runs 'walt-node done'")
			},
			run: nodeReboot,
		},
		&command{
			noun: "node", verb: "config", summary: "get or set nodes configuration",
			args: "node_set [setting=value ...]", minArgs: 1, maxArgs: -1,
			flags: forceConfigFlag,
			run:   func(ctx context.Context, e *env, args []string) int { return config(ctx, e, args, true) },
		},
		&command{
			noun: "node", verb: "acquire", summary: "get ownership of a (set of) node(s)",
			args: "node_set", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.force, "force", false, "take nodes used by other users without asking")
			},
			run: func(ctx context.Context, e *env, args []string) int { return ownership(ctx, e, args[0], "acquire") },
		},
		&command{
			noun: "node", verb: "release", summary: "release ownership of a (set of) node(s)",
			args: "node_set", minArgs: 1, maxArgs: 1,
			run: func(ctx context.Context, e *env, args []string) int { return ownership(ctx, e, args[0], "release") },
		},
	)
}

func nodeShow(ctx context.Context, e *env, _ []string) int {
	filters := map[string]string{}
	if !e.o.all {
		me, err := e.me(ctx)
		if err != nil {
			return e.fail(err)
		}
		filters["owner"] = me
	}
	list, err := e.c.Nodes(ctx, filters)
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, list)
	}
	if list.NumNodes == 0 {
		if e.o.all {
			fmt.Fprintln(e.Stderr, "No nodes registered: nodes appear when their walt-node agent reports to this server.")
		} else {
			fmt.Fprintln(e.Stderr, "You do not own any node. Try: walt node show --all, then walt node acquire NODE_SET.")
		}
		return ExitOK
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tmodel\tvirtual\tbooted\tip\tmac\towner\tlast reboot")
	for _, n := range list.Nodes {
		owner := n.Owner
		if owner == "" {
			owner = "(free)"
		}
		last := "-"
		if n.Boot != nil && n.Boot.LastRebootMethod != "" {
			last = n.Boot.LastRebootMethod
		}
		printf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Model, n.Virtual, bootedText(n), n.IP, n.MAC, owner, last)
	}
	tw.Flush()
	return ExitOK
}

func printJSON(e *env, v any) int {
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail(fmt.Errorf("write JSON: %w", err))
	}
	return ExitOK
}

// failOwned is fail, but for nodes owned by others, which confirmOthers
// has already explained.
func (e *env) failOwned(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNotOwned && len(ae.Culprits) > 0 {
		return ExitFailure
	}
	return e.fail(err)
}

// confirmOthers handles nodes used by other users: on a terminal it asks,
// otherwise it explains --force. It reports whether to go on.
func (e *env) confirmOthers(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotOwned || len(ae.Culprits) == 0 {
		return false
	}
	verb := " seems to be used by another user."
	if len(ae.Culprits) > 1 {
		verb = " seem to be used by other users."
	}
	printf(e.Stderr, "Warning: %s%s\n", nodeset.Describe(ae.Culprits, "node", "nodes"), verb)
	if !e.prompt {
		fmt.Fprintf(e.Stderr, "Error: not confirmed (no terminal to ask on).\nTry: add --force to act on them anyway.\n")
		return false
	}
	in := bufio.NewReader(e.Stdin)
	for {
		fmt.Fprint(e.Stdout, "Are you sure? (y/n): ")
		line, rerr := in.ReadString('\n')
		switch strings.TrimSpace(line) {
		case "y":
			fmt.Fprintln(e.Stdout, "OK.")
			return true
		case "n":
			fmt.Fprintln(e.Stdout, "Aborted.")
			return false
		}
		if rerr != nil {
			fmt.Fprintln(e.Stdout, "\nAborted.")
			return false
		}
		fmt.Fprintln(e.Stdout, "Invalid response.")
	}
}

func nodeReboot(ctx context.Context, e *env, args []string) int {
	if code := e.checkTimeout(); code != ExitOK {
		return code
	}
	if e.o.camp.repeat != 0 {
		c, code := e.startCampaign(ctx, e.campaignRequest(args[0]))
		if code != ExitOK {
			return code
		}
		printf(e.Stderr, "Campaign %s started: %d nodes, %s.\n", c.ID, len(c.Nodes), plan(c))
		return campaignFollow(ctx, e, c.ID)
	}
	req := api.RebootRequest{Set: args[0], Hard: e.o.hard, Requester: e.user, Force: e.o.force}
	p := newProgress(e)
	var batch string
	update := func(ev api.RebootEvent) {
		if ev.Type == api.EventDone {
			batch = ev.Batch
		}
		p.update(ev)
	}
	results, err := e.c.Reboot(ctx, req, update)
	if err != nil && len(results) == 0 && e.confirmOthers(err) {
		req.Force = true
		results, err = e.c.Reboot(ctx, req, update)
	}
	p.done()
	if err != nil && len(results) == 0 {
		return e.failOwned(err)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Node < results[j].Node })
	status := ExitOK
	if !e.o.json {
		printRebootSentences(e, results)
	}
	var boots []api.RebootRecord
	if e.o.wait {
		boots, status = e.waitAfterReboot(ctx, results, batch)
	}
	if e.o.json {
		printJSON(e, struct {
			Results []api.NodeResult   `json:"results"`
			Boots   []api.RebootRecord `json:"boots,omitempty"` // with --wait: the records, boot times included
		}{results, boots})
	}
	for _, r := range results {
		if !r.OK {
			status = ExitFailure
		}
	}
	if err != nil {
		e.fail(err)
		status = ExitFailure
	}
	return status
}

// printRebootSentences prints WalT's result lines: one for the rebooted
// nodes on stdout, one per group of identical failures on stderr.
func printRebootSentences(e *env, results []api.NodeResult) {
	var ok []string
	groups := map[string][]string{}
	var keys []string
	for _, r := range results {
		if r.OK {
			ok = append(ok, r.Node)
			continue
		}
		var parts []string
		for _, a := range r.Attempts {
			parts = append(parts, fmt.Sprintf("%s (%s)", a.Method, a.Error))
		}
		key := "failed " + strings.Join(parts, " and ")
		if groups[key] == nil {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], r.Node)
	}
	if len(ok) > 0 {
		printf(e.Stdout, "%s: rebooted OK.\n", describe(ok, "node", "nodes"))
	}
	// Groups in the order of their first node; names are sorted already.
	sort.Slice(keys, func(i, j int) bool { return groups[keys[i]][0] < groups[keys[j]][0] })
	for _, k := range keys {
		printf(e.Stderr, "%s: %s\n", describe(groups[k], "node", "nodes"), k)
	}
}

func ownership(ctx context.Context, e *env, set, action string) int {
	req := api.OwnershipRequest{Set: set, Action: action, Requester: e.user, Force: e.o.force}
	res, err := e.c.Ownership(ctx, req)
	if err != nil && action == "acquire" && e.confirmOthers(err) {
		req.Force = true
		res, err = e.c.Ownership(ctx, req)
	}
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotOwned && action == "acquire" {
			return ExitFailure // already explained
		}
		return e.fail(err)
	}
	for _, m := range res.Messages {
		printf(e.Stdout, "%s\n", m)
	}
	return ExitOK
}
