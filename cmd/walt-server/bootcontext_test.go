package main

import (
	"fmt"
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
	testutil.EventuallyNil(t, 20*time.Second, "the campaign's reboots acknowledged", func() error {
		got, err := c.Campaign(t.Context(), camp.ID)
		if err != nil {
			return err
		}
		for _, n := range got.Nodes {
			if n.Phase != api.BootRebooted {
				return fmt.Errorf("%s: %s", n.Node, n.Phase)
			}
		}
		return nil
	})
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
	testutil.EventuallyNil(t, 60*time.Second, "the campaign completed", func() error {
		got, err := c.Campaign(t.Context(), camp.ID)
		if err != nil {
			return err
		}
		if got.State != api.CampaignDone {
			return fmt.Errorf("campaign %s", got.State)
		}
		return nil
	})
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
