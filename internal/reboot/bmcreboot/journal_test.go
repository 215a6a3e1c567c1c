package bmcreboot_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/bmcreboot"
	"github.com/walt-testbed/walt/internal/store"
)

// TestPowerOffJournalled: a command power-cycle whose "on" fails leaves
// the node recorded off (store.NodePowerPort); the next hard reboot only
// powers it on, and Restore at start-up powers on what is still
// recorded, clearing it. A cycle that succeeds leaves no record.
func TestPowerOffJournalled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	calls, broken := filepath.Join(dir, "calls"), filepath.Join(dir, "broken")
	script := filepath.Join(dir, "pdu.sh")
	// pdu.sh ACTION NAME: logs the call; "on" fails while the file broken exists.
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $2\" >> "+calls+"\n[ \"$1\" = on ] && [ -e "+broken+" ] && exit 1\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	for _, name := range []string{"pc1", "pc2"} {
		r.add(t, name, map[string]string{"power.method": "command", "power.off_time": "0s", "power.command": script + " {action} {name}"})
	}
	ctx := t.Context()
	recorded := func() []string {
		offs, err := r.st.PoEOffs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var macs []string
		for _, o := range offs {
			if o.Port == store.NodePowerPort && o.Reason == "hard-reboot" {
				macs = append(macs, o.SwitchMAC)
			}
		}
		return macs
	}
	actions := func() []string {
		b, _ := os.ReadFile(calls)
		os.Remove(calls)
		return strings.Fields(strings.ReplaceAll(string(b), " ", "-"))
	}
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.eng.Reboot(ctx, r.nodes[:1], true, nil)
	if res[0].OK {
		t.Fatalf("pc1's cycle with a failing on = %+v, want a failure", res[0])
	}
	if got := recorded(); !slices.Equal(got, []string{r.nodes[0].MAC}) {
		t.Fatalf("nodes recorded off after a failed on: %q, want pc1's MAC", got)
	}
	actions()
	// The server reads the record as the node being off: the next hard
	// reboot (still failing) only tries to power it on.
	off := r.nodes[0]
	off.PoweredOff = true
	r.eng.Reboot(ctx, []reboot.Node{off}, true, nil)
	if got := actions(); !slices.Equal(got, []string{"on-pc1"}) {
		t.Errorf("calls for a node recorded off: %q, want on only", got)
	}
	if got := recorded(); len(got) != 1 {
		t.Errorf("records after a failed power-on: %q, want pc1's kept", got)
	}

	os.Remove(broken)
	if res := r.eng.Reboot(ctx, r.nodes[1:], true, nil); !res[0].OK {
		t.Fatalf("pc2's cycle = %+v, want OK", res[0])
	}
	if got := recorded(); !slices.Equal(got, []string{r.nodes[0].MAC}) {
		t.Errorf("records after pc2's cycle: %q, want pc1's only", got)
	}
	actions()
	methods, err := bmcreboot.New(r.st, bmcreboot.Drivers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := bmcreboot.Restore(ctx, r.st, methods)
	if err != nil || len(restored) != 1 || restored[0].Node != "pc1" || restored[0].Err != nil || restored[0].Reason != "hard-reboot" {
		t.Fatalf("Restore = %+v, %v; want pc1 powered on", restored, err)
	}
	if got := actions(); !slices.Equal(got, []string{"on-pc1"}) {
		t.Errorf("calls of Restore: %q, want on for pc1", got)
	}
	if got := recorded(); len(got) != 0 {
		t.Errorf("records after Restore: %q, want none", got)
	}
	if restored, err := bmcreboot.Restore(ctx, r.st, methods); err != nil || len(restored) != 0 {
		t.Errorf("second Restore = %+v, %v; want nothing to do", restored, err)
	}
}
