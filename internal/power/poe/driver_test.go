package poe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/testutil"
)

// directory is a Directory over a map.
type directory struct {
	mu       sync.Mutex
	switches map[string]SwitchConfig
}

func (d *directory) Lookup(_ context.Context, key string) (SwitchConfig, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sw, ok := d.switches[key]
	if !ok {
		return SwitchConfig{}, fmt.Errorf("no switch %q", key)
	}
	return sw, nil
}

func (d *directory) put(key string, sw SwitchConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.switches == nil {
		d.switches = map[string]SwitchConfig{}
	}
	d.switches[key] = sw
}

// rig is a driver with simulated switches.
type rig struct {
	logs     *testutil.Buffer // what the driver logged
	dir      *directory
	journal  *power.MemJournal
	driver   *Driver
	switches map[string]*snmpswitch.Switch
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{dir: &directory{}, journal: &power.MemJournal{}, switches: map[string]*snmpswitch.Switch{}}
	r.logs = &testutil.Buffer{}
	out := io.MultiWriter(t.Output(), r.logs)
	d, err := New(cfg, r.dir, r.journal, slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	r.driver = d
	return r
}

// startSim starts a simulated switch named key, with read-write community
// "rw-s3cret" unless cfg says otherwise. Tests using synctest start switches
// outside the bubble: the agent's goroutine waits on network I/O, which
// would keep the bubble's clock from advancing.
func startSim(t *testing.T, key string, cfg snmpswitch.Config) *snmpswitch.Switch {
	t.Helper()
	cfg.Name = key
	if cfg.Community == "" {
		cfg.Community = "rw-s3cret"
	}
	s, err := snmpswitch.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// register puts the simulated switch in the directory under its name, with
// poe.reboots on, SNMP v2c and community "rw-s3cret" unless sw says
// otherwise.
func (r *rig) register(s *snmpswitch.Switch, sw SwitchConfig) {
	sw.Name = s.Name()
	sw.Address = s.Addr()
	if sw.Version == 0 {
		sw.Version = V2c
	}
	if sw.Community.IsZero() {
		sw.Community = NewCommunity("rw-s3cret")
	}
	sw.Reboots = true
	r.dir.put(s.Name(), sw)
	r.switches[s.Name()] = s
}

func fastConfig() Config {
	c := DefaultConfig()
	c.Timeout = 200 * time.Millisecond
	c.Retries = 1
	return c
}

func outlets(sw string, ports ...int) []power.Outlet {
	var o []power.Outlet
	for _, p := range ports {
		o = append(o, power.Outlet{Switch: sw, Port: p})
	}
	return o
}

// powerLog records the power events of simulated switches.
type powerLog struct {
	mu     sync.Mutex
	events []snmpswitch.PowerEvent
}

func (l *powerLog) record(e snmpswitch.PowerEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *powerLog) of(sw string, port int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		if e.Switch == sw && e.IfIndex == port {
			b.WriteString(map[bool]string{true: "on ", false: "off "}[e.On])
		}
	}
	return strings.TrimSpace(b.String())
}

func TestCycleEachVariantOneSetPerSwitchPerPhase(t *testing.T) {
	t.Parallel()
	for _, v := range []snmpswitch.Variant{snmpswitch.Standard, snmpswitch.Netgear, snmpswitch.TPLink} {
		for _, version := range []Version{V1, V2c} {
			t.Run(fmt.Sprintf("%s-v%s", v, version), func(t *testing.T) {
				t.Parallel()
				var log powerLog
				sim := startSim(t, "sw-a", snmpswitch.Config{Variant: v, OnPower: log.record})
				synctest.Test(t, func(t *testing.T) {
					r := newRig(t, fastConfig())
					r.register(sim, SwitchConfig{Version: version})
					ports := []int{1, 2, 7, 30, 48}
					start := time.Now()
					errs := r.driver.Cycle(t.Context(), outlets("sw-a", ports...))
					for i, err := range errs {
						if err != nil {
							t.Errorf("cycle port %d: %v", ports[i], err)
						}
					}
					if got := time.Since(start); got < DefaultDelay {
						t.Errorf("cycle took %s, want at least poe.delay %s", got, DefaultDelay)
					}
					for _, p := range ports {
						if got := log.of("sw-a", p); got != "off on" {
							t.Errorf("port %d power events = %q, want \"off on\"", p, got)
						}
					}
					if got := log.of("sw-a", 3); got != "" {
						t.Errorf("port 3 (not asked) power events = %q, want none", got)
					}
					if st := sim.Stats(); st.Sets != 2 || st.SetVarbinds != 2*len(ports) {
						t.Errorf("SET PDUs = %d (%d varbinds), want 2 (%d)", st.Sets, st.SetVarbinds, 2*len(ports))
					}
					if recs, _ := r.journal.ListOff(t.Context()); len(recs) != 0 {
						t.Errorf("journal after cycle = %v, want empty", recs)
					}
				})
			})
		}
	}
}

// checkingJournal checks, when an outlet is recorded, that its port is still
// powered and no SET reached the switch: the journal is written before the
// power goes off.
type checkingJournal struct {
	power.MemJournal
	t   *testing.T
	sim *snmpswitch.Switch
	n   int
}

func (j *checkingJournal) RecordOff(ctx context.Context, recs []power.OffRecord) error {
	for _, r := range recs {
		if _, delivering, _ := j.sim.Port(r.Outlet.Port); !delivering {
			j.t.Errorf("port %d recorded in the journal after its power went off", r.Outlet.Port)
		}
	}
	if st := j.sim.Stats(); st.Sets != 0 {
		j.t.Errorf("journal written after %d SETs, want before any", st.Sets)
	}
	j.n += len(recs)
	return j.MemJournal.RecordOff(ctx, recs)
}

func TestJournalWrittenBeforePowerOff(t *testing.T) {
	t.Parallel()
	sim := startSim(t, "sw-a", snmpswitch.Config{})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fastConfig())
		j := &checkingJournal{t: t, sim: sim}
		r.driver.journal = j
		r.register(sim, SwitchConfig{})
		for i, err := range r.driver.Cycle(t.Context(), outlets("sw-a", 3, 4)) {
			if err != nil {
				t.Errorf("cycle %d: %v", i, err)
			}
		}
		if j.n != 2 {
			t.Errorf("journal got %d records, want 2", j.n)
		}
	})
}

func TestJournalFailureLeavesPortsOn(t *testing.T) {
	t.Parallel()
	r := newRig(t, fastConfig())
	sim := startSim(t, "sw-a", snmpswitch.Config{})
	r.register(sim, SwitchConfig{})
	r.journal.FailRecords(errors.New("disk full"))
	errs := r.driver.Cycle(t.Context(), outlets("sw-a", 3))
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "disk full") || !strings.Contains(errs[0].Error(), "port 3 of switch sw-a") {
		t.Errorf("cycle with a failing journal = %v, want an error naming the port and the journal failure", errs[0])
	}
	if st := sim.Stats(); st.Sets != 0 {
		t.Errorf("%d SETs sent although the journal failed, want 0", st.Sets)
	}
}

// TestKilledBetweenOffAndOn cancels the driver's context while the port is
// off (a server killed mid-cycle): the journal keeps the port, and Restore
// through a new driver (the restarted server) powers it on.
func TestKilledBetweenOffAndOn(t *testing.T) {
	t.Parallel()
	ctx, kill := context.WithCancel(t.Context())
	var log powerLog
	sim := startSim(t, "sw-a", snmpswitch.Config{OnPower: func(e snmpswitch.PowerEvent) {
		log.record(e)
		if !e.On {
			kill()
		}
	}})
	r := newRig(t, fastConfig())
	r.register(sim, SwitchConfig{Delay: time.Hour})
	errs := r.driver.Cycle(ctx, outlets("sw-a", 5))
	if !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("cycle killed mid-way = %v, want context.Canceled", errs[0])
	}
	if _, delivering, _ := sim.Port(5); delivering {
		t.Fatal("port 5 is powered after a cycle killed during the off period")
	}
	recs, _ := r.journal.ListOff(t.Context())
	if len(recs) != 1 || recs[0].Outlet != (power.Outlet{Switch: "sw-a", Port: 5}) || recs[0].Reason != power.ReasonHardReboot {
		t.Fatalf("journal after the kill = %+v, want port 5 of sw-a, reason hard-reboot", recs)
	}

	restarted := newRig(t, fastConfig())
	restarted.dir, restarted.journal = r.dir, r.journal
	restarted.driver.dir, restarted.driver.journal = r.dir, r.journal
	res, err := power.Restore(t.Context(), restarted.journal, restarted.driver)
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Restore = %+v, %v; want port 5 restored", res, err)
	}
	if _, delivering, _ := sim.Port(5); !delivering {
		t.Error("port 5 still dark after Restore")
	}
	if got := log.of("sw-a", 5); got != "off on" {
		t.Errorf("port 5 events = %q, want \"off on\"", got)
	}
	if recs, _ := r.journal.ListOff(t.Context()); len(recs) != 0 {
		t.Errorf("journal after Restore = %+v, want empty", recs)
	}
}

func TestRefusesPortsNotPoEPowered(t *testing.T) {
	t.Parallel()
	var log powerLog
	sim := startSim(t, "sw-a", snmpswitch.Config{OnPower: log.record})
	sim.SetDevice(7, false) // the node on port 7 has its own power supply
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fastConfig())
		r.register(sim, SwitchConfig{})
		errs := r.driver.Cycle(t.Context(), outlets("sw-a", 5, 7))
		if errs[0] != nil {
			t.Errorf("cycle port 5: %v", errs[0])
		}
		if !errors.Is(errs[1], power.ErrNotPowered) || !strings.Contains(errs[1].Error(), "port 7 of switch sw-a") {
			t.Errorf("cycle port 7 = %v, want ErrNotPowered naming the port", errs[1])
		}
		if got := log.of("sw-a", 7); got != "off" {
			t.Errorf("port 7 events = %q, want only the \"off\" of SetDevice", got)
		}
		if on, _, _ := sim.Port(7); !on {
			t.Error("port 7 was disabled")
		}
		if st := sim.Stats(); st.SetVarbinds != 2 {
			t.Errorf("SET varbinds = %d, want 2 (port 5 off and on)", st.SetVarbinds)
		}
	})
}

func TestErrorsNameSwitchPortAndCause(t *testing.T) {
	t.Parallel()
	const ro, rw = "ro-s3cret", "rw-s3cret"
	sim := startSim(t, "sw-a", snmpswitch.Config{Community: rw, ReadCommunity: ro})
	cfg := fastConfig()
	cfg.Timeout, cfg.Retries = 50*time.Millisecond, 1
	cases := []struct {
		name      string
		version   Version
		community string
		prepare   func()
		want      error
		wantText  string
	}{
		{"wrong community v2c", V2c, "guess-s3cret", nil, power.ErrUnreachable, "check the SNMP community"},
		{"wrong community v1", V1, "guess-s3cret", nil, power.ErrUnreachable, "after"},
		{"read-only community v2c", V2c, ro, nil, power.ErrDenied, "noAccess"},
		{"read-only community v1", V1, ro, nil, power.ErrDenied, "noSuchName"},
		{"unreachable", V2c, rw, func() { sim.SetUnreachable(true) }, power.ErrUnreachable, sim.Addr()},
		{"slow", V2c, rw, func() { sim.SetLatency(200 * time.Millisecond) }, power.ErrUnreachable, "2 tries"},
		{"set refused", V2c, rw, func() { sim.FailSets(gosnmp.ResourceUnavailable) }, nil, "resourceUnavailable"},
	}
	for _, c := range cases {
		sim.SetUnreachable(false)
		sim.SetLatency(0)
		sim.FailSets(gosnmp.NoError)
		if c.prepare != nil {
			c.prepare()
		}
		r := newRig(t, cfg)
		r.register(sim, SwitchConfig{Version: c.version, Community: NewCommunity(c.community)})
		err := r.driver.Cycle(t.Context(), outlets("sw-a", 9))[0]
		if err == nil {
			t.Errorf("%s: cycle succeeded, want an error", c.name)
			continue
		}
		msg := err.Error()
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: error %q does not wrap %v", c.name, msg, c.want)
		}
		for _, want := range []string{"port 9 of switch sw-a", c.wantText} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %q", c.name, msg, want)
			}
		}
		for _, secret := range []string{ro, rw, "guess-s3cret"} {
			if strings.Contains(msg, secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
				t.Errorf("%s: error %q reveals a community", c.name, msg)
			}
			if strings.Contains(r.logs.String(), secret) {
				t.Errorf("%s: the driver logged a community", c.name)
			}
		}
		if !strings.Contains(r.logs.String(), "switch=sw-a") {
			t.Errorf("%s: the driver logged nothing about sw-a: %s", c.name, r.logs)
		}
		if _, delivering, _ := sim.Port(9); !delivering {
			t.Fatalf("%s: port 9 left dark", c.name)
		}
	}
}

func TestForbiddenUnknownAndNonPoEPorts(t *testing.T) {
	t.Parallel()
	r := newRig(t, fastConfig())
	sim := startSim(t, "sw-a", snmpswitch.Config{Ports: 8})
	r.register(sim, SwitchConfig{})
	locked := startSim(t, "sw-locked", snmpswitch.Config{Ports: 8})
	r.register(locked, SwitchConfig{})
	sw, _ := r.dir.Lookup(t.Context(), "sw-locked")
	sw.Reboots = false
	r.dir.put("sw-locked", sw)

	errs := r.driver.Switch(t.Context(), []power.Change{
		{Outlet: power.Outlet{Switch: "sw-locked", Port: 1}, State: power.Off, Reason: power.ReasonPowersave},
		{Outlet: power.Outlet{Switch: "sw-nowhere", Port: 1}, State: power.Off, Reason: power.ReasonPowersave},
		{Outlet: power.Outlet{Switch: "sw-a", Port: 9}, State: power.Off, Reason: power.ReasonPowersave}, // 10G uplink
		{Outlet: power.Outlet{Switch: "sw-a", Port: 2}, State: power.Off, Reason: power.ReasonPowersave},
		{Outlet: power.Outlet{Switch: "sw-a", Port: 2}, State: power.On},
		{Outlet: power.Outlet{Switch: "sw-locked", Port: 2}, State: power.On},
	})
	wants := []error{power.ErrForbidden, power.ErrUnknownPosition, power.ErrUnsupported, nil, nil, nil}
	for i, want := range wants {
		if i == 4 {
			if errs[i] == nil || !strings.Contains(errs[i].Error(), "in progress") {
				t.Errorf("change %d (same port twice) = %v, want an in-progress error", i, errs[i])
			}
			continue
		}
		if (want == nil) != (errs[i] == nil) || (want != nil && !errors.Is(errs[i], want)) {
			t.Errorf("change %d = %v, want %v", i, errs[i], want)
		}
	}
	if on, _, _ := sim.Port(2); on {
		t.Error("powersave did not switch port 2 off")
	}
	if on, _, _ := locked.Port(1); !on {
		t.Error("port 1 of a switch with poe.reboots=false was switched off")
	}
	recs, _ := r.journal.ListOff(t.Context())
	if len(recs) != 1 || recs[0].Reason != power.ReasonPowersave || recs[0].Outlet.Port != 2 {
		t.Errorf("journal = %+v, want port 2 (powersave)", recs)
	}
	// Waking up: switching on clears the record.
	if err := r.driver.Switch(t.Context(), []power.Change{{Outlet: power.Outlet{Switch: "sw-a", Port: 2}, State: power.On}})[0]; err != nil {
		t.Fatal(err)
	}
	if recs, _ := r.journal.ListOff(t.Context()); len(recs) != 0 {
		t.Errorf("journal after power on = %+v, want empty", recs)
	}
}

func TestManySwitchesOneUnreachable(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Timeout, cfg.Retries = 100*time.Millisecond, 0
	r := newRig(t, cfg)
	var all []power.Outlet
	for i := range 4 {
		sim := startSim(t, fmt.Sprintf("sw-%d", i), snmpswitch.Config{Ports: 16})
		r.register(sim, SwitchConfig{Delay: time.Millisecond})
		all = append(all, outlets(sim.Name(), 1, 2, 3)...)
	}
	r.switches["sw-2"].SetUnreachable(true)
	errs := r.driver.Cycle(t.Context(), all)
	for i, err := range errs {
		down := all[i].Switch == "sw-2"
		if down != (err != nil) || (down && !errors.Is(err, power.ErrUnreachable)) {
			t.Errorf("%s: %v (switch down: %v)", all[i], err, down)
		}
	}
	for name, sim := range r.switches {
		if st := sim.Stats(); name != "sw-2" && st.Sets != 2 {
			t.Errorf("%s: %d SETs, want 2", name, st.Sets)
		}
	}
}

func TestSetsSplitAtLimits(t *testing.T) {
	t.Parallel()
	var log powerLog
	sim := startSim(t, "sw-a", snmpswitch.Config{OnPower: log.record, MaxVarbinds: 10})
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.MaxVarbinds = 16
		r := newRig(t, cfg)
		r.register(sim, SwitchConfig{})
		var ports []int
		for p := 1; p <= 40; p++ {
			ports = append(ports, p)
		}
		for i, err := range r.driver.Cycle(t.Context(), outlets("sw-a", ports...)) {
			if err != nil {
				t.Errorf("port %d: %v", ports[i], err)
			}
		}
		for _, p := range ports {
			if got := log.of("sw-a", p); got != "off on" {
				t.Errorf("port %d events = %q, want \"off on\"", p, got)
			}
		}
		// The agent takes 10 variables: after its first tooBig the driver
		// sends 40 ports in 5 SETs per phase (limit 16 halved to 8).
		sim.ResetStats()
		r.driver.Cycle(t.Context(), outlets("sw-a", ports...))
		if st := sim.Stats(); st.Sets != 10 {
			t.Errorf("warm cycle of 40 ports with an agent limit of 10: %d SETs, want 10", st.Sets)
		}
	})
}

func TestCachesForgottenOnErrorAndRescan(t *testing.T) {
	t.Parallel()
	sim := startSim(t, "sw-a", snmpswitch.Config{})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fastConfig())
		r.register(sim, SwitchConfig{})
		walks := func() int { st := sim.Stats(); return st.GetBulks + st.GetNexts }
		cycle := func() error { return r.driver.Cycle(t.Context(), outlets("sw-a", 1))[0] }
		if err := cycle(); err != nil {
			t.Fatal(err)
		}
		before := walks()
		if err := cycle(); err != nil || walks() != before {
			t.Fatalf("warm cycle: %v, %d walk requests; want none", err, walks()-before)
		}
		sim.FailSets(gosnmp.GenErr)
		if err := cycle(); err == nil {
			t.Fatal("cycle with failing SETs succeeded")
		}
		sim.FailSets(gosnmp.NoError)
		before = walks()
		if err := cycle(); err != nil || walks() == before {
			t.Errorf("cycle after an SNMP error: %v, %d walk requests; want a new discovery", err, walks()-before)
		}
		if _, err := r.driver.Scan(t.Context(), "sw-a"); err != nil {
			t.Fatal(err)
		}
		before = walks()
		if err := cycle(); err != nil || walks() == before {
			t.Errorf("cycle after a rescan: %v, %d walk requests; want a new discovery", err, walks()-before)
		}
	})
}

func TestExplicitPortMap(t *testing.T) {
	t.Parallel()
	// Two PoE groups of different sizes on interfaces with a hole: no
	// heuristic applies.
	ifs := []snmpswitch.Interface{}
	var poe []snmpswitch.PoEPort
	for i := 1; i <= 6; i++ {
		idx := i
		if i > 4 {
			idx = 10 + i
		}
		ifs = append(ifs, snmpswitch.Interface{Index: idx, Type: 6, Speed: 1e9, Name: fmt.Sprint("p", idx)})
		g, p := 1, i
		if i > 4 {
			g, p = 2, i-4
		}
		poe = append(poe, snmpswitch.PoEPort{Group: g, Port: p, IfIndex: idx})
	}
	ifs = append(ifs, snmpswitch.Interface{Index: 20, Type: 6, Speed: 1e9, Name: "sfp"})
	sim := startSim(t, "sw-odd", snmpswitch.Config{Interfaces: ifs, PoE: poe})
	r := newRig(t, fastConfig())
	r.register(sim, SwitchConfig{Delay: time.Millisecond})
	err := r.driver.Cycle(t.Context(), outlets("sw-odd", 15))[0]
	if !errors.Is(err, power.ErrUnsupported) || !strings.Contains(err.Error(), "port map") {
		t.Fatalf("cycle without a port map = %v, want ErrUnsupported suggesting a port map", err)
	}
	sw, _ := r.dir.Lookup(t.Context(), "sw-odd")
	sw.PortMap = map[int]PoEIndex{15: {2, 1}, 16: {3, 9}} // 3.9 does not exist
	r.dir.put("sw-odd", sw)
	errs := r.driver.Cycle(t.Context(), outlets("sw-odd", 15, 16))
	if errs[0] != nil {
		t.Fatalf("cycle with a port map: %v", errs[0])
	}
	if !errors.Is(errs[1], power.ErrUnsupported) || !strings.Contains(errs[1].Error(), "has no object .1.3.6.1.2.1.105.1.1.1.3.3.9") {
		t.Errorf("cycle of a port mapped to a missing PoE port = %v, want ErrUnsupported naming the object", errs[1])
	}
	if st := sim.Stats(); st.SetVarbinds != 2 {
		t.Errorf("SET varbinds = %d, want 2", st.SetVarbinds)
	}
}

func TestScan(t *testing.T) {
	t.Parallel()
	mac := []byte{0x02, 0, 0, 0, 0, 0x07}
	for _, version := range []Version{V1, V2c} {
		sim := startSim(t, "sw-a", snmpswitch.Config{Ports: 8, Neighbours: []snmpswitch.Neighbour{
			{LocalPort: 7, MAC: mac, SysName: "rpi-7"}, {LocalPort: 2, MAC: []byte{0x02, 0, 0, 0, 0, 0x02}},
		}})
		r := newRig(t, fastConfig())
		r.register(sim, SwitchConfig{Version: version})
		topo, err := r.driver.Scan(t.Context(), "sw-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(topo.Neighbours) != 2 || topo.Neighbours[1].LocalPort != 7 ||
			topo.Neighbours[1].MAC.String() != "02:00:00:00:00:07" || topo.Neighbours[1].SysName != "rpi-7" {
			t.Errorf("v%s neighbours = %+v, want ports 2 and 7, 02:00:00:00:00:07 (rpi-7) on 7", version, topo.Neighbours)
		}
		if len(topo.Ports) != 13 || topo.Ports[0] != (Port{IfIndex: 1, Descr: "GigabitEthernet1/0/1", Name: "Gi1/0/1", Type: 6, Speed: 1e9}) {
			t.Errorf("v%s ports = %d, first %+v", version, len(topo.Ports), topo.Ports[0])
		}
	}
}

// TestConcurrentCallsShareRequests is the reboot engine's pattern: one call
// per node, all at once. The calls for one switch go in one SET per phase.
func TestConcurrentCallsShareRequests(t *testing.T) {
	t.Parallel()
	var log powerLog
	sim := startSim(t, "sw-a", snmpswitch.Config{OnPower: log.record})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fastConfig())
		r.register(sim, SwitchConfig{})
		var wg sync.WaitGroup
		errs := make([]error, 48)
		for p := 1; p <= 48; p++ {
			wg.Go(func() { errs[p-1] = r.driver.Cycle(t.Context(), outlets("sw-a", p))[0] })
		}
		wg.Wait()
		for p, err := range errs {
			if err != nil {
				t.Errorf("port %d: %v", p+1, err)
			}
			if got := log.of("sw-a", p+1); got != "off on" {
				t.Errorf("port %d events = %q, want \"off on\"", p+1, got)
			}
		}
		if st := sim.Stats(); st.Sets != 2 {
			t.Errorf("48 concurrent calls: %d SETs, want 2", st.Sets)
		}
	})
}

// TestInterruptedCallInSharedBatch: a caller that gives up while its port
// is off gets its answer at once; the batch still switches the port on.
func TestInterruptedCallInSharedBatch(t *testing.T) {
	t.Parallel()
	sim := startSim(t, "sw-a", snmpswitch.Config{})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, fastConfig())
		r.register(sim, SwitchConfig{})
		ctx, giveUp := context.WithTimeout(t.Context(), time.Second) // during the 2 s off period
		defer giveUp()
		var quitter, stayer error
		var quitTime time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		wg.Go(func() {
			quitter = r.driver.Cycle(ctx, outlets("sw-a", 1))[0]
			quitTime = time.Since(start)
		})
		wg.Go(func() { stayer = r.driver.Cycle(t.Context(), outlets("sw-a", 2))[0] })
		wg.Wait()
		if !errors.Is(quitter, context.DeadlineExceeded) || quitTime > time.Second+100*time.Millisecond {
			t.Errorf("caller giving up after 1s: %v after %s, want DeadlineExceeded at 1s", quitter, quitTime)
		}
		if stayer != nil {
			t.Errorf("other caller: %v", stayer)
		}
		if _, delivering, _ := sim.Port(1); !delivering {
			t.Error("port 1 left off although its batch went on")
		}
		if recs, _ := r.journal.ListOff(t.Context()); len(recs) != 0 {
			t.Errorf("journal = %+v, want empty", recs)
		}
	})
}

// TestSwitchesCycleTogether: Config.Fanout bounds SNMP conversations, not
// power cycles. With room for one switch at a time, three switches are all
// switched off before the first is switched on again: none waits for
// another's poe.delay. Under synctest, the delays take no real time and
// the order no longer depends on the machine's load.
func TestSwitchesCycleTogether(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	log := &powerLog{}
	var sims []*snmpswitch.Switch
	for _, name := range []string{"sw-a", "sw-b", "sw-c"} {
		sims = append(sims, startSim(t, name, snmpswitch.Config{OnPower: log.record}))
	}
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.Fanout = 1
		r := newRig(t, cfg)
		var all []power.Outlet
		for _, sim := range sims {
			r.register(sim, SwitchConfig{Delay: delay})
			all = append(all, outlets(sim.Name(), 1)...)
		}
		start := time.Now()
		for i, err := range r.driver.Cycle(t.Context(), all) {
			if err != nil {
				t.Fatalf("%s: %v", all[i], err)
			}
		}
		if took := time.Since(start); took >= 2*delay {
			t.Errorf("three switches cycled in %s, want one poe.delay (%s), not one after another", took, delay)
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		var seq []string
		for _, e := range log.events {
			seq = append(seq, map[bool]string{true: "on", false: "off"}[e.On])
		}
		if got := strings.Join(seq, " "); got != "off off off on on on" {
			t.Errorf("power events %q, want the three offs before any on", got)
		}
	})
}
