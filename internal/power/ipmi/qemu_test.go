package ipmi_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power/ipmi"
	"github.com/walt-testbed/walt/internal/power/ipmi/ipmisim"
	"github.com/walt-testbed/walt/internal/testutil"
)

// gone reports whether a process has exited (a zombie counts: PID 1 here
// may not reap).
func gone(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(st), ") Z ")
}

// TestCycleResetsQEMU: ipmi_sim attached to a QEMU VM's IPMI device
// (ipmi-bmc-extern over the VM codec), power-cycled over RMCP+ by the
// driver: the BMC reads the power off once the VM is gone, and the
// power-on starts a new VM, whose firmware runs again.
func TestCycleResetsQEMU(t *testing.T) {
	t.Parallel()
	b := ipmisim.StartQEMU(t, "127.62.0.6")
	testutil.Eventually(t, 30*time.Second, "the first VM's firmware to run", func() bool {
		s := b.Starts()
		return len(s) == 1 && strings.Contains(b.Firmware(s[0]), "SeaBIOS")
	})
	first := b.Starts()[0]
	cfg := ipmi.DefaultConfig()
	cfg.Poll, cfg.Settle = 50*time.Millisecond, 20*time.Second
	d, err := ipmi.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := d.Cycle(t.Context(), target(b, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !cut.Verified {
		t.Errorf("cut = %+v, want verified", cut)
	}
	if !gone(first) {
		t.Errorf("the first VM (pid %d) still runs after the power-cycle", first)
	}
	// The power-on forked the start command; it records itself soon.
	testutil.Eventually(t, 10*time.Second, "a second VM to start", func() bool { return len(b.Starts()) == 2 })
	starts := b.Starts()
	if starts[1] == first {
		t.Fatalf("VM starts = %v, want a second VM", starts)
	}
	testutil.Eventually(t, 30*time.Second, "the new VM's firmware to run", func() bool {
		return strings.Contains(b.Firmware(starts[1]), "SeaBIOS")
	})
}
