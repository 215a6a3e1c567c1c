package poereboot

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
)

// rig is a lab of 4 nodes on one switch, registered in a real SQLite store:
// node01-node03 are linked to their port, node04 is not; the switch allows
// PoE reboots with a short off period.
type rig struct {
	lab    *lab.Lab
	st     store.Store
	method *Method
	boots  chan lab.Boot
}

func newRig(t *testing.T, octet int, faults map[string]lab.Fault) *rig {
	t.Helper()
	r := &rig{boots: make(chan lab.Boot, 100)}
	l, err := lab.Start(lab.Config{Nodes: 4, Octet: octet, Faults: faults,
		BootTime: lab.BootTime{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		OnBoot:   func(b lab.Boot) { r.boots <- b }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	r.lab = l
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "walt.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.st = st
	ctx := t.Context()
	sw := l.Switches[0]
	must(t, st.AddDevice(ctx, store.Device{MAC: sw.MAC, Name: sw.Name(), IP: sw.IP, Type: store.TypeSwitch}))
	set := map[string]*string{}
	for k, v := range map[string]string{"snmp.version": "2", "snmp.community": "private", "lldp.explore": "true", "poe.reboots": "true", "poe.delay": "100ms"} {
		set[k] = &v
	}
	must(t, st.ApplyChanges(ctx, []store.DeviceChange{{MAC: sw.MAC, Set: set}}))
	for i, n := range l.Nodes {
		must(t, st.AddDevice(ctx, store.Device{MAC: n.MAC(), Name: n.Name(), IP: strings.Split(n.Addr(), ":")[0], Type: store.TypeNode}))
		if i < 3 {
			must(t, st.SetLink(ctx, store.Link{NodeMAC: n.MAC(), SwitchMAC: sw.MAC, Port: i + 1}))
		}
	}
	cfg := poe.DefaultConfig()
	cfg.Gather = 5 * time.Millisecond
	driver, err := poe.New(cfg, Directory{st}, Journal{st}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.method = New(st, driver)
	for range l.Nodes {
		r.awaitBoot(t, "")
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// awaitBoot waits for a boot report, of the named node if name is not "".
func (r *rig) awaitBoot(t *testing.T, name string) lab.Boot {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case b := <-r.boots:
			if name == "" || b.Node.Name() == name {
				return b
			}
		case <-timeout:
			t.Fatalf("no boot report from %q", name)
		}
	}
}

func (r *rig) node(name string) reboot.Node {
	n := r.lab.Node(name)
	return reboot.Node{Name: n.Name(), MAC: n.MAC(), Addr: n.Addr()}
}

// TestEngineFallsBackToPoE runs the reboot engine with this method: a node
// whose agent refuses the connection is power-cycled, comes back with a new
// boot id, and the port is no longer journalled as off.
func TestEngineFallsBackToPoE(t *testing.T) {
	t.Parallel()
	r := newRig(t, 211, map[string]lab.Fault{"node02": lab.Refused})
	before := r.lab.Node("node02").BootID()
	cfg := reboot.DefaultConfig()
	cfg.Physical = r.method
	eng, err := reboot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := eng.Reboot(t.Context(), []reboot.Node{r.node("node01"), r.node("node02")}, false, nil)
	if !res[0].OK || res[0].Method != reboot.MethodSoft {
		t.Errorf("node01 result = %+v, want soft-reboot OK", res[0])
	}
	if !res[1].OK || res[1].Method != MethodName || len(res[1].Attempts) != 2 {
		t.Fatalf("node02 result = %+v, want a failed soft attempt then PoE-reboot OK", res[1])
	}
	if got := res[1].Attempts[0].Err; !strings.Contains(got.Error(), "connection refused") {
		t.Errorf("node02 soft attempt error = %v, want connection refused", got)
	}
	// The switch read the port's detection status back while it was off.
	if c := res[1].Attempts[1].Cut; c == nil || !c.Verified || !strings.Contains(c.Detail, "not delivering power") {
		t.Errorf("node02 cut = %+v, want verified by the switch's detection status", c)
	}
	if b := r.awaitBoot(t, "node02"); b.BootID == before {
		t.Errorf("node02 kept boot id %s across its PoE reboot", before)
	}
	if offs, err := r.st.PoEOffs(t.Context()); err != nil || len(offs) != 0 {
		t.Errorf("ports still recorded off after the reboot: %v, %v", offs, err)
	}
}

func TestHardRebootErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, 212, map[string]lab.Fault{"node03": lab.NotPoE})
	ctx := t.Context()
	if err := r.method.HardReboot(ctx, r.node("node04")); !errors.Is(err, power.ErrUnknownPosition) {
		t.Errorf("node without a link: %v, want ErrUnknownPosition", err)
	}
	if err := r.method.HardReboot(ctx, r.node("node03")); !errors.Is(err, power.ErrNotPowered) {
		t.Errorf("node powered by something else: %v, want ErrNotPowered", err)
	}
	off := "false"
	must(t, r.st.ApplyChanges(ctx, []store.DeviceChange{{MAC: r.lab.Switches[0].MAC, Set: map[string]*string{"poe.reboots": &off}}}))
	err := r.method.HardReboot(ctx, r.node("node01"))
	if !errors.Is(err, power.ErrForbidden) || strings.Contains(err.Error(), "private") {
		t.Errorf("switch with poe.reboots=false: %v, want ErrForbidden without the community", err)
	}
	if st := r.lab.Node("node01").State(); st != lab.Up {
		t.Errorf("node01 is %s after a forbidden power-cycle, want untouched", st)
	}
}

// TestPoweredOffNodeIsOnlyPoweredOn checks that a node whose port the
// server turned off is powered on, not cycled, and boots.
func TestPoweredOffNodeIsOnlyPoweredOn(t *testing.T) {
	t.Parallel()
	r := newRig(t, 213, nil)
	ctx := context.Background()
	outlet := power.Outlet{Switch: r.lab.Switches[0].MAC, Port: 2}
	if err := r.method.driver.Switch(ctx, []power.Change{{Outlet: outlet, State: power.Off, Reason: power.ReasonPowersave}})[0]; err != nil {
		t.Fatal(err)
	}
	if st := r.lab.Node("node02").State(); st != lab.Off {
		t.Fatalf("node02 is %s after its port was switched off", st)
	}
	n := r.node("node02")
	n.PoweredOff = true
	if err := r.method.HardReboot(ctx, n); err != nil {
		t.Fatal(err)
	}
	r.awaitBoot(t, "node02")
	if offs, _ := r.st.PoEOffs(ctx); len(offs) != 0 {
		t.Errorf("port still recorded off after power-on: %v", offs)
	}
}

// The SNMP port of a switch comes from snmp.port, so that simulated
// switches run without privileges; bad values name the switch.
func TestSwitchConfigPort(t *testing.T) {
	t.Parallel()
	dev := store.Device{Name: "sw1", IP: "127.60.0.1", MAC: "02:00:00:00:00:01", Type: store.TypeSwitch}
	for _, tc := range []struct {
		port, addr, err string
	}{
		{"", "127.60.0.1", ""},
		{"161", "127.60.0.1", ""},
		{"1161", "127.60.0.1:1161", ""},
		{"0", "", `switch sw1: invalid snmp.port "0"`},
		{"x", "", `switch sw1: invalid snmp.port "x"`},
	} {
		sw, err := switchConfig(dev, map[string]string{"snmp.port": tc.port, "snmp.version": "2"})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("snmp.port=%q: error %v, want %q", tc.port, err, tc.err)
			}
			continue
		}
		if err != nil || sw.Address != tc.addr {
			t.Errorf("snmp.port=%q: address %q, %v; want %q", tc.port, sw.Address, err, tc.addr)
		}
	}
	dev.IP = "fd00::5"
	if sw, err := switchConfig(dev, map[string]string{"snmp.port": "1161"}); err != nil || sw.Address != "[fd00::5]:1161" {
		t.Errorf("IPv6 switch address %q, %v; want [fd00::5]:1161", sw.Address, err)
	}
}

// TestPowerOffTimeStretchesPoEDelay: a node's power.off_time longer than
// its switch's poe.delay (100ms here) keeps its port off that long; a
// node without one keeps poe.delay.
func TestPowerOffTimeStretchesPoEDelay(t *testing.T) {
	t.Parallel()
	r := newRig(t, 214, nil)
	ctx := t.Context()
	const offTime = 1200 * time.Millisecond
	v := offTime.String()
	must(t, r.st.ApplyChanges(ctx, []store.DeviceChange{{MAC: r.node("node01").MAC, Set: map[string]*string{"power.off_time": &v}}}))
	for _, c := range []struct {
		node     string
		min, max time.Duration
	}{{"node01", offTime, 10 * time.Second}, {"node02", 100 * time.Millisecond, offTime}} {
		start := time.Now()
		if err := r.method.HardReboot(ctx, r.node(c.node)); err != nil {
			t.Fatalf("%s: %v", c.node, err)
		}
		if d := time.Since(start); d < c.min || d >= c.max {
			t.Errorf("%s: power-cycle took %s, want at least %s and less than %s", c.node, d, c.min, c.max)
		}
		r.awaitBoot(t, c.node)
	}
}

// TestJournalLeavesNodePower: the PoE journal lists switch ports only: a
// node's own power recorded off (store.NodePowerPort, bmcreboot's) is not
// a port for the PoE driver to switch on at start-up.
func TestJournalLeavesNodePower(t *testing.T) {
	t.Parallel()
	r := newRig(t, 215, nil)
	ctx := t.Context()
	sw, n := r.lab.Switches[0].MAC, r.node("node04").MAC
	must(t, r.st.AddPoEOff(ctx, store.PoEOff{SwitchMAC: sw, Port: 2, Reason: power.ReasonPowersave}))
	must(t, r.st.AddPoEOff(ctx, store.PoEOff{SwitchMAC: n, Port: store.NodePowerPort, Reason: power.ReasonHardReboot}))
	recs, err := Journal{r.st}.ListOff(ctx)
	if err != nil || len(recs) != 1 || recs[0].Outlet != (power.Outlet{Switch: sw, Port: 2}) {
		t.Errorf("ListOff = %+v, %v; want port 2 of the switch only", recs, err)
	}
}
