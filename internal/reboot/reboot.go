// Package reboot is walt-server's reboot engine. Each node runs its own
// pipeline: a soft reboot through the node's agent (WalT's REBOOT request on
// TCP 12346) and, if that fails or is skipped, at once and for that node
// alone, a hard reboot through a power driver. Pipelines run concurrently
// under a bounded fan-out; one dead or slow node never delays another's
// outcome beyond its own deadlines.
package reboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/power"
)

// Method names, as results and messages show them: the API's words.
const (
	MethodSoft = api.MethodSoft
	// MethodHard names a hard attempt for which no driver is registered.
	MethodHard = api.MethodHard
)

// ErrNoMethod is the error of a hard attempt on a node no driver can reboot.
var ErrNoMethod = errors.New("no hard-reboot method")

// Node is what the engine needs to know about one node.
type Node struct {
	Name string
	MAC  string
	// Addr is the agent's address, host:port.
	Addr    string
	Virtual bool
	// KexecAllow is passed to the agent as REBOOT kexec.allow=true|false.
	KexecAllow bool
	// PoweredOff: the server turned the node's power off (powersave or an
	// interrupted hard reboot); its agent cannot answer, so the soft attempt
	// is skipped.
	PoweredOff bool
	// Power is the node's power.method: "" or "poe" for Config.Physical,
	// "none" for no hard reboot, else the key of its driver in
	// Config.Methods. Virtual nodes use Config.Virtual whatever it says.
	Power string
}

// Power methods with a meaning of their own (Node.Power).
const (
	PowerDefault = "poe"
	PowerNone    = "none"
)

// A HardRebooter reboots a node without its cooperation: a power-cycle for
// a physical node, a VM restart for a virtual one. HardReboot blocks until
// the node has been restarted (power back on, VM started) or the attempt
// failed, and honours ctx. It must be safe for concurrent use; drivers that
// batch (one SNMP request per switch) do so internally.
type HardRebooter interface {
	// Method names the method in results: "PoE-reboot", "vnode hard-reboot".
	Method() string
	HardReboot(ctx context.Context, n Node) error
}

// A CutReporter is a HardRebooter whose power source can say whether the
// power was cut: the engine calls HardRebootCut instead of HardReboot and
// records the Cut in the attempt.
type CutReporter interface {
	HardRebooter
	HardRebootCut(ctx context.Context, n Node) (power.Cut, error)
}

// Config configures an Engine.
type Config struct {
	// ConnectTimeout and ReplyTimeout bound the soft attempt.
	ConnectTimeout time.Duration
	ReplyTimeout   time.Duration
	// HardTimeout bounds one hard attempt.
	HardTimeout time.Duration
	// Fanout bounds the node pipelines running at once.
	Fanout int
	// Physical and Virtual reboot nodes the hard way; nil means no driver.
	Physical HardRebooter
	Virtual  HardRebooter
	// Methods reboot physical nodes whose Node.Power names them (ipmi,
	// redfish, command).
	Methods map[string]HardRebooter
	Logger  *slog.Logger
}

// DefaultConfig returns the default configuration, without drivers.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout: netservice.DefaultConnectTimeout,
		ReplyTimeout:   netservice.DefaultReplyTimeout,
		HardTimeout:    60 * time.Second,
		Fanout:         1024,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for name, d := range map[string]time.Duration{
		"connect timeout": c.ConnectTimeout, "reply timeout": c.ReplyTimeout, "hard timeout": c.HardTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("reboot engine %s: must be > 0 (got %s)", name, d)
		}
	}
	if c.Fanout <= 0 {
		return fmt.Errorf("reboot engine fan-out: must be > 0 (got %d)", c.Fanout)
	}
	return nil
}

// Engine runs reboots. It is safe for concurrent use: a node already being
// rebooted by one call is not rebooted again by another; the second call
// gets the outcome of the reboot in progress.
type Engine struct {
	cfg Config
	req *netservice.Requester
	log *slog.Logger

	mu sync.Mutex
	// +checklocks:mu
	inflight map[string]*flight
}

type flight struct {
	done   chan struct{}
	result Result
}

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:      cfg,
		req:      &netservice.Requester{ConnectTimeout: cfg.ConnectTimeout, ReplyTimeout: cfg.ReplyTimeout},
		log:      log,
		inflight: make(map[string]*flight),
	}, nil
}

// Attempt is one method tried on a node.
type Attempt struct {
	Method string
	Err    error // nil if the method worked
	// Cut is what the power source said of the cut; nil when it cannot
	// say (PoE today, a soft reboot).
	Cut      *power.Cut
	Started  time.Time
	Finished time.Time
}

// Result is the outcome of one node's reboot.
type Result struct {
	Node Node
	OK   bool
	// Method rebooted the node; empty if none did.
	Method    string
	Attempts  []Attempt
	Requested time.Time
	// Ack is when the agent answered OK or the driver reported success.
	Ack      time.Time
	Finished time.Time
	// Joined is true when the node was already being rebooted by another
	// request, whose outcome this is.
	Joined bool
}

// Err returns the error of the last attempt, nil if the node was rebooted.
func (r Result) Err() error {
	if r.OK || len(r.Attempts) == 0 {
		return nil
	}
	return r.Attempts[len(r.Attempts)-1].Err
}

// MayHaveActed reports whether the reboot may have acted on the node: it
// rebooted it, or an attempt failed in a way that leaves that possible
// (the request was sent and no reply came, the connection broke, a power
// device did not answer or answered an error midway). It is false when
// every attempt failed before anything reached the node: the connection
// was refused or never set up, there is no route, the agent answered KO
// (it then starts nothing, netservice.Node), no power method, the switch
// forbids it, the node's port is unknown, or the attempt never started.
// The boot tracker uses it to know whether the node's next boot can be
// this reboot's.
func (r Result) MayHaveActed() bool {
	if r.OK {
		return true
	}
	for _, a := range r.Attempts {
		if !untouched(a) {
			return true
		}
	}
	return false
}

// untouched reports whether a failed attempt provably did nothing to the
// node.
func untouched(a Attempt) bool { return Untouched(a.Method, ErrorCode(a.Err)) }

// Untouched reports whether a failed attempt, known by its method and
// its error's ErrorCode (as the history keeps them), provably did nothing
// to the node: it never started, its connection was refused, not set up
// in time or had no route (a soft attempt's "unreachable"; a power
// device's means it did not answer, maybe midway), the agent answered
// KO, the node has no power method, the switch forbids it or the node's
// port is unknown. MayHaveActed and the history's reading of a failed
// reboot's record (history.MayHaveActed) share it.
func Untouched(method, code string) bool {
	switch code {
	case "refused", "connect-timeout", "ko", "no-method", "forbidden", "unknown-position":
		return true
	case "unreachable":
		return method == MethodSoft
	}
	return method == "none" // never started
}

// Reboot reboots nodes and returns one Result per node, in input order.
// hard skips the soft attempt. progress, if not nil, is called once per
// node as soon as its outcome is known, from any goroutine (calls may be
// concurrent). When ctx ends, pending nodes get ctx's error.
func (e *Engine) Reboot(ctx context.Context, nodes []Node, hard bool, progress func(i int, r Result)) []Result {
	return e.RebootObserved(ctx, nodes, hard, ProgressFunc(progress))
}

// An Observer follows the node pipelines of one RebootObserved call.
type Observer interface {
	// Started is called once for each node whose pipeline the call runs
	// itself (not for a node it joins, nor one never started because ctx
	// ended), on the pipeline's goroutine before its first step; the
	// pipeline waits for it, so that what it records (the reboot's
	// history row) is there before the node is touched. Calls may be
	// concurrent.
	Started(i int, n Node)
	// Finished is called once per node as soon as its outcome is known,
	// after Started for that node if it was called, from any goroutine
	// (calls may be concurrent).
	Finished(i int, r Result)
}

// ProgressFunc is an Observer that only follows outcomes; nil does nothing.
type ProgressFunc func(i int, r Result)

// Started does nothing.
func (ProgressFunc) Started(int, Node) {}

// Finished calls f.
func (f ProgressFunc) Finished(i int, r Result) {
	if f != nil {
		f(i, r)
	}
}

// RebootObserved is Reboot with an Observer, which must not be nil.
func (e *Engine) RebootObserved(ctx context.Context, nodes []Node, hard bool, obs Observer) []Result {
	start := time.Now()
	results := make([]Result, len(nodes))
	finish := func(i int, r Result) {
		results[i] = r
		obs.Finished(i, r)
	}
	// Fanout bounds the soft attempts (sockets and agents' attention).
	// Hard reboots and joins run beside them, unbounded: they wait on
	// power drivers that batch their work (one SET per switch), and must
	// not hold a slot through a power-cycle delay.
	var g errgroup.Group
	g.SetLimit(e.cfg.Fanout)
	var rest sync.WaitGroup
	for i, n := range nodes {
		if err := ctx.Err(); err != nil {
			now := time.Now()
			finish(i, Result{Node: n, Requested: now, Finished: now,
				Attempts: []Attempt{{Method: "none", Err: fmt.Errorf("reboot of %s not started: %w", n.Name, err), Started: now, Finished: now}}})
			continue
		}
		f, leader := e.join(n.MAC)
		if !leader {
			rest.Go(func() {
				select {
				case <-f.done:
					r := f.result
					r.Joined = true
					finish(i, r)
				case <-ctx.Done():
					now := time.Now()
					finish(i, Result{Node: n, Requested: now, Finished: now,
						Attempts: []Attempt{{Method: "none", Err: fmt.Errorf("wait for reboot of %s in progress: %w", n.Name, ctx.Err()), Started: now, Finished: now}}})
				}
			})
			continue
		}
		done := func(r Result) {
			f.result = r
			e.leave(n.MAC, f)
			finish(i, r)
		}
		if hard || n.PoweredOff {
			rest.Go(func() {
				obs.Started(i, n)
				done(e.hardStep(ctx, n, Result{Node: n, Requested: time.Now()}))
			})
			continue
		}
		g.Go(func() error {
			obs.Started(i, n)
			r := e.softStep(ctx, n)
			if r.OK {
				done(r)
			} else {
				rest.Go(func() { done(e.hardStep(ctx, n, r)) })
			}
			return nil // an error would cancel the other nodes
		})
	}
	g.Wait()
	rest.Wait()
	ok := 0
	for _, r := range results {
		if r.OK {
			ok++
		}
	}
	e.log.Info("reboot done", "nodes", len(nodes), "rebooted", ok, "failed", len(nodes)-ok, "elapsed", time.Since(start))
	return results
}

// join registers a reboot of mac, or finds the one in progress.
func (e *Engine) join(mac string) (f *flight, leader bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.inflight[mac]; f != nil {
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	e.inflight[mac] = f
	return f, true
}

func (e *Engine) leave(mac string, f *flight) {
	e.mu.Lock()
	delete(e.inflight, mac)
	e.mu.Unlock()
	close(f.done)
}

// softStep is the first step of a node's pipeline: the REBOOT request.
func (e *Engine) softStep(ctx context.Context, n Node) Result {
	r := Result{Node: n, Requested: time.Now()}
	a := Attempt{Method: MethodSoft, Started: r.Requested}
	_, a.Err = e.req.Do(ctx, n.Addr, netservice.Request{Verb: netservice.VerbReboot, Args: kexecArgs[n.KexecAllow]})
	a.Finished = time.Now()
	r.Attempts = append(r.Attempts, a)
	// The level is looked at first: a call builds its attributes (a few
	// allocations a node) even when the level is off.
	debug := e.log.Enabled(ctx, slog.LevelDebug)
	if a.Err == nil {
		r.OK, r.Method, r.Ack, r.Finished = true, MethodSoft, a.Finished, a.Finished
		if debug {
			e.log.Debug("rebooted", "node", n.Name, "driver", MethodSoft, "elapsed", a.Finished.Sub(r.Requested))
		}
		return r
	}
	if debug {
		e.log.Debug("soft reboot failed, trying hard reboot", "node", n.Name, "err", a.Err)
	}
	return r
}

// kexecArgs are the REBOOT request's arguments, by Node.KexecAllow; shared,
// read only.
var kexecArgs = map[bool][]string{false: {"kexec.allow=false"}, true: {"kexec.allow=true"}}

// hardStep ends a node's pipeline when the soft step was skipped or
// failed: the hard reboot, at once.
func (e *Engine) hardStep(ctx context.Context, n Node, r Result) Result {
	if ctx.Err() == nil {
		a := e.hardReboot(ctx, n)
		r.Attempts = append(r.Attempts, a)
		if a.Err == nil {
			r.OK, r.Method, r.Ack = true, a.Method, a.Finished
		}
	} else if len(r.Attempts) == 0 {
		now := time.Now()
		r.Attempts = append(r.Attempts, Attempt{Method: "none", Err: fmt.Errorf("reboot of %s not started: %w", n.Name, ctx.Err()), Started: now, Finished: now})
	}
	r.Finished = time.Now()
	if r.OK {
		a := r.Attempts[len(r.Attempts)-1]
		if a.Cut != nil {
			e.log.Info("rebooted", "node", n.Name, "driver", r.Method, "cut_verified", a.Cut.Verified, "cut", a.Cut.Detail, "elapsed", r.Finished.Sub(r.Requested))
		} else {
			e.log.Debug("rebooted", "node", n.Name, "driver", r.Method, "elapsed", r.Finished.Sub(r.Requested))
		}
	} else {
		e.log.Warn("reboot failed", "node", n.Name, "err", r.Err(), "elapsed", r.Finished.Sub(r.Requested))
	}
	return r
}

func (e *Engine) hardReboot(ctx context.Context, n Node) Attempt {
	d := e.cfg.Physical
	a := Attempt{Method: MethodHard, Started: time.Now()}
	switch {
	case n.Virtual:
		d = e.cfg.Virtual
	case n.Power == PowerNone:
		a.Err, a.Finished = fmt.Errorf("%w: power.method of %s is none", ErrNoMethod, n.Name), a.Started
		return a
	case n.Power != "" && n.Power != PowerDefault:
		d = e.cfg.Methods[n.Power]
		if d == nil {
			a.Err, a.Finished = fmt.Errorf("%w: power.method %s of %s has no driver on this server", ErrNoMethod, n.Power, n.Name), a.Started
			return a
		}
	}
	if d == nil {
		a.Err, a.Finished = ErrNoMethod, a.Started
		return a
	}
	a.Method = d.Method()
	hctx, cancel := context.WithTimeout(ctx, e.cfg.HardTimeout)
	defer cancel()
	if cr, ok := d.(CutReporter); ok {
		var cut power.Cut
		cut, a.Err = cr.HardRebootCut(hctx, n)
		if cut != (power.Cut{}) { // the zero Cut: the source could not say
			a.Cut = &cut
		}
	} else {
		a.Err = d.HardReboot(hctx, n)
	}
	if a.Err != nil && hctx.Err() != nil && ctx.Err() == nil {
		a.Err = fmt.Errorf("no outcome after %s: %w", e.cfg.HardTimeout, a.Err)
	}
	a.Finished = time.Now()
	return a
}

// ErrorCode classifies an attempt's error for scripts: the soft reboot's
// netservice kinds (refused, reply-timeout, ko, ...), the power drivers'
// kinds (forbidden, unknown-position, ...), no-method, canceled, or "error".
func ErrorCode(err error) string {
	var ne *netservice.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ne):
		return ne.Kind.String()
	case errors.Is(err, ErrNoMethod):
		return "no-method"
	case errors.Is(err, power.ErrForbidden):
		return "forbidden"
	case errors.Is(err, power.ErrUnknownPosition):
		return "unknown-position"
	case errors.Is(err, power.ErrNotPowered):
		return "not-powered"
	case errors.Is(err, power.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, power.ErrDenied):
		return "denied"
	case errors.Is(err, power.ErrNotCut):
		return "not-cut"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}
