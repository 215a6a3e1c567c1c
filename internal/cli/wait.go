package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/bound"
	"github.com/walt-testbed/walt/internal/nodeset"
)

func init() {
	register(&command{
		noun: "node", verb: "wait", summary: "wait for bootup notification of a node (or set of nodes)",
		args: "node_set", minArgs: 1, maxArgs: 1,
		flags: timeoutFlag,
		run: func(ctx context.Context, e *env, args []string) int {
			if code := e.checkTimeout(); code != ExitOK {
				return code
			}
			_, code := e.waitBooted(ctx, args[0])
			return code
		},
	})
}

func timeoutFlag(fs *flag.FlagSet, o *opts) {
	fs.IntVar(&o.timeout, "timeout", -1, "stop if still waiting after this number of `SECONDS`; the default is -1 (no timeout)")
}

// waitTimeoutRange bounds --timeout (-1 aside: no timeout), so that it
// cannot overflow as a duration: 18446744074 s used to wrap to 0.29 s. The
// server refuses longer waits too (24h).
var waitTimeoutRange = bound.Int{Name: "--timeout", Min: 0, Max: 24 * 60 * 60, Suffix: "s"}

func (e *env) checkTimeout() int {
	if e.o.timeout == -1 {
		return ExitOK
	}
	if err := waitTimeoutRange.Check(int64(e.o.timeout)); err != nil {
		fmt.Fprintf(e.Stderr, "Error: --timeout %d: want a number of seconds from 0 to %d, or -1 for no timeout\nTry: walt node wait --help\n",
			e.o.timeout, waitTimeoutRange.Max)
		return ExitUsage
	}
	return ExitOK
}

// waitBooted waits until every node of set is booted. On a terminal it
// shows which nodes it waits for. At the timeout it names on stderr the
// nodes still not booted and returns ExitFailure.
func (e *env) waitBooted(ctx context.Context, set string) (api.WaitEvent, int) {
	req := api.WaitRequest{Set: set, Requester: e.user}
	switch {
	case e.o.timeout == 0:
		req.Timeout = api.Duration(time.Nanosecond) // look once
	case e.o.timeout > 0:
		req.Timeout = api.Duration(time.Duration(e.o.timeout) * time.Second)
	}
	show := e.IsTerminal(e.Stderr)
	shown := false
	last, err := e.c.Wait(ctx, req, func(ev api.WaitEvent) {
		switch ev.Type {
		case api.WaitWoken:
			if shown {
				fmt.Fprint(e.Stderr, "\r\033[K")
			}
			fmt.Fprintln(e.Stderr, "Reactivating related switch port(s) in powersave mode.")
		case api.WaitWaiting:
			if show {
				printf(e.Stderr, "\rWaiting for bootup of %s\033[K", nodeset.Describe(ev.Nodes, "node", "nodes"))
				shown = true
			}
		}
	})
	if shown {
		fmt.Fprint(e.Stderr, "\r\033[K")
	}
	if err != nil {
		return last, e.fail(err)
	}
	if last.Type == api.WaitTimeout {
		printf(e.Stderr, "Timeout was reached.\n%s: not booted.\n", describe(last.Nodes, "node", "nodes"))
		return last, ExitFailure
	}
	return last, ExitOK
}

// waitAfterReboot is `walt node reboot --wait`: it waits for the nodes
// rebooted OK, then prints per node the time from request to boot.
func (e *env) waitAfterReboot(ctx context.Context, results []api.NodeResult, batch string) ([]api.RebootRecord, int) {
	var ok []string
	for _, r := range results {
		if r.OK {
			ok = append(ok, r.Node)
		}
	}
	if len(ok) == 0 {
		return nil, ExitOK
	}
	_, code := e.waitBooted(ctx, strings.Join(ok, ","))
	if batch == "" {
		return nil, code
	}
	list, err := e.c.Batch(ctx, batch)
	if err != nil {
		return nil, e.fail(err)
	}
	if !e.o.json {
		for _, r := range sortedRecords(list.Reboots) {
			if r.BootDuration != nil {
				printf(e.Stdout, "Node %s: booted %s after the reboot request.\n", r.Node, roundDuration(time.Duration(*r.BootDuration)))
			}
		}
	}
	return list.Reboots, code
}

// roundDuration keeps durations readable: 2.31s, 153ms, 3m2s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
