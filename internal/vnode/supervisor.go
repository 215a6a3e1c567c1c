package vnode

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/walt-testbed/walt/internal/vocab"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Errors of the Supervisor, for errors.Is.
var (
	ErrNotFound = errors.New("no such vnode")
	ErrExists   = errors.New("vnode already exists")
	ErrStopped  = errors.New("vnode supervisor stopped")
)

// DefaultModel is the model of vnodes, as in WalT.
const DefaultModel = "pc-x86-64"

// Spec describes a vnode to Create.
type Spec struct {
	Name  string // letters, digits, '.', '_' and '-'
	MAC   string // empty: derived from Name (52:54:00:xx:xx:xx)
	Model string // empty: DefaultModel
	// Addr is where the server reaches the agent (port AgentPort); the
	// zero value lets the supervisor pick a free one in Config.AddrPrefix.
	Addr     netip.Addr
	Settings Settings
}

// Status is a snapshot of one vnode.
type Status struct {
	Name, MAC, Model string
	Addr             netip.Addr
	Settings         Settings
	Running          bool
	PID              int    // of the running machine, 0 when none runs
	Generation       uint64 // machines started so far, the running one included
	StartedAt        time.Time
	LastExit         string // why the last machine exited, "" before the first exit
	Restarts         uint64 // machines that exited
	// Accel is what the running or last machine runs under ("kvm" or
	// "tcg" for QEMU; "" for the process backend or before any start).
	Accel string
}

// Config configures a Supervisor.
type Config struct {
	// DataDir holds vnodes/<name>/console.log.
	DataDir string
	// Backend runs the machines.
	Backend Backend
	// AddrPrefix is where vnode addresses come from; default DefaultAddrPrefix.
	AddrPrefix netip.Prefix
	// ServerURL is passed to agents for boot reports (may be empty).
	ServerURL string
	// StopGrace is how long a machine may take to exit after SIGTERM
	// when the supervisor or a vnode stops, before SIGKILL; default 3 s.
	StopGrace time.Duration
	// ConsoleLimit is the size above which console.log is moved to
	// console.log.1 at the next machine start; default 8 MiB.
	ConsoleLimit int64
	Logger       *slog.Logger
}

// Supervisor runs one machine per vnode and starts it again whenever it
// exits. All methods are safe for concurrent use.
type Supervisor struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	nodes   map[string]*vnode     // +checklocks:mu
	used    map[netip.Addr]string // +checklocks:mu
	runCtx  context.Context       // set by Run; the parent of every node loop
	stopped bool                  // +checklocks:mu
	loops   sync.WaitGroup
}

// vnode is the supervisor's state of one node; fields are guarded by
// Supervisor.mu.
type vnode struct {
	spec     Spec
	settings Settings
	dir      string

	gen       uint64
	restarts  uint64
	cmd       *exec.Cmd     // the running machine, nil between machines
	exited    chan struct{} // closed when cmd has exited
	startedAt time.Time
	accel     string // of the running or last machine
	lastExit  string
	hardGen   uint64        // generation a hard reboot killed: restart it without delay
	kick      chan struct{} // 1-buffered: start now, skipping the boot delay
	cancel    context.CancelFunc
	done      chan struct{} // closed when the node's loop has returned
}

// ValidName checks a vnode name: 1 to 63 letters, digits, '.', '_' and
// '-', starting with a letter or a digit (it goes into QEMU's argv and the
// guest's kernel command line).
func ValidName(name string) error {
	if name == "" || len(name) > vocab.MaxVNodeName || !vocab.NameStart(name[0]) || vocab.BadNameByte(name) >= 0 {
		return fmt.Errorf("invalid vnode name %q: use 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or a digit", name)
	}
	return nil
}

// New returns a supervisor; machines start when Run is called.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Backend == nil {
		return nil, errors.New("vnode supervisor: no backend")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("vnode supervisor: no data directory")
	}
	if !cfg.AddrPrefix.IsValid() {
		cfg.AddrPrefix = DefaultAddrPrefix
	}
	if !cfg.AddrPrefix.Addr().Is4() || !cfg.AddrPrefix.Addr().IsLoopback() {
		return nil, fmt.Errorf("vnode supervisor: address prefix %s is not in 127.0.0.0/8", cfg.AddrPrefix)
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 3 * time.Second
	}
	if cfg.ConsoleLimit <= 0 {
		cfg.ConsoleLimit = 8 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		cfg:   cfg,
		log:   cfg.Logger.With("backend", cfg.Backend.Name()),
		nodes: map[string]*vnode{},
		used:  map[netip.Addr]string{},
	}, nil
}

// Backend returns the backend the supervisor runs machines with.
func (s *Supervisor) Backend() Backend { return s.cfg.Backend }

// Run starts the machines of the vnodes created so far, and of those
// created later as they come, and supervises them until ctx is done. It then
// stops every machine (SIGTERM, SIGKILL after Config.StopGrace) and returns
// once all have exited. It returns nil after a clean stop.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil || s.stopped {
		s.mu.Unlock()
		return errors.New("vnode supervisor: Run called twice")
	}
	s.runCtx = ctx
	for _, v := range s.nodes {
		s.startLoop(v)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.loops.Wait()
	return nil
}

// Create adds a vnode; its machine starts after its boot delay (at once if
// Run is already running, else when Run starts). It fails with ErrExists,
// ErrInvalidSetting, or when no address is free.
func (s *Supervisor) Create(spec Spec) error {
	if err := ValidName(spec.Name); err != nil {
		return fmt.Errorf("create vnode: %w", err)
	}
	if err := spec.Settings.validate(); err != nil {
		return fmt.Errorf("create vnode %s: %w", spec.Name, err)
	}
	if spec.Model == "" {
		spec.Model = DefaultModel
	}
	if spec.MAC == "" {
		spec.MAC = MACFor(spec.Name)
	} else if hw, err := net.ParseMAC(spec.MAC); err != nil || len(hw) != 6 {
		return fmt.Errorf("create vnode %s: invalid mac %q", spec.Name, spec.MAC)
	} else {
		spec.MAC = hw.String()
	}
	dir := filepath.Join(s.cfg.DataDir, "vnodes", spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create vnode %s: %w", spec.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("create vnode %s: %w", spec.Name, ErrStopped)
	}
	if _, ok := s.nodes[spec.Name]; ok {
		return fmt.Errorf("create vnode %s: %w", spec.Name, ErrExists)
	}
	if spec.Addr.IsValid() {
		if owner := s.used[spec.Addr]; owner != "" {
			return fmt.Errorf("create vnode %s: address %s is used by vnode %s", spec.Name, spec.Addr, owner)
		}
		if !spec.Addr.Is4() || !spec.Addr.IsLoopback() {
			return fmt.Errorf("create vnode %s: address %s is not in 127.0.0.0/8", spec.Name, spec.Addr)
		}
	} else {
		a, err := allocAddr(s.cfg.AddrPrefix, s.used)
		if err != nil {
			return fmt.Errorf("create vnode %s: %w", spec.Name, err)
		}
		spec.Addr = a
	}
	s.used[spec.Addr] = spec.Name
	v := &vnode{spec: spec, settings: spec.Settings, dir: dir, kick: make(chan struct{}, 1)}
	s.nodes[spec.Name] = v
	if s.runCtx != nil {
		s.startLoop(v)
	}
	return nil
}

// Remove stops the vnode's machine, waits until it has exited (bounded by
// ctx) and forgets the vnode. Its console log stays on disk.
func (s *Supervisor) Remove(ctx context.Context, name string) error {
	s.mu.Lock()
	v, ok := s.nodes[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("remove vnode %s: %w", name, ErrNotFound)
	}
	delete(s.nodes, name)
	delete(s.used, v.spec.Addr)
	cancel, done := v.cancel, v.done
	s.mu.Unlock()
	if cancel == nil {
		return nil // Run has not started it
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("remove vnode %s: waiting for its machine to exit: %w", name, ctx.Err())
	}
}

// HardReboot kills the vnode's running machine (SIGKILL) and returns once
// it has exited; the next machine starts at once, without the boot delay.
// When no machine runs (boot delay, or between two machines), nothing is
// killed: the next machine starts at once. A hard reboot is aimed at one
// machine, never queued: it cannot kill the machine that follows.
func (s *Supervisor) HardReboot(ctx context.Context, name string) error {
	s.mu.Lock()
	v, ok := s.nodes[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("hard-reboot vnode %s: %w", name, ErrNotFound)
	}
	cmd, exited, gen := v.cmd, v.exited, v.gen
	if cmd == nil {
		select {
		case v.kick <- struct{}{}:
		default:
		}
		s.mu.Unlock()
		return nil
	}
	v.hardGen = gen
	s.mu.Unlock()
	// os.Process signals through a pidfd: once this machine has been
	// waited for, Kill fails instead of hitting a reused PID.
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("hard-reboot vnode %s: kill machine %d (pid %d): %w", name, gen, cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("hard-reboot vnode %s: waiting for machine %d to exit: %w", name, gen, ctx.Err())
	}
}

// Update replaces the vnode's settings; they apply at its next machine start.
func (s *Supervisor) Update(name string, settings Settings) error {
	if err := settings.validate(); err != nil {
		return fmt.Errorf("update vnode %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.nodes[name]
	if !ok {
		return fmt.Errorf("update vnode %s: %w", name, ErrNotFound)
	}
	v.settings = settings
	return nil
}

// FreeAddr returns an address of Config.AddrPrefix that no vnode uses and
// whose agent port is free now, for a Spec.Addr chosen before Create (the
// caller serialises its creations: two calls may return the same address).
func (s *Supervisor) FreeAddr() (netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return allocAddr(s.cfg.AddrPrefix, s.used)
}

// Addr returns host:port where the vnode's agent is reached.
func (s *Supervisor) Addr(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.nodes[name]
	if !ok {
		return "", false
	}
	return net.JoinHostPort(v.spec.Addr.String(), strconv.Itoa(AgentPort)), true
}

// Status returns a snapshot of the vnode.
func (s *Supervisor) Status(name string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.nodes[name]
	if !ok {
		return Status{}, fmt.Errorf("vnode %s: %w", name, ErrNotFound)
	}
	st := Status{Name: name, MAC: v.spec.MAC, Model: v.spec.Model, Addr: v.spec.Addr,
		Settings: v.settings, Running: v.cmd != nil, Generation: v.gen,
		StartedAt: v.startedAt, LastExit: v.lastExit, Restarts: v.restarts, Accel: v.accel}
	if v.cmd != nil {
		st.PID = v.cmd.Process.Pid
	}
	return st, nil
}

// Names returns the names of all vnodes, in no particular order.
func (s *Supervisor) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.nodes))
	for n := range s.nodes {
		names = append(names, n)
	}
	return names
}

// ConsolePath returns the vnode's console log, which exists once its first
// machine has started ("walt node console NAME" follows it: FollowConsole).
func (s *Supervisor) ConsolePath(name string) string {
	return filepath.Join(s.cfg.DataDir, "vnodes", name, "console.log")
}

// MACFor derives a stable locally administered MAC from a vnode name, in
// QEMU's 52:54:00 range as WalT does.
func MACFor(name string) string {
	h := sha256.Sum256([]byte(name))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
}

// startLoop runs v's loop under Run's context. Caller holds s.mu.
func (s *Supervisor) startLoop(v *vnode) {
	ctx, cancel := context.WithCancel(s.runCtx)
	v.cancel, v.done = cancel, make(chan struct{})
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		defer close(v.done)
		defer cancel()
		s.loop(ctx, v)
	}()
}

// loop starts v's machines one after the other until ctx is done: boot
// delay, start, wait for the exit, log why, again. It returns when ctx is
// done and the last machine has exited.
func (s *Supervisor) loop(ctx context.Context, v *vnode) {
	log := s.log.With("node", v.spec.Name)
	skipDelay := false
	backoff := time.Duration(0)
	for {
		s.mu.Lock()
		settings := v.settings
		s.mu.Unlock()
		delay := settings.BootDelay.Duration()
		if backoff > delay {
			delay = backoff
		}
		if skipDelay {
			delay = 0
		}
		if !s.wait(ctx, v, delay) {
			return
		}
		start := time.Now()
		reason, normal, hard, err := s.runMachine(ctx, v, settings, log)
		if ctx.Err() != nil {
			return
		}
		skipDelay = hard
		switch {
		case err != nil:
			log.Error("cannot start vnode machine", "err", err)
		case hard:
			log.Info("vnode machine killed by hard reboot", "reason", reason)
		case normal:
			log.Info("vnode machine exited", "reason", reason, "elapsed", time.Since(start).Round(time.Millisecond))
		default:
			log.Warn("vnode machine exited", "reason", reason, "elapsed", time.Since(start).Round(time.Millisecond))
		}
		// A machine that fails quickly would otherwise be restarted in a
		// tight loop; normal reboots and hard reboots are never delayed.
		switch {
		case normal || hard:
			backoff = 0
		case time.Since(start) > 30*time.Second:
			backoff = time.Second
		default:
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
		}
	}
}

// wait waits d, or less if a hard reboot kicks v; false when ctx is done.
func (s *Supervisor) wait(ctx context.Context, v *vnode, d time.Duration) bool {
	select {
	case <-v.kick: // a kick sent during the last machine's life is stale
	default:
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-v.kick:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// runMachine starts one machine and waits for it to exit. hard tells
// whether a hard reboot killed it.
func (s *Supervisor) runMachine(ctx context.Context, v *vnode, settings Settings, log *slog.Logger) (reason string, normal, hard bool, err error) {
	consolePath := filepath.Join(v.dir, "console.log")
	if fi, err := os.Stat(consolePath); err == nil && fi.Size() > s.cfg.ConsoleLimit {
		os.Rename(consolePath, consolePath+".1")
	}
	console, err := os.OpenFile(consolePath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", false, false, fmt.Errorf("start vnode %s: open console log: %w", v.spec.Name, err)
	}
	defer console.Close()
	m := Machine{Name: v.spec.Name, MAC: v.spec.MAC, Model: v.spec.Model, Addr: v.spec.Addr,
		Settings: settings, ServerURL: s.cfg.ServerURL, ConsolePath: consolePath}
	if a, ok := s.cfg.Backend.(Accelerated); ok {
		m.Accel = a.Accel()
	}
	cmd, err := s.cfg.Backend.Command(m)
	if err != nil {
		return "", false, false, fmt.Errorf("start vnode %s: %w", v.spec.Name, err)
	}
	cmd.Stdout, cmd.Stderr = console, console
	// Pdeathsig: the machine dies with the supervisor, even on SIGKILL.
	// The signal follows the thread that forked, and Go ends a thread
	// only when a goroutine exits while locked to it, which no goroutine
	// that starts machines does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	s.mu.Lock()
	gen := v.gen + 1
	s.mu.Unlock()
	kind := s.cfg.Backend.Name()
	if m.Accel != "" {
		kind += " " + m.Accel
	}
	fmt.Fprintf(console, "\n== walt vnode %s: starting machine %d (%s, cpu.cores=%d ram=%dM) at %s ==\n",
		v.spec.Name, gen, kind, settings.CPUCores, settings.RAMMiB, time.Now().UTC().Format(time.RFC3339))
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(console, "== cannot start: %v ==\n", err)
		return "", false, false, fmt.Errorf("start vnode %s: %w", v.spec.Name, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	v.gen = gen
	v.cmd, v.exited, v.startedAt = cmd, exited, time.Now()
	accelChanged := v.accel != m.Accel
	v.accel = m.Accel
	s.mu.Unlock()
	// Info when the accelerator is new for this node (its first machine,
	// or KVM found to work since), Debug for every other start.
	level := slog.LevelDebug
	if accelChanged {
		level = slog.LevelInfo
	}
	log.Log(ctx, level, "vnode machine started", "gen", gen, "pid", cmd.Process.Pid, "addr", v.spec.Addr, "accel", m.Accel)

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var werr error
	stopping := false
	select {
	case werr = <-waitErr:
	case <-ctx.Done():
		stopping = true
		werr = s.stop(cmd, waitErr)
	}
	reason, normal = s.cfg.Backend.ExitReason(werr)
	if stopping {
		reason, normal = "stopped by supervisor", true
	}
	s.mu.Lock()
	v.cmd = nil
	close(exited)
	hard = v.hardGen == gen
	if hard {
		reason = "killed by hard reboot"
	}
	v.lastExit = reason
	v.restarts++
	s.mu.Unlock()
	fmt.Fprintf(console, "\n== walt vnode %s: machine %d exited: %s ==\n", v.spec.Name, gen, reason)
	return reason, normal, hard, nil
}

// stop sends SIGTERM, then SIGKILL after the grace period, and returns
// what Wait returned.
func (s *Supervisor) stop(cmd *exec.Cmd, waitErr <-chan error) error {
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.cfg.StopGrace)
	defer t.Stop()
	select {
	case err := <-waitErr:
		return err
	case <-t.C:
		cmd.Process.Kill()
		return <-waitErr
	}
}
