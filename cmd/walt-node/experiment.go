package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/agent"
	"github.com/walt-testbed/walt/internal/experiment"
)

// The experiment's side of walt-node (docs/node-agent.md): "walt-node
// context" prints why this boot happened, "walt-node done" tells the
// server that this boot's experiment finished. Both take walt-node's
// settings (flags, WALT_* variables, the settings file) for --server,
// --mac, --context-dir and --reboot-action.

// doneTimeout bounds each of walt-node done's calls to the server.
const doneTimeout = 10 * time.Second

// walt-node done tries again, while it may (--retry-for), after a pause
// growing from donePause to maxDonePause.
const (
	donePause    = 250 * time.Millisecond
	maxDonePause = 5 * time.Second
)

// parseCommand parses the flags of a command and fills the settings not
// given; ok is false when the command must end with code.
func parseCommand(name string, fs *flag.FlagSet, config *string, args []string, getenv func(string) string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walt-node %s: unexpected argument %s\n", name, quoteCut(fs.Arg(0)))
		return exitUsage, false
	}
	if err := fillUnset(fs, *config, getenv); err != nil {
		fmt.Fprintf(stderr, "walt-node %s: %v\n", name, err)
		return exitUsage, false
	}
	return 0, true
}

// runContext is "walt-node context [--json|--shell]": the boot context
// the running agent wrote, as JSON (default) or shell assignments.
func runContext(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var o options
	fs, config := newFlags(&o, stderr)
	asJSON := fs.Bool("json", false, "context: print the boot context as JSON (the default)")
	asShell := fs.Bool("shell", false, "context: print the boot context as shell assignments (KEY='value' lines)")
	if code, ok := parseCommand("context", fs, config, args, getenv, stderr); !ok {
		return code
	}
	if *asJSON && *asShell {
		fmt.Fprintln(stderr, "walt-node context: give --json or --shell, not both")
		return exitUsage
	}
	bc, err := experiment.ReadContext(o.contextDir)
	if errors.Is(err, experiment.ErrNoContext) {
		fmt.Fprintf(stderr, "walt-node context: %v: walt-node writes it once the server has accepted this boot's report (is --server set?)\n", err)
		return exitError
	}
	if err != nil {
		fmt.Fprintf(stderr, "walt-node context: %v\n", err)
		return exitError
	}
	if *asShell {
		stdout.Write(experiment.ShellForm(bc))
		return exitOK
	}
	b, _ := json.MarshalIndent(bc, "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	return exitOK
}

// runDone is "walt-node done [--status N] [--metric KEY=VALUE ...]".
func runDone(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var o options
	fs, config := newFlags(&o, stderr)
	status := fs.Int("status", 0, "done: the experiment's exit status, 0 to 255")
	retryFor := fs.Duration("retry-for", 2*time.Minute, "done: how long to try again while the server cannot be reached or cannot serve (5xx); 0: one try")
	var metrics []string
	fs.Func("metric", fmt.Sprintf("done: a metric KEY=VALUE (repeatable, at most %d; keys of letters, digits, '.', '_', '-')", api.MaxDoneMetrics), func(v string) error {
		if len(metrics) == api.MaxDoneMetrics {
			return fmt.Errorf("more than %d metrics", api.MaxDoneMetrics)
		}
		metrics = append(metrics, v)
		return nil
	})
	if code, ok := parseCommand("done", fs, config, args, getenv, stderr); !ok {
		return code
	}
	usage := func(err error) int {
		fmt.Fprintf(stderr, "walt-node done: %v\n", err)
		return exitUsage
	}
	m, err := experiment.ParseMetrics(metrics)
	if err != nil {
		return usage(err)
	}
	if err := experiment.CheckStatus(*status); err != nil {
		return usage(err)
	}
	if *retryFor < 0 {
		return usage(fmt.Errorf("--retry-for: must be 0 or more (got %s)", *retryFor))
	}
	if o.server == "" {
		return usage(errors.New("no server to tell: give --server (or WALT_SERVER, or server in the settings file)"))
	}
	action, err := agent.ParseAction(o.action)
	if err != nil {
		return usage(err)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "walt-node done: %v\n", err)
		return exitError
	}
	id, err := currentBootID(action.Kind == agent.ActionSystem, o.contextDir)
	if err != nil {
		return fail(err)
	}
	host, _, _ := net.SplitHostPort(o.listen)
	_, mac, err := o.identity(host)
	if err != nil {
		return fail(err)
	}
	rep := api.DoneReport{MAC: mac, BootID: id, Status: *status, Metrics: m}
	if err := experiment.CheckDone(rep); err != nil {
		return fail(err)
	}
	c, err := client.New(o.server, &http.Client{Timeout: doneTimeout})
	if err != nil {
		return usage(err)
	}
	reply, err := reportDone(ctx, c, rep, *retryFor, stderr)
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return fail(fmt.Errorf("the server refused the done report of boot %s: %w", id, err))
	case err != nil:
		return fail(fmt.Errorf("tell %s that boot %s is done: %w", o.server, id, err))
	}
	ended := "no campaign iteration ended"
	if reply.Campaign != "" {
		ended = fmt.Sprintf("campaign %s iteration %d ended", reply.Campaign, reply.Iteration)
	}
	fmt.Fprintf(stdout, "boot %s done, status %d, %d metrics: accepted by %s, %s\n", id, *status, len(m), o.server, ended)
	return exitOK
}

// reportDone sends the done report, and sends it again while the server
// cannot be reached, does not answer in time or cannot serve now (an
// unavailable, timeout or internal error: a restart, a slow store), after
// a pause growing from donePause to maxDonePause, each try starting
// within retryFor of the first. A refusal (4xx) is final: a second report
// for the same boot only replaces the first, so trying again is safe.
func reportDone(ctx context.Context, c *client.Client, rep api.DoneReport, retryFor time.Duration, stderr io.Writer) (api.DoneReply, error) {
	start := time.Now()
	pause := donePause
	for try := 1; ; try++ {
		reply, err := c.ReportDone(ctx, rep)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return reply, err
		}
		if time.Since(start)+pause > retryFor {
			if try > 1 {
				err = fmt.Errorf("%w (%d tries in %s)", err, try, time.Since(start).Round(time.Millisecond))
			}
			return reply, err
		}
		fmt.Fprintf(stderr, "walt-node done: try %d: %v; trying again in %s\n", try, err, pause)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return reply, ctx.Err()
		}
		pause = min(2*pause, maxDonePause)
	}
}

// retryable reports whether a done report that failed with err may go
// through if sent again: the server was not reached, or said it cannot
// serve now.
func retryable(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return true // not reached, no answer in time, a broken answer
	}
	switch ae.Code {
	case api.CodeUnavailable, api.CodeTimeout, api.CodeInternal:
		return true
	}
	return false
}

// currentBootID is the id this boot was reported with: the kernel's on a
// real node, else (a simulated agent draws one at each start) the one in
// the boot context the agent wrote.
func currentBootID(realNode bool, contextDir string) (string, error) {
	if realNode {
		return bootID(true, kernelBootIDFile)
	}
	bc, err := experiment.ReadContext(contextDir)
	if err != nil {
		return "", fmt.Errorf("find this boot's id: %w (the agent writes it once the server has accepted its report)", err)
	}
	if bc.BootID == "" {
		return "", fmt.Errorf("find this boot's id: the boot context in %s has none", contextDir)
	}
	return bc.BootID, nil
}
