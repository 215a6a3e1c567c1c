package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/campaignstats/plots"
	"github.com/walt-testbed/walt/internal/campaignstats/render"
	"github.com/walt-testbed/walt/internal/nodeset"
)

// campaignOpts are the switches of the campaign commands.
type campaignOpts struct {
	repeat      int
	mode        string
	hold        time.Duration
	untilDone   bool
	name        string
	bootTimeout time.Duration
	doneTimeout time.Duration
	quarantine  int
	csv         bool
	svg, png    string
}

func campaignStartFlags(fs *flag.FlagSet, o *opts) {
	fs.IntVar(&o.camp.repeat, "repeat", 10, "reboot each node this many times")
	fs.BoolVar(&o.hard, "hard", false, "power-cycle the nodes (skip the soft reboot)")
	fs.StringVar(&o.camp.mode, "mode", api.CampaignRounds, "rounds (all nodes together, round after round) or free (each node on its own clock)")
	fs.DurationVar(&o.camp.hold, "hold", 0, "time left to the experiment after each boot, before the next reboot (e.g. 30s)")
	fs.BoolVar(&o.camp.untilDone, "until-done", false, "end each iteration when the experiment runs 'walt-node done' (or at --done-timeout)")
	fs.DurationVar(&o.camp.doneTimeout, "done-timeout", api.DefaultDoneTimeout, "with --until-done: the time the experiment has after the boot")
	fs.DurationVar(&o.camp.bootTimeout, "boot-timeout", api.DefaultBootTimeout, "an iteration fails when the node has not booted this long after its reboot")
	fs.IntVar(&o.camp.quarantine, "quarantine", api.DefaultQuarantine, "failed boots in a row that put a node in quarantine")
	fs.StringVar(&o.camp.name, "name", "", "a name for the campaign")
	fs.BoolVar(&o.force, "force", false, "use nodes of other users without asking")
}

func init() {
	register(
		&command{
			noun: "campaign", verb: "start", summary: "reboot a (set of) node(s) many times, with statistics (prints the campaign id)",
			args: "node_set", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				campaignStartFlags(fs, o)
				fs.BoolVar(&o.follow, "follow", false, "follow the campaign until it ends")
			},
			run: campaignStart,
		},
		&command{
			noun: "campaign", verb: "show", summary: "list the campaigns, or show one",
			args: "[campaign_id]", maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.json, "json", false, "print as JSON")
				fs.IntVar(&o.limit, "limit", 20, "with no id: list at most this many campaigns, newest first")
			},
			run: campaignShow,
		},
		&command{
			noun: "campaign", verb: "follow", summary: "follow a campaign live until it ends",
			args: "campaign_id", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.json, "json", false, "print the events as JSON lines")
			},
			run: func(ctx context.Context, e *env, args []string) int { return campaignFollow(ctx, e, args[0]) },
		},
		&command{
			noun: "campaign", verb: "stop", summary: "stop a running campaign",
			args: "campaign_id", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.force, "force", false, "stop another user's campaign")
			},
			run: campaignStop,
		},
		&command{
			noun: "campaign", verb: "stats", summary: "statistics of a campaign: boot times, methods, failures; plots",
			args: "campaign_id", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.json, "json", false, "print the statistics as JSON")
				fs.BoolVar(&o.camp.csv, "csv", false, "print the per-node statistics as CSV")
				fs.StringVar(&o.camp.svg, "svg", "", "write the plots (boot time per node and per round) to this SVG `file`")
				fs.StringVar(&o.camp.png, "png", "", "write the plots to this PNG `file`")
			},
			run: campaignStats,
		},
		&command{
			noun: "campaign", verb: "compare", summary: "did booting change between two campaigns?",
			args: "campaign_a campaign_b", minArgs: 2, maxArgs: 2,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.json, "json", false, "print the comparison as JSON")
			},
			run: campaignCompare,
		},
		&command{
			noun: "node", verb: "clear-quarantine", summary: "let quarantined nodes take part in campaigns again",
			args: "node_set", minArgs: 1, maxArgs: 1,
			run: nodeClearQuarantine,
		},
	)
}

// campaignRequest is the request of campaign start (and node reboot
// --repeat).
func (e *env) campaignRequest(set string) api.CampaignRequest {
	c := e.o.camp
	return api.CampaignRequest{Set: set, Requester: e.user, Force: e.o.force, Name: c.name, Repeat: c.repeat, Hard: e.o.hard,
		Mode: c.mode, Hold: api.Duration(c.hold), UntilDone: c.untilDone, DoneTimeout: api.Duration(c.doneTimeout),
		BootTimeout: api.Duration(c.bootTimeout), Quarantine: c.quarantine}
}

// startCampaign starts a campaign, asking about nodes of others as
// reboot does.
func (e *env) startCampaign(ctx context.Context, req api.CampaignRequest) (api.Campaign, int) {
	c, err := e.c.StartCampaign(ctx, req)
	if err != nil && e.confirmOthers(err) {
		req.Force = true
		c, err = e.c.StartCampaign(ctx, req)
	}
	if err != nil {
		return c, e.failOwned(err)
	}
	return c, ExitOK
}

func campaignStart(ctx context.Context, e *env, args []string) int {
	c, code := e.startCampaign(ctx, e.campaignRequest(args[0]))
	if code != ExitOK {
		return code
	}
	printf(e.Stdout, "%s\n", c.ID)
	printf(e.Stderr, "Campaign %s started: %d nodes, %s.\n", c.ID, len(c.Nodes), plan(c))
	if !e.o.follow {
		printf(e.Stderr, "Follow it with: walt campaign follow %s\n", c.ID)
		return ExitOK
	}
	return campaignFollow(ctx, e, c.ID)
}

// plan says what a campaign does, in words.
func plan(c api.Campaign) string {
	s := fmt.Sprintf("%d rounds", c.Repeat)
	if c.Mode == api.CampaignFree {
		s = fmt.Sprintf("%d reboots per node, each node on its own clock", c.Repeat)
	}
	if c.Hard {
		s += ", power-cycled"
	}
	if c.UntilDone {
		s += ", each boot until the experiment is done"
	}
	if c.Hold > 0 {
		s += fmt.Sprintf(", %s hold", time.Duration(c.Hold))
	}
	return s
}

func campaignShow(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		list, err := e.c.Campaigns(ctx, "", e.o.limit)
		if err != nil {
			return e.fail(err)
		}
		if e.o.json {
			return printJSON(e, list)
		}
		if len(list.Campaigns) == 0 {
			fmt.Fprintln(e.Stderr, "No campaign yet. Try: walt campaign start --repeat 10 NODE_SET")
			return ExitOK
		}
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "id\tname\trequester\tstate\tround\tmode\tcreated")
		for _, c := range list.Campaigns {
			printf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", c.ID, dash(c.Name), c.Requester, c.State, c.Round, c.Repeat, c.Mode, c.Created.Local().Format(time.DateTime))
		}
		tw.Flush()
		return ExitOK
	}
	c, err := e.c.Campaign(ctx, args[0])
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, c)
	}
	printCampaign(e.Stdout, c)
	return ExitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printCampaign prints a campaign and its nodes.
func printCampaign(w io.Writer, c api.Campaign) {
	name := ""
	if c.Name != "" {
		name = " (" + c.Name + ")"
	}
	printf(w, "Campaign %s%s of %s on %s: %s, round %d of %d; %s.\n", c.ID, name, c.Requester, c.Set, c.State, c.Round, c.Repeat, plan(c))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tstate\titeration\tbooted\tfailed\tlast boot\tphase")
	for _, n := range c.Nodes {
		last := "-"
		if n.LastBoot != nil {
			last = seconds(time.Duration(*n.LastBoot))
		}
		state := n.State
		if n.Reason != "" {
			state += ": " + n.Reason
		}
		printf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", n.Node, state, n.Iteration, n.Booted, n.Failed, last, dash(n.Phase))
	}
	tw.Flush()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// campaignFollow prints a campaign's events until it ends: on a terminal,
// one status line kept up to date, with a line for each node that fails
// or leaves; otherwise one line per event. The exit status is 1 when a
// node failed.
func campaignFollow(ctx context.Context, e *env, id string) int {
	f := &follower{e: e, live: e.IsTerminal(e.Stdout) && !e.o.json, nodes: map[string]api.CampaignNode{}, printed: map[string]string{}}
	err := e.c.FollowCampaign(ctx, id, true, f.event)
	f.clear()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			printf(e.Stderr, "The campaign goes on: walt campaign follow %s\n", id)
		}
		return e.fail(err)
	}
	if e.o.json {
		return ExitOK
	}
	if f.last.ID != "" {
		printCampaign(e.Stdout, f.last)
		printf(e.Stdout, "Statistics: walt campaign stats %s\n", id)
	}
	for _, n := range f.last.Nodes {
		if n.Failed > 0 || n.State == api.NodeQuarantined {
			return ExitFailure
		}
	}
	return ExitOK
}

// follower renders a campaign's event stream.
type follower struct {
	e     *env
	live  bool // a terminal: a status line redrawn in place
	last  api.Campaign
	nodes map[string]api.CampaignNode
	round int
	shown bool
	// printed holds the outcome last seen of each node's iteration.
	printed map[string]string
}

func (f *follower) event(ev api.CampaignEvent) error {
	if f.e.o.json {
		return printJSONLine(f.e, ev)
	}
	switch ev.Type {
	case api.CampaignEventState:
		f.last = *ev.Campaign
		f.round = f.last.Round
		for _, n := range f.last.Nodes {
			f.nodes[n.MAC] = n
		}
		if !f.live {
			printf(f.e.Stdout, "%s campaign %s: %s, round %d of %d\n", stamp(ev.At), f.last.ID, f.last.State, f.last.Round, f.last.Repeat)
		}
	case api.CampaignEventRound:
		f.round = ev.Round
		if !f.live {
			printf(f.e.Stdout, "%s round %d of %d\n", stamp(ev.At), ev.Round, f.last.Repeat)
		}
	case api.CampaignEventBoot:
		b := ev.Boot
		n := f.nodes[b.MAC]
		n.Node, n.Phase, n.Iteration = b.Node, b.Outcome, b.Iteration
		if b.BootDuration != nil {
			n.LastBoot = b.BootDuration
		}
		f.nodes[b.MAC] = n
		key := fmt.Sprintf("%s/%d", b.MAC, b.Iteration)
		if f.printed[key] == b.Outcome {
			break // the same step again (a completed row is sent during its hold and at its end)
		}
		f.printed[key] = b.Outcome
		if line := bootLine(b); line != "" && (!f.live || b.Outcome == api.BootFailed || b.Outcome == api.BootDoneTimeout) {
			f.clear()
			printf(f.e.Stdout, "%s %s\n", stamp(ev.At), line)
		}
	case api.CampaignEventNode:
		n := ev.Node
		old := f.nodes[n.MAC]
		n.Phase, n.LastBoot = old.Phase, old.LastBoot
		f.nodes[n.MAC] = *n
		switch n.State {
		case api.NodeQuarantined:
			f.clear()
			printf(f.e.Stdout, "%s %s quarantined: %s\n", stamp(ev.At), n.Node, n.Reason)
		case api.NodeTaken:
			f.clear()
			printf(f.e.Stdout, "%s %s left the campaign: %s\n", stamp(ev.At), n.Node, n.Reason)
		}
	}
	f.status()
	return nil
}

// bootLine describes a row that changed; empty for steps not worth a line.
func bootLine(b *api.CampaignBoot) string {
	switch b.Outcome {
	case api.BootCompleted:
		s := fmt.Sprintf("%s iteration %d: booted", b.Node, b.Iteration)
		if b.BootDuration != nil {
			s += " in " + seconds(time.Duration(*b.BootDuration))
		}
		s += " (" + b.Method
		if b.Fallback {
			s += " after a failed soft reboot"
		}
		if b.Rescued {
			s += ", rescued by the boot watchdog"
		}
		s += ")"
		if b.Status != nil {
			s += fmt.Sprintf(", experiment done with status %d", *b.Status)
		}
		return s
	case api.BootFailed, api.BootDoneTimeout:
		return fmt.Sprintf("%s iteration %d: %s: %s", b.Node, b.Iteration, b.Outcome, b.Error)
	case api.BootStopped:
		return fmt.Sprintf("%s iteration %d: stopped", b.Node, b.Iteration)
	}
	return ""
}

func stamp(t time.Time) string { return t.Local().Format("15:04:05.000") }

// status redraws the status line on a terminal.
func (f *follower) status() {
	if !f.live || f.last.ID == "" {
		return
	}
	var booted, booting, failed, out int
	for _, n := range f.nodes {
		switch {
		case n.State == api.NodeQuarantined || n.State == api.NodeStopped || n.State == api.NodeTaken:
			out++
		case n.Phase == api.BootFailed || n.Phase == api.BootDoneTimeout:
			failed++
		case n.Phase == api.BootCompleted || n.Phase == api.BootBooted:
			booted++
		default:
			booting++
		}
	}
	fmt.Fprintf(f.e.Stdout, "\r\033[Kcampaign %s round %d/%d: %d booted, %d booting, %d failed, %d out", f.last.ID, f.round, f.last.Repeat, booted, booting, failed, out)
	f.shown = true
}

// clear erases the status line, before other output.
func (f *follower) clear() {
	if f.live && f.shown {
		fmt.Fprint(f.e.Stdout, "\r\033[K")
		f.shown = false
	}
}

func printJSONLine(e *env, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = e.Stdout.Write(append(b, '\n'))
	return err
}

func campaignStop(ctx context.Context, e *env, args []string) int {
	c, err := e.c.StopCampaign(ctx, args[0], api.CampaignStopRequest{Requester: e.user, Force: e.o.force})
	if err != nil {
		return e.fail(err)
	}
	printf(e.Stderr, "Campaign %s stopped in round %d of %d.\n", c.ID, c.Round, c.Repeat)
	return ExitOK
}

func campaignStats(ctx context.Context, e *env, args []string) int {
	if e.o.json && e.o.camp.csv {
		e.errorf("--json and --csv: choose one")
		return ExitUsage
	}
	st, err := e.c.CampaignStats(ctx, args[0])
	if err != nil {
		return e.fail(err)
	}
	if e.o.camp.svg != "" || e.o.camp.png != "" {
		boots, err := e.c.CampaignBoots(ctx, args[0])
		if err != nil {
			return e.fail(err)
		}
		for _, p := range []struct {
			file string
			draw func(io.Writer, api.CampaignStats, []api.CampaignBoot, plots.Options) error
		}{{e.o.camp.svg, plots.SVG}, {e.o.camp.png, plots.PNG}} {
			if p.file == "" {
				continue
			}
			if err := writePlot(p.file, func(w io.Writer) error { return p.draw(w, st, boots, plots.Options{}) }); err != nil {
				return e.fail(err)
			}
			printf(e.Stderr, "Plots written to %s\n", p.file)
		}
	}
	switch {
	case e.o.json:
		return printJSON(e, st)
	case e.o.camp.csv:
		if err := render.CSV(e.Stdout, st); err != nil {
			return e.fail(err)
		}
		return ExitOK
	}
	if err := render.Table(e.Stdout, st); err != nil {
		return e.fail(err)
	}
	if e.IsTerminal(e.Stdout) {
		fmt.Fprintln(e.Stdout)
		if err := render.Chart(e.Stdout, st, 0); err != nil {
			return e.fail(err)
		}
	}
	return ExitOK
}

// writePlot writes a plot to file through a temporary file, so that a
// failed plot leaves no half-written file.
func writePlot(file string, draw func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".walt-plot-*")
	if err != nil {
		return fmt.Errorf("write plot %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if err := draw(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write plot %s: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write plot %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write plot %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write plot %s: %w", file, err)
	}
	return nil
}

func campaignCompare(ctx context.Context, e *env, args []string) int {
	cmp, err := e.c.CompareCampaigns(ctx, args[0], args[1])
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		return printJSON(e, cmp)
	}
	if err := render.Compare(e.Stdout, cmp); err != nil {
		return e.fail(err)
	}
	return ExitOK
}

// nodeClearQuarantine lifts the quarantine of the set's quarantined nodes.
func nodeClearQuarantine(ctx context.Context, e *env, args []string) int {
	list, err := e.c.Nodes(ctx, nil)
	if err != nil {
		return e.fail(err)
	}
	names, err := e.expandNames(args[0], list.Nodes)
	if err != nil {
		return e.fail(err)
	}
	cleared := 0
	for _, n := range list.Nodes {
		if !names[n.Name] || n.Quarantine == nil {
			continue
		}
		if err := e.c.ClearQuarantine(ctx, n.Name, e.user); err != nil {
			return e.fail(err)
		}
		cleared++
		printf(e.Stderr, "Node %s is out of quarantine (it was: %s).\n", n.Name, n.Quarantine.Reason)
	}
	if cleared == 0 {
		printf(e.Stderr, "No node of %s is in quarantine.\n", args[0])
	}
	return ExitOK
}

// expandNames returns the names of the listed nodes that set names: by
// name, or all of them for all-nodes, or the user's for my-nodes.
func (e *env) expandNames(set string, nodes []api.Node) (map[string]bool, error) {
	terms, err := nodeset.Parse(set)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	out := map[string]bool{}
	for _, t := range terms {
		for _, n := range nodes {
			switch {
			case t.Name != "" && t.Name == n.Name,
				t.Keyword == "all-nodes",
				t.Keyword == "my-nodes" && n.Owner == e.user,
				t.Keyword == "free-nodes" && n.Owner == "",
				t.Model != "" && t.Model == n.Model:
				out[n.Name] = true
			}
		}
		if t.Name != "" && !out[t.Name] {
			return nil, fmt.Errorf("%w: no node named %s", api.ErrInvalid, strings.TrimSpace(t.Name))
		}
	}
	return out, nil
}
