// Package agent is the logic of walt-node, the agent that runs on every
// node: it answers the server's requests (through package netservice) and,
// on REBOOT, chooses and runs the reboot procedure of the node's boot mode.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
)

// Exit statuses with a meaning for whoever runs walt-node or a hook.
const (
	// ExitRebooted is walt-node's exit status when it "reboots" under the
	// exit action: its supervisor (walt-lab, the process vnode backend)
	// starts it again as a fresh boot.
	ExitRebooted = 10
	// HookDeclined is the exit status by which a reboot hook says it will
	// not reboot the node (the kexec hook, when kexec.allow=false): the
	// agent then runs the plain procedure of the boot mode at once.
	HookDeclined = 3
)

// ErrRebooted is returned by Run when the node rebooted under the exit
// action; the caller exits with ExitRebooted.
var ErrRebooted = errors.New("node rebooted (exit action)")

// Default deadlines of the reboot procedure.
const (
	DefaultHookTimeout   = 60 * time.Second
	DefaultShutdownGrace = 30 * time.Second
	blinkTimeout         = 30 * time.Second
)

// Config is what the agent needs to know about its node.
type Config struct {
	// Root is the image root under which hooks and /bin/blink are looked up.
	Root     string
	BootMode BootMode
	Virtual  bool
	Action   Action
	// AllowShell enables the SHELL request.
	AllowShell bool
	// HookTimeout bounds a reboot hook's run; then the reboot is forced.
	HookTimeout time.Duration
	// ShutdownGrace is how long an orderly shutdown, or a hybrid-mode hook
	// that returned 0, may take before the reboot is forced.
	ShutdownGrace time.Duration
	// Servers are the addresses of the WalT server(s): their connections
	// are never refused because of other peers' (netservice.Server.Reserved).
	Servers []netip.Addr
	// ObeyServers restricts REBOOT, BLINK, DMESG and SHELL to Servers and
	// AllowFrom (walt-node --server); false: any peer, as WalT's agent.
	ObeyServers bool
	AllowFrom   []netip.Prefix
	// MaxConns and MaxConnsPerPeer bound the connections of other peers;
	// defaults netservice.DefaultMaxConns and DefaultMaxConnsPerPeer.
	MaxConns, MaxConnsPerPeer int
	Logger                    *slog.Logger
}

// Agent serves one node. It implements netservice.Node.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	rebooting atomic.Bool
	exitOnce  sync.Once
	exited    chan struct{}
	journalMu sync.Mutex
}

var _ netservice.Node = (*Agent)(nil)

// New checks cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if _, err := ParseBootMode(string(cfg.BootMode)); err != nil {
		return nil, err
	}
	if cfg.HookTimeout <= 0 {
		cfg.HookTimeout = DefaultHookTimeout
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: log, exited: make(chan struct{})}, nil
}

// Serve answers requests on ln until ctx ends (it then returns nil) or the
// node reboots under the exit action (it then returns ErrRebooted, after
// closing every connection).
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &netservice.Server{Node: a, AllowShell: a.cfg.AllowShell, Logger: a.log,
		MaxConns: a.cfg.MaxConns, MaxConnsPerPeer: a.cfg.MaxConnsPerPeer,
		Reserved: func(peer netip.Addr) bool { return slices.Contains(a.cfg.Servers, peer) }}
	if a.cfg.ObeyServers {
		srv.Allowed = func(peer netip.Addr) bool {
			return slices.Contains(a.cfg.Servers, peer) || slices.ContainsFunc(a.cfg.AllowFrom, func(p netip.Prefix) bool { return p.Contains(peer) })
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	select {
	case err := <-done:
		return err
	case <-a.exited:
		cancel()
		<-done
		return ErrRebooted
	}
}

// PrepareReboot implements netservice.Node.
func (a *Agent) PrepareReboot(args []string) (func(), error) {
	if a.cfg.Action.Kind == ActionNone {
		return nil, errors.New("reboot refused: no reboot action configured on this node (walt-node --reboot-action)")
	}
	args, ignored, err := FilterRebootArgs(args)
	if err != nil {
		return nil, err
	}
	if len(ignored) > 0 {
		a.log.Warn("ignored REBOOT arguments: unknown key or invalid value", "count", len(ignored), "args", logList(ignored))
	}
	if !a.rebooting.CompareAndSwap(false, true) {
		a.log.Info("reboot already under way, nothing new started")
		return nil, nil
	}
	step, err := FirstStep(a.cfg.Root, a.cfg.BootMode, a.cfg.Virtual, args)
	if err != nil {
		a.rebooting.Store(false)
		return nil, err
	}
	return func() { a.reboot(step) }, nil
}

// reboot runs the reboot procedure, starting with first. With the system
// action it does not return unless the reboot failed.
func (a *Agent) reboot(first Step) {
	defer a.rebooting.Store(false)
	step := first
	for step.Kind == Hook {
		a.note(step)
		step = a.runHook(step)
	}
	a.note(step)
	if err := a.cfg.Action.run(a, step); err != nil {
		a.log.Error("reboot failed", "step", step.String(), "err", err)
	}
}

// note records a decided step: a journal line under the log action, a log
// line otherwise.
func (a *Agent) note(step Step) {
	a.log.Info("reboot procedure", "step", step.String(), "boot_mode", a.cfg.BootMode, "virtual", a.cfg.Virtual)
	if a.cfg.Action.Kind != ActionLog {
		return
	}
	a.journalMu.Lock()
	defer a.journalMu.Unlock()
	f, err := os.OpenFile(a.cfg.Action.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = io.WriteString(f, step.String()+"\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		a.log.Error("cannot write reboot journal", "file", a.cfg.Action.LogFile, "err", err)
	}
}

// runHook runs a hook and returns the step that follows it.
func (a *Agent) runHook(step Step) Step {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.HookTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(a.cfg.Root, step.Path))
	cmd.Dir = "/"
	cmd.Env = a.hookEnv(step.Args)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out := &logWriter{log: a.log, hook: step.Path}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		if a.cfg.BootMode.Hybrid() {
			// The hook asked the OS for an orderly reboot (kexec.service
			// jumps at its end); force it if the OS has not shut down in time.
			a.log.Info("hook returned, waiting for the OS to shut down", "hook", step.Path, "grace", a.cfg.ShutdownGrace)
			time.Sleep(a.cfg.ShutdownGrace)
		}
		a.log.Warn("hook returned without rebooting, forcing reboot", "hook", step.Path)
		return Step{Kind: Force}
	case ctx.Err() != nil:
		a.log.Warn("hook timed out, forcing reboot", "hook", step.Path, "timeout", a.cfg.HookTimeout)
		return Step{Kind: Force}
	case errors.As(err, &exit) && exit.ExitCode() == HookDeclined:
		a.log.Info("hook declined, using the plain procedure", "hook", step.Path)
		return plainStep(a.cfg.BootMode)
	default:
		a.log.Warn("hook failed, forcing reboot", "hook", step.Path, "err", err)
		return Step{Kind: Force}
	}
}

// Blink implements netservice.Node: it runs the image's /bin/blink.
func (a *Agent) Blink(ctx context.Context, args []string) error {
	const blink = "/bin/blink"
	path := filepath.Join(a.cfg.Root, blink)
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New(blink + " unavailable or not executable on image")
	}
	ctx, cancel := context.WithTimeout(ctx, blinkTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		a.log.Warn("blink failed", "args", args, "err", err, "output", string(out))
		return errors.New(blink + " returned a non-zero error code")
	}
	return nil
}

// Dmesg implements netservice.Node: it copies the kernel log.
func (a *Agent) Dmesg(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dmesg")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(w, "walt-node: dmesg: %v\n", err)
		return err
	}
	return nil
}

// exit makes Serve return ErrRebooted.
func (a *Agent) exit() { a.exitOnce.Do(func() { close(a.exited) }) }

// logWriter turns a hook's output into log lines.
type logWriter struct {
	log  *slog.Logger
	hook string
}

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.log.Info("hook output", "hook", w.hook, "line", line)
		}
	}
	return len(p), nil
}
