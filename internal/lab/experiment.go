package lab

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/experiment"
)

// Experiment is a simulated experiment (walt-lab --experiment): Delay
// after each boot, each node reports done with Status and Metrics, as
// walt-node done does.
type Experiment struct {
	Delay   time.Duration
	Status  int
	Metrics map[string]float64
}

// Bounds of an experiment's spec.
const (
	MaxExperimentDelay = time.Hour
	maxExperimentSpec  = 4096
)

// ParseExperiment parses DELAY[:STATUS[:KEY=VALUE...]], e.g.
// "2s:0:runs=3:score=0.5": a delay of 0 to MaxExperimentDelay, a status of
// 0 to 255 (default 0), metrics as walt-node done --metric takes them (at
// most api.MaxDoneMetrics).
func ParseExperiment(s string) (Experiment, error) {
	if len(s) > maxExperimentSpec {
		return Experiment{}, fmt.Errorf("invalid experiment %.40q...: %d bytes, at most %d", s, len(s), maxExperimentSpec)
	}
	parts := strings.Split(s, ":")
	bad := func(err error) (Experiment, error) {
		return Experiment{}, fmt.Errorf("invalid experiment %.80q: %w (want DELAY[:STATUS[:KEY=VALUE...]], e.g. 2s:0:runs=3)", s, err)
	}
	d, err := time.ParseDuration(parts[0])
	if err != nil || d < 0 || d > MaxExperimentDelay {
		return bad(fmt.Errorf("delay %.40q: want a duration of 0 to %v", parts[0], MaxExperimentDelay))
	}
	e := Experiment{Delay: d}
	if len(parts) > 1 {
		if len(parts[1]) > 3 || strings.Trim(parts[1], "0123456789") != "" || parts[1] == "" {
			return bad(fmt.Errorf("status %.40q: want a number of 0 to %d", parts[1], api.MaxDoneStatus))
		}
		e.Status, _ = strconv.Atoi(parts[1])
		if err := experiment.CheckStatus(e.Status); err != nil {
			return bad(err)
		}
	}
	if len(parts) > 2 {
		if e.Metrics, err = experiment.ParseMetrics(parts[2:]); err != nil {
			return bad(err)
		}
	}
	return e, nil
}

// ErrBootLeft: the node left the boot before its experiment was done.
var ErrBootLeft = errors.New("the node left the boot before its experiment was done")

// Run runs the experiment of boot b: Delay later, if the node is still up
// in that boot, it calls done with the boot's done report (walt-lab passes
// client.Client.ReportDone, the call walt-node done makes) and returns its
// error. It returns ErrBootLeft if the node rebooted, crashed or lost power
// meanwhile, and ctx's error if ctx ends first.
func (e Experiment) Run(ctx context.Context, b Boot, done func(context.Context, api.DoneReport) error) error {
	t := time.NewTimer(e.Delay)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	if !b.Current() {
		return ErrBootLeft
	}
	return done(ctx, e.Report(b.Node.MAC(), b.BootID))
}

// Report is the experiment's done report for a node's boot.
func (e Experiment) Report(mac, bootID string) api.DoneReport {
	return api.DoneReport{MAC: mac, BootID: bootID, Status: e.Status, Metrics: e.Metrics}
}
