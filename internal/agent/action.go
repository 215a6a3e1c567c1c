package agent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ActionKind says what "rebooting" means for this agent.
type ActionKind int

const (
	// ActionNone refuses every REBOOT: the agent was not told what a reboot
	// is, and must never reboot the machine by accident.
	ActionNone ActionKind = iota
	// ActionSystem really reboots the machine. Only for real nodes.
	ActionSystem
	// ActionExit makes the agent exit with ExitRebooted; its supervisor
	// starts it again. Simulated and process-backed nodes use it.
	ActionExit
	// ActionLog appends each decided step to a file and does nothing else.
	ActionLog
)

// Action is a parsed --reboot-action value.
type Action struct {
	Kind    ActionKind
	LogFile string // ActionLog only
}

// ParseAction parses "system", "exit", "log:FILE", or "" (no action).
func ParseAction(s string) (Action, error) {
	switch {
	case s == "" || s == "none":
		return Action{Kind: ActionNone}, nil
	case s == "system":
		return Action{Kind: ActionSystem}, nil
	case s == "exit":
		return Action{Kind: ActionExit}, nil
	case strings.HasPrefix(s, "log:") && len(s) > len("log:"):
		return Action{Kind: ActionLog, LogFile: strings.TrimPrefix(s, "log:")}, nil
	}
	return Action{}, fmt.Errorf("invalid reboot action %q: want system, exit or log:FILE", s)
}

func (a Action) String() string {
	switch a.Kind {
	case ActionSystem:
		return "system"
	case ActionExit:
		return "exit"
	case ActionLog:
		return "log:" + a.LogFile
	}
	return "none"
}

// run carries out a plain step (Force or Orderly).
func (a Action) run(ag *Agent, step Step) error {
	switch a.Kind {
	case ActionLog:
		return nil
	case ActionExit:
		ag.exit()
		return nil
	case ActionSystem:
		if step.Kind == Orderly {
			return orderlyReboot(ag)
		}
		return forceReboot(ag)
	}
	return errors.New("no reboot action configured")
}

// Deadlines of the system action.
const (
	syncTimeout      = 5 * time.Second
	rebootCmdTimeout = 10 * time.Second
)

// forceReboot flushes file system buffers (bounded: a dead network file
// system must not block the reboot) and restarts the machine at once.
func forceReboot(ag *Agent) error {
	done := make(chan struct{})
	go func() { unix.Sync(); close(done) }()
	select {
	case <-done:
	case <-time.After(syncTimeout):
		ag.log.Warn("sync did not finish in time, rebooting anyway", "timeout", syncTimeout)
	}
	ag.log.Info("forcing reboot")
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot(2): %w", err)
	}
	return nil
}

// orderlyReboot asks the OS to shut down and reboot. Unlike WalT, a failing
// or slow reboot command, or a shutdown that takes longer than the grace
// period, always ends in a forced reboot.
func orderlyReboot(ag *Agent) error {
	ctx, cancel := context.WithTimeout(context.Background(), rebootCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "reboot").CombinedOutput()
	if err != nil {
		ag.log.Warn("reboot command failed, forcing reboot", "err", err, "output", strings.TrimSpace(string(out)))
		return forceReboot(ag)
	}
	time.Sleep(ag.cfg.ShutdownGrace)
	ag.log.Warn("OS did not shut down in time, forcing reboot", "grace", ag.cfg.ShutdownGrace)
	return forceReboot(ag)
}
