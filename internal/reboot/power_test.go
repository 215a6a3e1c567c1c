package reboot_test

import (
	"context"
	"testing"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// cutDriver is a CutReporter double.
type cutDriver struct {
	hardDriver
	cut power.Cut
}

func (d *cutDriver) HardRebootCut(ctx context.Context, n reboot.Node) (power.Cut, error) {
	return d.cut, d.HardReboot(ctx, n)
}

// TestPowerMethodChoosesDriver: a node's Power picks its hard-reboot
// driver: "" and "poe" the physical one, a method's name its driver in
// Methods (whose cut is recorded), "none" and an unknown method none;
// a virtual node its VM restart whatever Power says.
func TestPowerMethodChoosesDriver(t *testing.T) {
	t.Parallel()
	poe := &hardDriver{method: "PoE-reboot"}
	vm := &hardDriver{method: "vnode hard-reboot"}
	bmc := &cutDriver{hardDriver: hardDriver{method: "IPMI-reboot"}, cut: power.Cut{Verified: true, Detail: "read back"}}
	e := newEngine(t, func(c *reboot.Config) {
		c.Physical, c.Virtual, c.Methods = poe, vm, map[string]reboot.HardRebooter{"ipmi": bmc}
	})
	ns, _ := nodes(t, reboottest.Refused, reboottest.Refused, reboottest.Refused, reboottest.Refused, reboottest.Refused, reboottest.Refused)
	for i, p := range []string{"", "poe", "ipmi", "none", "redfish", "ipmi"} {
		ns[i].Power = p
	}
	ns[5].Virtual = true
	res := e.Reboot(t.Context(), ns, true, nil)
	want := []struct {
		method, code string
		cut          bool
	}{{"PoE-reboot", "", false}, {"PoE-reboot", "", false}, {"IPMI-reboot", "", true}, {"hard-reboot", "no-method", false},
		{"hard-reboot", "no-method", false}, {"vnode hard-reboot", "", false}}
	for i, w := range want {
		a := res[i].Attempts[len(res[i].Attempts)-1]
		if a.Method != w.method || reboot.ErrorCode(a.Err) != w.code || (a.Cut != nil) != w.cut {
			t.Errorf("node %d (power %q, virtual %t): attempt %+v, want %s code %q cut recorded %t", i, ns[i].Power, ns[i].Virtual, a, w.method, w.code, w.cut)
		}
	}
	if c := res[2].Attempts[0].Cut; c == nil || !c.Verified {
		t.Errorf("IPMI attempt cut = %+v, want the driver's", c)
	}
	if poe.calls.Load() != 2 || bmc.calls.Load() != 1 || vm.calls.Load() != 1 {
		t.Errorf("calls: poe %d, ipmi %d, vm %d; want 2, 1, 1", poe.calls.Load(), bmc.calls.Load(), vm.calls.Load())
	}
}
