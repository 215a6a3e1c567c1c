package reboot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// Package tests use 127.10.0.0/16.
var addrs = reboottest.NewAddrs(10)

// hardDriver is a HardRebooter double: it counts calls and can fail or
// block until released.
type hardDriver struct {
	method  string
	err     error
	calls   atomic.Int32
	started chan string   // receives the node name of each call, if not nil
	release chan struct{} // when not nil, calls block until it is closed
}

func (d *hardDriver) Method() string { return d.method }

func (d *hardDriver) HardReboot(ctx context.Context, n reboot.Node) error {
	d.calls.Add(1)
	if d.started != nil {
		d.started <- n.Name
	}
	if d.release != nil {
		select {
		case <-d.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return d.err
}

func newEngine(t *testing.T, mod func(*reboot.Config)) *reboot.Engine {
	t.Helper()
	cfg := reboot.DefaultConfig()
	cfg.ConnectTimeout, cfg.ReplyTimeout = time.Second, 300*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(&cfg)
	}
	e, err := reboot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func nodes(t *testing.T, bs ...reboottest.Behaviour) ([]reboot.Node, []*reboottest.Agent) {
	t.Helper()
	var ns []reboot.Node
	var ags []*reboottest.Agent
	for i, b := range bs {
		ag := addrs.StartT(t, b)
		ns = append(ns, reboot.Node{Name: fmt.Sprintf("n%d", i), MAC: fmt.Sprintf("52:54:00:00:01:%02x", i), Addr: ag.Addr, KexecAllow: i%2 == 0})
		ags = append(ags, ag)
	}
	return ns, ags
}

type outcome struct {
	OK       bool
	Method   string
	Attempts []string // "method: error" or "method"
	Codes    []string
}

func summarize(r reboot.Result) outcome {
	o := outcome{OK: r.OK, Method: r.Method}
	for _, a := range r.Attempts {
		s := a.Method
		if a.Err != nil {
			s += ": " + a.Err.Error()
		}
		o.Attempts = append(o.Attempts, s)
		o.Codes = append(o.Codes, reboot.ErrorCode(a.Err))
	}
	return o
}

func TestSoftAndFallback(t *testing.T) {
	t.Parallel()
	ns, ags := nodes(t, reboottest.OK, reboottest.OK, reboottest.Refused, reboottest.BlackHole, reboottest.KO, reboottest.Garbage)
	e := newEngine(t, nil)
	got := e.Reboot(t.Context(), ns, false, nil)
	noMethod := "hard-reboot: no hard-reboot method"
	want := []outcome{
		{OK: true, Method: "soft-reboot", Attempts: []string{"soft-reboot"}, Codes: []string{""}},
		{OK: true, Method: "soft-reboot", Attempts: []string{"soft-reboot"}, Codes: []string{""}},
		{Attempts: []string{"soft-reboot: connection refused", noMethod}, Codes: []string{"refused", "no-method"}},
		{Attempts: []string{"soft-reboot: timed out waiting for reply", noMethod}, Codes: []string{"reply-timeout", "no-method"}},
		{Attempts: []string{"soft-reboot: " + reboottest.KOReason, noMethod}, Codes: []string{"ko", "no-method"}},
		{Attempts: []string{`soft-reboot: node did not respond properly: "` + reboottest.GarbageReply + `"`, noMethod}, Codes: []string{"bad-reply", "no-method"}},
	}
	var gotO []outcome
	for _, r := range got {
		gotO = append(gotO, summarize(r))
	}
	if diff := cmp.Diff(want, gotO); diff != "" {
		t.Errorf("Reboot() outcomes (-want +got):\n%s", diff)
	}
	for i, ag := range ags[:2] {
		<-ag.Rebooted()
		wantArgs := [][]string{{fmt.Sprintf("kexec.allow=%t", ns[i].KexecAllow)}}
		if diff := cmp.Diff(wantArgs, ag.Reboots()); diff != "" {
			t.Errorf("agent %s REBOOT args (-want +got):\n%s", ns[i].Name, diff)
		}
	}
	for i, r := range got {
		if r.Node.Name != ns[i].Name {
			t.Errorf("result %d is for %s, want %s (input order)", i, r.Node.Name, ns[i].Name)
		}
		if r.OK && (r.Ack.IsZero() || r.Ack.Before(r.Requested)) {
			t.Errorf("%s: ack %v, requested %v; want ack after request", r.Node.Name, r.Ack, r.Requested)
		}
	}
}

func TestHardDriver(t *testing.T) {
	t.Parallel()
	ns, ags := nodes(t, reboottest.Refused, reboottest.OK, reboottest.OK)
	ns[2].Virtual = true
	phys := &hardDriver{method: "PoE-reboot"}
	virt := &hardDriver{method: "vnode hard-reboot", err: errors.New("vm runner gone")}
	e := newEngine(t, func(c *reboot.Config) { c.Physical, c.Virtual = phys, virt })

	got := e.Reboot(t.Context(), ns[:1], false, nil)
	want := outcome{OK: true, Method: "PoE-reboot", Attempts: []string{"soft-reboot: connection refused", "PoE-reboot"}, Codes: []string{"refused", ""}}
	if diff := cmp.Diff(want, summarize(got[0])); diff != "" {
		t.Errorf("refused node with PoE driver (-want +got):\n%s", diff)
	}

	// --hard: the agents must not see a REBOOT.
	got = e.Reboot(t.Context(), ns[1:], true, nil)
	wantHard := []outcome{
		{OK: true, Method: "PoE-reboot", Attempts: []string{"PoE-reboot"}, Codes: []string{""}},
		{Attempts: []string{"vnode hard-reboot: vm runner gone"}, Codes: []string{"error"}},
	}
	if diff := cmp.Diff(wantHard, []outcome{summarize(got[0]), summarize(got[1])}); diff != "" {
		t.Errorf("--hard (-want +got):\n%s", diff)
	}
	if n := len(ags[1].Reboots()) + len(ags[2].Reboots()); n != 0 {
		t.Errorf("--hard: agents got %d REBOOT requests, want 0", n)
	}
	if phys.calls.Load() != 2 || virt.calls.Load() != 1 {
		t.Errorf("driver calls: physical %d, virtual %d; want 2 and 1", phys.calls.Load(), virt.calls.Load())
	}
}

func TestPoweredOffSkipsSoft(t *testing.T) {
	t.Parallel()
	ns, ags := nodes(t, reboottest.OK)
	ns[0].PoweredOff = true
	e := newEngine(t, func(c *reboot.Config) { c.Physical = &hardDriver{method: "PoE-reboot"} })
	got := e.Reboot(t.Context(), ns, false, nil)
	if diff := cmp.Diff([]string{"PoE-reboot"}, summarize(got[0]).Attempts); diff != "" {
		t.Errorf("powered-off node attempts (-want +got):\n%s", diff)
	}
	if len(ags[0].Reboots()) != 0 {
		t.Errorf("powered-off node's agent got a REBOOT")
	}
}

// A black-holed node must not delay the others: every healthy node's
// outcome is reported before the dead one's.
func TestDeadNodeDelaysNobody(t *testing.T) {
	t.Parallel()
	ns, _ := nodes(t, reboottest.BlackHole, reboottest.OK, reboottest.OK, reboottest.OK)
	e := newEngine(t, func(c *reboot.Config) { c.ReplyTimeout = 2 * time.Second })
	var mu sync.Mutex
	var order []string
	e.Reboot(t.Context(), ns, false, func(i int, r reboot.Result) {
		mu.Lock()
		order = append(order, r.Node.Name)
		mu.Unlock()
	})
	if len(order) != 4 || order[3] != "n0" {
		t.Errorf("progress order %v, want the black-holed n0 last", order)
	}
}

// Two requests on overlapping sets reboot a shared node once; the second
// request reports the outcome of the reboot in progress.
func TestOverlappingRequests(t *testing.T) {
	t.Parallel()
	ns, ags := nodes(t, reboottest.Refused, reboottest.OK, reboottest.OK)
	drv := &hardDriver{method: "PoE-reboot", started: make(chan string, 4), release: make(chan struct{})}
	e := newEngine(t, func(c *reboot.Config) { c.Physical = drv })

	first := make(chan []reboot.Result)
	go func() { first <- e.Reboot(t.Context(), ns[:2], false, nil) }()
	<-drv.started // n0 is now in its hard attempt

	secondDone := make(chan struct{})
	var second []reboot.Result
	go func() {
		defer close(secondDone)
		second = e.Reboot(t.Context(), []reboot.Node{ns[0], ns[2]}, false, nil)
	}()
	// The engine joins or starts each node's reboot in input order: once
	// n2 is rebooted, the second request has joined n0's reboot.
	<-ags[2].Rebooted()
	close(drv.release)
	r1 := <-first
	<-secondDone

	if drv.calls.Load() != 1 {
		t.Errorf("hard reboots of the shared node: %d, want 1", drv.calls.Load())
	}
	if !second[0].Joined || !second[0].OK || r1[0].Joined {
		t.Errorf("shared node: first joined=%v, second joined=%v ok=%v; want only the second joined, OK",
			r1[0].Joined, second[0].Joined, second[0].OK)
	}
	if !r1[1].OK || !second[1].OK {
		t.Errorf("other nodes: %v, %v; want both OK", r1[1].OK, second[1].OK)
	}
}

func TestFanoutOne(t *testing.T) {
	t.Parallel()
	ns, _ := nodes(t, reboottest.OK, reboottest.OK, reboottest.OK)
	e := newEngine(t, func(c *reboot.Config) { c.Fanout = 1 })
	for _, r := range e.Reboot(t.Context(), ns, false, nil) {
		if !r.OK {
			t.Errorf("%s: %v", r.Node.Name, r.Err())
		}
	}
}

// TestHardRebootsHoldNoSlot: the fan-out bounds soft attempts only. Hard
// reboots wait on power drivers (a power-cycle lasts poe.delay) and must
// all be in the driver together, so that it batches them per switch.
func TestHardRebootsHoldNoSlot(t *testing.T) {
	t.Parallel()
	const n = 8
	hd := &hardDriver{method: "PoE-reboot", started: make(chan string, n), release: make(chan struct{})}
	e := newEngine(t, func(c *reboot.Config) { c.Fanout, c.Physical = 2, hd })
	var ns []reboot.Node
	for i := range n {
		ns = append(ns, reboot.Node{Name: fmt.Sprintf("n%d", i), MAC: fmt.Sprintf("02:00:00:00:00:%02x", i), Addr: "127.10.255.1:1"})
	}
	for _, hard := range []bool{true, false} { // false: soft refused, then hard
		done := make(chan []reboot.Result, 1)
		go func() { done <- e.Reboot(t.Context(), ns, hard, nil) }()
		for range n {
			select {
			case <-hd.started:
			case <-time.After(20 * time.Second):
				t.Fatalf("hard=%v: fewer than %d hard reboots in flight at once with a fan-out of 2", hard, n)
			}
		}
		close(hd.release)
		for _, r := range <-done {
			if !r.OK || r.Method != "PoE-reboot" {
				t.Errorf("hard=%v: %s: ok=%v method=%q err=%v", hard, r.Node.Name, r.OK, r.Method, r.Err())
			}
		}
		hd.release = make(chan struct{})
	}
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	ns, ags := nodes(t, reboottest.OK)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := newEngine(t, nil)
	got := e.Reboot(ctx, ns, false, nil)
	if got[0].OK || !errors.Is(got[0].Err(), context.Canceled) || reboot.ErrorCode(got[0].Err()) != "canceled" {
		t.Errorf("canceled reboot: ok=%v err=%v", got[0].OK, got[0].Err())
	}
	if len(ags[0].Reboots()) != 0 {
		t.Errorf("canceled reboot reached the agent")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := reboot.DefaultConfig()
	cfg.ReplyTimeout = -time.Second
	if _, err := reboot.New(cfg); err == nil || err.Error() != "reboot engine reply timeout: must be > 0 (got -1s)" {
		t.Errorf("New(negative reply timeout) = %v", err)
	}
	cfg = reboot.DefaultConfig()
	cfg.Fanout = 0
	if _, err := reboot.New(cfg); err == nil {
		t.Errorf("New(fanout 0) = nil error")
	}
}

// recorder is an Observer that checks, at each Started, that the node has
// not been touched yet.
type recorder struct {
	t     *testing.T
	ags   map[string]*reboottest.Agent
	drv   *hardDriver
	mu    sync.Mutex
	order map[string]string // node: "started" then "finished"
}

func (o *recorder) Started(i int, n reboot.Node) {
	if ag := o.ags[n.Name]; ag != nil && len(ag.Reboots()) != 0 {
		o.t.Errorf("Started(%s) after its agent got REBOOT", n.Name)
	}
	if n.Name == "n1" && o.drv.calls.Load() != 0 { // the one node of the call to go hard
		o.t.Errorf("Started(%s) after its hard reboot began", n.Name)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.order[n.Name] += "started "
}

func (o *recorder) Finished(i int, r reboot.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.order[r.Node.Name] += "finished"
}

// The observer hears of each pipeline the call runs before the node is
// touched, and of every outcome after; a joined node has no Started.
func TestObserverStartedBeforeFirstStep(t *testing.T) {
	t.Parallel()
	ns, ags := nodes(t, reboottest.OK, reboottest.Refused, reboottest.OK)
	drv := &hardDriver{method: "PoE-reboot", started: make(chan string, 4), release: make(chan struct{})}
	e := newEngine(t, func(c *reboot.Config) { c.Physical = drv })
	obs := &recorder{t: t, ags: map[string]*reboottest.Agent{ns[0].Name: ags[0], ns[2].Name: ags[2]}, drv: drv, order: map[string]string{}}

	// n2 is in a hard reboot of its own when the observed call joins it.
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		e.Reboot(t.Context(), ns[2:], true, nil)
	}()
	<-drv.started
	drv.calls.Store(0)
	go func() {
		<-drv.started // n1's hard attempt, after its soft one failed
		close(drv.release)
	}()
	got := e.RebootObserved(t.Context(), ns, false, obs)
	<-firstDone

	if !got[2].Joined {
		t.Fatalf("n2: joined = false, want the observed call to join the reboot in progress")
	}
	want := map[string]string{"n0": "started finished", "n1": "started finished", "n2": "finished"}
	if diff := cmp.Diff(want, obs.order); diff != "" {
		t.Errorf("observer calls (-want +got):\n%s", diff)
	}
}

// MayHaveActed tells a failed reboot that may still reboot the node (a
// request sent and no reply, a power device that did not answer) from one
// that reached nothing (refused, KO, no method, forbidden, not started).
func TestMayHaveActed(t *testing.T) {
	t.Parallel()
	ns, _ := nodes(t, reboottest.OK, reboottest.Refused, reboottest.BlackHole, reboottest.KO, reboottest.Garbage)
	want := []bool{true, false, true, false, true} // garbage: the agent read the request
	for i, r := range newEngine(t, nil).Reboot(t.Context(), ns, false, nil) {
		if got := r.MayHaveActed(); got != want[i] {
			t.Errorf("%s (%+v): MayHaveActed() = %t, want %t", r.Node.Name, summarize(r), got, want[i])
		}
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("poe.reboots is not enabled on sw1: %w", power.ErrForbidden), false},
		{fmt.Errorf("%w: switch port of the node unknown", power.ErrUnknownPosition), false},
		{fmt.Errorf("switch sw1: %w", power.ErrUnreachable), true},
		{fmt.Errorf("switch sw1: %w", power.ErrDenied), true}, // maybe at power-on, after the cut
	} {
		e := newEngine(t, func(cfg *reboot.Config) { cfg.Physical = &hardDriver{method: "PoE-reboot", err: c.err} })
		r := e.Reboot(t.Context(), ns[1:2], true, nil)[0]
		if got := r.MayHaveActed(); got != c.want {
			t.Errorf("hard reboot failing with %q: MayHaveActed() = %t, want %t", c.err, got, c.want)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if r := newEngine(t, nil).Reboot(ctx, ns[:1], false, nil)[0]; r.MayHaveActed() {
		t.Errorf("reboot never started (%+v): MayHaveActed() = true, want false", summarize(r))
	}
}
