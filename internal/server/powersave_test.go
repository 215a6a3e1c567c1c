package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/powersave"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/poereboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Powersave tests use 127.62.0.0/16.

// psRig is a server with the PoE driver, a simulated switch sw1 (poe.reboots
// on) and a second one sw2 (off), and a clock the test moves.
type psRig struct {
	srv  *Server
	c    *client.Client
	st   store.Store
	sims map[string]*snmpswitch.Switch
	logs *testutil.Buffer

	// clocked gives the server a powersave on another clock (before
	// it serves).
	clocked func(now func() time.Time)

	mu    sync.Mutex
	now   time.Time
	nodes int
}

func (r *psRig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

func (r *psRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func newPSRig(t *testing.T, idle time.Duration, octet int) *psRig {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &psRig{st: st, sims: map[string]*snmpswitch.Switch{}, logs: &testutil.Buffer{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(teeWriter{t, r.logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pc := poe.DefaultConfig()
	pc.Timeout, pc.Retries = 200*time.Millisecond, 0
	drv, err := poe.New(pc, poereboot.Directory{Store: st}, poereboot.Journal{Store: st}, log)
	if err != nil {
		t.Fatal(err)
	}
	rc := reboot.DefaultConfig()
	rc.ConnectTimeout, rc.ReplyTimeout = 300*time.Millisecond, 300*time.Millisecond
	rc.Physical = poereboot.New(st, drv)
	srv, err := New(t.Context(), Config{Store: st, Reboot: rc, Logger: log, PoE: drv, Powersave: idle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() }) // before the store closes: it flushes the platform log
	r.srv = srv
	r.clocked = func(now func() time.Time) {
		srv.ps = powersave.New(powersave.Config{Idle: idle, Store: st, PoE: drv, Tracker: srv.boots, Logger: log, Now: now})
	}
	r.clocked(r.clock)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	if r.c, err = client.New(hs.URL, tokenClient(t, st)); err != nil {
		t.Fatal(err)
	}
	for k, reboots := range []string{"true", "false"} {
		name := []string{"sw1", "sw2"}[k]
		ip := net.IPv4(127, byte(octet), 255, byte(k+1)).String()
		sim, err := snmpswitch.Start(snmpswitch.Config{Name: name, Addr: ip + ":0", Ports: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		r.sims[name] = sim
		_, port, _ := net.SplitHostPort(sim.Addr())
		if _, err := r.c.AddDevice(ctx, api.AddDevice{Name: name, IP: ip, Type: "switch"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.c.SetConfig(ctx, api.ConfigRequest{Set: name, Settings: []string{"snmp.version=2", "snmp.community=private",
			"snmp.port=" + port, "lldp.explore=true", "poe.reboots=" + reboots, "poe.delay=100ms"}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

type teeWriter struct {
	t *testing.T
	b *testutil.Buffer
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.b.Write(p)
	return w.t.Output().Write(p)
}

// node registers a node (no agent: it answers nothing) on a switch port
// (none if sw is empty) and returns its MAC.
func (r *psRig) node(t *testing.T, name, sw string, port int) string {
	t.Helper()
	r.mu.Lock()
	r.nodes++
	k := r.nodes
	r.mu.Unlock()
	n, err := r.c.ReportNode(t.Context(), api.NodeReport{MAC: fmt.Sprintf("02:62:00:00:00:%02x", k), IP: fmt.Sprintf("127.62.0.%d", k), Name: name, Model: "rpi-b"})
	if err != nil {
		t.Fatal(err)
	}
	if sw != "" {
		if err := r.c.SetLink(t.Context(), api.Link{Node: name, Switch: sw, Port: port}); err != nil {
			t.Fatal(err)
		}
	}
	return n.MAC
}

// powered says whether the port is enabled on the simulated switch.
func (r *psRig) powered(sw string, port int) bool {
	on, _, _ := r.sims[sw].Port(port)
	return on
}

func (r *psRig) sweep(t *testing.T) []string {
	t.Helper()
	macs, err := r.srv.ps.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(macs)
	return macs
}

func TestPowersave(t *testing.T) {
	t.Parallel()
	r := newPSRig(t, DefaultPowersave, 62)
	ctx := t.Context()
	free := r.node(t, "free", "sw1", 1)
	r.node(t, "owned", "sw1", 2)
	r.node(t, "other", "sw2", 1) // poe.reboots=false
	r.node(t, "nowhere", "", 0)  // position unknown
	if _, err := r.c.Ownership(ctx, api.OwnershipRequest{Set: "owned", Action: "acquire", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}

	r.advance(DefaultPowersave - time.Minute)
	if got := r.sweep(t); len(got) != 0 {
		t.Fatalf("sweep before the idle period powered off %v", got)
	}
	r.advance(time.Minute)
	if got := r.sweep(t); !slices.Equal(got, []string{free}) {
		t.Fatalf("sweep after 2 h powered off %v, want only the free node on a poe.reboots switch (%s)", got, free)
	}
	if r.powered("sw1", 1) || !r.powered("sw1", 2) || !r.powered("sw2", 1) {
		t.Errorf("ports after sweep: sw1:1 %t sw1:2 %t sw2:1 %t; want only sw1:1 off", r.powered("sw1", 1), r.powered("sw1", 2), r.powered("sw2", 1))
	}
	offs, _ := r.st.PoEOffs(ctx)
	if len(offs) != 1 || offs[0].Port != 1 || offs[0].Reason != power.ReasonPowersave {
		t.Errorf("power journal = %+v, want port 1 recorded with reason powersave", offs)
	}
	// The boot tracker owns the flag: down at once, in the store once flushed.
	if st, booted := r.srv.boots.Status(free); booted || st.Cause != api.CausePowersave {
		t.Errorf("node powered off by powersave: booted %v, %+v; want down, cause powersave", booted, st)
	}
	r.srv.boots.Flush()
	if d, _ := r.st.Device(ctx, free); d.Booted {
		t.Error("node powered off by powersave still marked booted in the store")
	}
	if !strings.Contains(r.logs.String(), "powersave: nodes powered off") {
		t.Error("powersave did not log the nodes it powered off")
	}
	if got := r.sweep(t); len(got) != 0 {
		t.Errorf("second sweep powered off %v again", got)
	}

	// A reboot powers it on without a soft attempt, and restarts its idle time.
	res, err := r.c.Reboot(ctx, api.RebootRequest{Set: "free", Requester: "bob"}, nil)
	if err != nil || len(res) != 1 || !res[0].OK || res[0].Method != api.MethodPoE || len(res[0].Attempts) != 1 {
		t.Fatalf("reboot of a powersaved node = %+v, %v; want one PoE-reboot attempt, OK", res, err)
	}
	if !r.powered("sw1", 1) {
		t.Error("reboot left the powersaved port off")
	}
	if offs, _ := r.st.PoEOffs(ctx); len(offs) != 0 {
		t.Errorf("journal after reboot = %+v, want empty", offs)
	}
	r.advance(DefaultPowersave - time.Second)
	if got := r.sweep(t); len(got) != 0 {
		t.Errorf("sweep right after a reboot powered off %v", got)
	}

	// WakeNodes powers it on again; nodes not in powersave are left alone.
	r.advance(time.Second)
	if got := r.sweep(t); len(got) != 1 {
		t.Fatalf("sweep 2 h after the reboot powered off %v", got)
	}
	owned, _ := r.st.DeviceByName(ctx, "owned")
	woken, err := r.srv.WakeNodes(ctx, []string{owned.MAC, free})
	if err != nil || !slices.Equal(woken, []string{free}) || !r.powered("sw1", 1) {
		t.Fatalf("WakeNodes = %v, %v (port on: %t); want %s woken", woken, err, r.powered("sw1", 1), free)
	}
	if woken, err := r.srv.WakeNodes(ctx, []string{free}); err != nil || len(woken) != 0 {
		t.Errorf("WakeNodes of an awake node = %v, %v; want nothing", woken, err)
	}

	// Acquiring a powersaved node powers it on; releasing one starts its idle time.
	r.advance(DefaultPowersave)
	r.sweep(t)
	if r.powered("sw1", 1) {
		t.Fatal("free node not powered off again")
	}
	or, err := r.c.Ownership(ctx, api.OwnershipRequest{Set: "free", Action: "acquire", Requester: "bob"})
	if err != nil || !r.powered("sw1", 1) || !slices.Contains(or.Messages, "Reactivating related switch port(s) in powersave mode.") {
		t.Fatalf("acquire of a powersaved node = %+v, %v (port on: %t); want it powered on", or, err, r.powered("sw1", 1))
	}
	if _, err := r.c.Ownership(ctx, api.OwnershipRequest{Set: "owned", Action: "release", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	r.advance(DefaultPowersave - time.Second)
	if got := r.sweep(t); len(got) != 0 {
		t.Errorf("sweep powered off %v before the released node was idle for the period", got)
	}
	r.advance(time.Second)
	if got := r.sweep(t); !slices.Equal(got, []string{owned.MAC}) {
		t.Errorf("sweep = %v, want the released node %s (the acquired one is owned)", got, owned.MAC)
	}
}

// A port the switch does not switch off is retried after another period.
func TestPowersaveFailureRetriedLater(t *testing.T) {
	t.Parallel()
	r := newPSRig(t, time.Hour, 62)
	r.node(t, "free", "sw1", 5)
	r.sims["sw1"].SetUnreachable(true)
	r.advance(time.Hour)
	if got := r.sweep(t); len(got) != 0 {
		t.Fatalf("sweep with the switch down powered off %v", got)
	}
	if !strings.Contains(r.logs.String(), "powersave: failed to turn off PoE") {
		t.Error("the failure was not logged")
	}
	r.sims["sw1"].SetUnreachable(false)
	r.advance(time.Hour - time.Second)
	if got := r.sweep(t); len(got) != 0 {
		t.Errorf("sweep retried before another period: %v", got)
	}
	r.advance(time.Second)
	if got := r.sweep(t); len(got) != 1 || r.powered("sw1", 5) {
		t.Errorf("sweep after another period = %v, want the node powered off", got)
	}
}

// With powersave disabled, nothing is ever switched off; the loop only runs
// when enabled.
func TestPowersaveDisabled(t *testing.T) {
	t.Parallel()
	r := newPSRig(t, 0, 63)
	r.node(t, "free", "sw1", 1)
	r.advance(1000 * time.Hour)
	if got := r.sweep(t); len(got) != 0 || !r.powered("sw1", 1) {
		t.Errorf("disabled powersave powered off %v", got)
	}
}

// Serve runs the sweeps: with a short idle period a free node goes dark
// without the test calling sweep.
func TestPowersaveLoop(t *testing.T) {
	t.Parallel()
	r := newPSRig(t, time.Millisecond, 64)
	r.clocked(time.Now)
	r.node(t, "free", "sw1", 2)
	ln, err := net.Listen("tcp", "127.64.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.srv.Serve(ctx, ln) }()
	testutil.Eventually(t, 15*time.Second, "the powersave loop to power the idle free node off", func() bool { return !r.powered("sw1", 2) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// Forgetting a powersaved node powers its port on first: no record would be
// left to do it later.
func TestForgetPowersavedNode(t *testing.T) {
	t.Parallel()
	r := newPSRig(t, time.Hour, 62)
	r.node(t, "free", "sw1", 7)
	r.advance(time.Hour)
	if got := r.sweep(t); len(got) != 1 || r.powered("sw1", 7) {
		t.Fatalf("sweep = %v, want the node powered off", got)
	}
	if err := r.c.ForgetDevice(t.Context(), "free", "", false); err != nil {
		t.Fatal(err)
	}
	if !r.powered("sw1", 7) {
		t.Error("port of the forgotten node left off")
	}
	if offs, _ := r.st.PoEOffs(t.Context()); len(offs) != 0 {
		t.Errorf("journal after forget = %+v, want empty", offs)
	}
}
