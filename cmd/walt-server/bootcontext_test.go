package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The boot context test's lab uses 127.81.0.0/16, its server 127.63.0.3.

// A server killed with SIGKILL after rebooting nodes and before their
// boots: the next server tells each node, at its first boot report, why
// it booted, as the killed one would have (a user's reboot, a campaign's
// iteration), rather than "unknown".
func TestKilledBeforeBootKeepsBootContext(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	// Boots slow enough that the server is killed before any comes.
	slow := lab.BootTime{Min: 4 * time.Second, Max: 4 * time.Second}
	ls := startLabServer(t, "127.63.0.3", lab.Config{Nodes: 3, Octet: 81, BootTime: slow})
	c := ls.c
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "node02,node03", Requester: "test", Name: "warm", Repeat: 2,
		BootTimeout: api.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	awaitPhase(t, c, camp.ID, api.BootRebooted)
	res, err := c.Reboot(t.Context(), api.RebootRequest{Set: "node01", Requester: "test"}, nil)
	if err != nil || len(res) != 1 || !res[0].OK {
		t.Fatalf("reboot node01 = %+v, %v", res, err)
	}
	before := map[string]string{}
	for _, n := range ls.lab.Nodes {
		before[n.MAC()] = n.BootID()
	}
	if err := ls.first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ls.first.done
	for _, n := range ls.lab.Nodes {
		if bc, _ := ls.rep.BootContext(n.MAC()); bc.BootID != before[n.MAC()] && before[n.MAC()] != "" {
			t.Fatalf("%s reported its new boot to the killed server (boot times too short for this machine?)", n.Name())
		}
	}

	second := startProcAt(t, ls.bin, ls.dataDir, ls.addr)
	contexts := map[string]api.BootContext{}
	testutil.EventuallyNil(t, 30*time.Second, "every node's new boot reported", func() error {
		for _, n := range ls.lab.Nodes {
			bc, ok := ls.rep.BootContext(n.MAC())
			if !ok || bc.BootID == before[n.MAC()] {
				return fmt.Errorf("%s not reported yet", n.Name())
			}
			contexts[n.Name()] = bc
		}
		return nil
	})
	user := contexts["node01"]
	if user.Cause != api.BootCauseUser || user.Requester != "test" || user.Method != "soft-reboot" || user.RebootID != res[0].ID ||
		user.RequestedAt == nil || user.Campaign != "" {
		t.Errorf("node01's boot context after the restart = %+v, want cause %q, requester test, method soft-reboot, reboot %s\n%s",
			user, api.BootCauseUser, res[0].ID, second.log)
	}
	// The boot lands in the reboot's record, as it would have.
	if rl, err := c.Reboots(t.Context(), "node01", 1); err != nil || len(rl.Reboots) != 1 || rl.Reboots[0].BootID != user.BootID {
		t.Errorf("node01's latest reboot record = %+v, %v; want booted in %s", rl, err, user.BootID)
	}
	for _, name := range []string{"node02", "node03"} {
		bc := contexts[name]
		if bc.Cause != api.BootCauseCampaign || bc.Requester != "test" || bc.Method != "soft-reboot" || bc.RebootID == "" ||
			bc.Campaign != camp.ID || bc.CampaignName != "warm" || bc.Iteration != 1 || bc.Iterations != 2 {
			t.Errorf("%s's boot context after the restart = %+v, want cause campaign, campaign %s (warm) iteration 1 of 2, requester test, method soft-reboot",
				name, bc, camp.ID)
		}
	}
	// The resumed campaign takes those boots as its first iteration's,
	// not as rescued, and completes.
	awaitCampaignDone(t, c, camp.ID)
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boots {
		if b.Outcome != api.BootCompleted || b.Rescued {
			t.Errorf("%s iteration %d: %s, rescued %v; want completed, not rescued", b.Node, b.Iteration, b.Outcome, b.Rescued)
		}
		if b.Iteration == 1 && b.RebootID != contexts[b.Node].RebootID {
			t.Errorf("%s iteration 1: reboot %s, the boot context said %s", b.Node, b.RebootID, contexts[b.Node].RebootID)
		}
	}
}

// The plain reboot test's lab uses 127.82.0.0/16, its server 127.63.0.4.

// A server killed with SIGKILL after a user's plain soft reboot was
// acknowledged, and during a user's hard reboot (its record left
// running): the next server names each reboot at the node's first boot
// report (requester, cause, reboot id), the hard one with
// reboot_outcome interrupted and no method, since the killed server
// never knew whether it reached the node; the node's next boot is no
// reboot's.
func TestKilledBeforeBootNamesPlainReboots(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	slow := lab.BootTime{Min: 4 * time.Second, Max: 4 * time.Second}
	ls := startLabServer(t, "127.63.0.4", lab.Config{Nodes: 3, Octet: 82, BootTime: slow})
	c, ctx := ls.c, t.Context()
	// The server can power-cycle node03; a cycle holds its port off a
	// minute, long enough to kill the server then.
	sw := ls.lab.Switches[0]
	_, snmpPort, _ := net.SplitHostPort(sw.Addr())
	if _, err := c.AddDevice(ctx, api.AddDevice{Name: sw.Name(), IP: sw.IP, MAC: sw.MAC, Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConfig(ctx, api.ConfigRequest{Set: sw.Name(), Settings: []string{"snmp.version=2", "snmp.community=private",
		"snmp.port=" + snmpPort, "lldp.explore=true", "poe.reboots=true", "poe.delay=1m"}}); err != nil {
		t.Fatal(err)
	}
	hard := ls.lab.Node("node03")
	if err := c.SetLink(ctx, api.Link{Node: hard.Name(), Switch: sw.Name(), Port: slices.Index(sw.Nodes, hard) + 1}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Reboot(rctx, api.RebootRequest{Set: "node03", Hard: true, Requester: "test"}, nil) // ends with the server
	testutil.Eventually(t, 20*time.Second, "node03's port off", func() bool { return hard.State() == lab.Off })
	res, err := c.Reboot(ctx, api.RebootRequest{Set: "node01", Requester: "test"}, nil)
	if err != nil || len(res) != 1 || !res[0].OK {
		t.Fatalf("reboot node01 = %+v, %v", res, err)
	}
	before := map[string]string{}
	for _, n := range ls.lab.Nodes {
		before[n.Name()] = n.BootID()
	}
	if err := ls.first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ls.first.done
	if bc, _ := ls.rep.BootContext(ls.lab.Node("node01").MAC()); bc.BootID != before["node01"] {
		t.Fatal("node01 reported its new boot to the killed server (boot times too short for this machine?)")
	}

	second := startProcAt(t, ls.bin, ls.dataDir, ls.addr)
	contexts := map[string]api.BootContext{}
	testutil.EventuallyNil(t, 30*time.Second, "node01's and node03's new boots reported", func() error {
		for _, name := range []string{"node01", "node03"} {
			n := ls.lab.Node(name)
			bc, ok := ls.rep.BootContext(n.MAC())
			if !ok || bc.BootID == before[name] || bc.BootID != n.BootID() {
				return fmt.Errorf("%s not reported yet", name)
			}
			contexts[name] = bc
		}
		return nil
	})
	if bc := contexts["node01"]; bc.Cause != api.BootCauseUser || bc.Requester != "test" || bc.Method != api.MethodSoft || bc.RebootID != res[0].ID ||
		bc.RebootOutcome != "" || bc.RequestedAt == nil {
		t.Errorf("node01's boot context after the restart = %+v, want test's soft-reboot %s\n%s", bc, res[0].ID, second.log)
	}
	rl, err := c.Reboots(ctx, "node03", 1)
	if err != nil || len(rl.Reboots) != 1 {
		t.Fatalf("node03's latest reboot record = %+v, %v", rl, err)
	}
	if r := rl.Reboots[0]; r.State != api.RebootInterrupted {
		t.Errorf("node03's latest reboot record = %+v, want interrupted", r)
	}
	if bc := contexts["node03"]; bc.Cause != api.BootCauseUser || bc.Requester != "test" || bc.Method != "" || bc.RebootID != rl.Reboots[0].ID ||
		bc.RebootOutcome != api.RebootOutcomeInterrupted || bc.RequestedAt == nil {
		t.Errorf("node03's boot context after the restart = %+v, want test's reboot %s, no method, reboot_outcome %q\n%s",
			bc, rl.Reboots[0].ID, api.RebootOutcomeInterrupted, second.log)
	}
	// The boots land in the records, as they would have.
	testutil.EventuallyNil(t, 10*time.Second, "the boots in the reboot records", func() error {
		for name, id := range map[string]string{"node01": res[0].ID, "node03": rl.Reboots[0].ID} {
			got, err := c.Reboots(ctx, name, 1)
			if err != nil || len(got.Reboots) != 1 || got.Reboots[0].ID != id || got.Reboots[0].BootID != contexts[name].BootID {
				return fmt.Errorf("%s: %+v, %v; want %s booted in %s", name, got, err, id, contexts[name].BootID)
			}
		}
		return nil
	})

	// node01's next boot (its power cut and back, no reboot of the
	// server's) is no reboot's.
	n := ls.lab.Node("node01")
	n.PowerOff()
	n.PowerOn()
	testutil.EventuallyNil(t, 30*time.Second, "node01's next boot reported", func() error {
		bc, ok := ls.rep.BootContext(n.MAC())
		if !ok || bc.BootID == contexts["node01"].BootID || bc.BootID != n.BootID() {
			return fmt.Errorf("not reported yet")
		}
		if bc.Cause != api.BootCauseUnknown || bc.RebootID != "" || bc.Requester != "" || bc.RebootOutcome != "" {
			t.Errorf("node01's next boot context = %+v, want cause unknown", bc)
		}
		return nil
	})
}
