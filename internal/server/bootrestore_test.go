package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// A starting server gives a node's first boot the context of the reboot
// its predecessor left waiting for that boot, unless the reboot is older
// than the node's boot.timeout × (boot.retries + 1): by then the
// watchdog had given up, and the boot is not that reboot's.
func TestStartRestoresAwaitedBoots(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	ids := map[string]string{}
	env := servertest.New(t, nil, func(cfg *server.Config) {
		ctx := context.Background()
		st := cfg.Store
		zero := "0"
		for i, n := range []struct {
			name    string
			age     time.Duration
			retries *string
		}{
			{"fresh", time.Minute, nil},
			{"stale", 31 * time.Minute, nil},    // 180 s × (9 + 1) = 30 min
			{"noretry", 4 * time.Minute, &zero}, // 180 s × 1
		} {
			mac := "52:54:00:00:71:0" + string(rune('1'+i))
			if err := st.AddDevice(ctx, store.Device{MAC: mac, Name: n.name, IP: "127.0.0.1", Type: store.TypeNode, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if n.retries != nil {
				if err := st.ApplyChanges(ctx, []store.DeviceChange{{MAC: mac, Set: map[string]*string{"boot.retries": n.retries}}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.SetBootStatuses(ctx, []store.BootStatus{{MAC: mac, BootID: "old", Booted: true, Since: now.Add(-time.Hour), RetriesLeft: -1}}); err != nil {
				t.Fatal(err)
			}
			at := now.Add(-n.age)
			id, err := st.AddReboots(ctx, []store.Reboot{{Batch: "b", Requester: "alice", Cause: api.CauseRebootRequested, NodeMAC: mac, NodeName: n.name,
				OK: true, Method: "soft-reboot", RequestedAt: at, AckAt: at, FinishedAt: at}})
			if err != nil {
				t.Fatal(err)
			}
			ids[n.name] = id[0]
		}
		// rescued: campaign 1's iteration 2 asked its reboot, then the
		// watchdog's first try of 9 rescued its boot.
		const mac = "52:54:00:00:71:09"
		if err := st.AddDevice(ctx, store.Device{MAC: mac, Name: "rescued", IP: "127.0.0.1", Type: store.TypeNode, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		cid, err := st.AddCampaign(ctx, store.Campaign{Name: "warm", Requester: "alice", Set: "rescued", Mode: api.CampaignRounds, Repeat: 3,
			BootTimeout: time.Hour, Quarantine: 2, State: api.CampaignRunning, Round: 2, CreatedAt: now},
			[]store.CampaignNode{{MAC: mac, Name: "rescued", State: api.NodeActive, Iteration: 2}})
		if err != nil {
			t.Fatal(err)
		}
		asked := now.Add(-5 * time.Minute)
		if err := st.SaveCampaignProgress(ctx, nil, []store.CampaignBoot{{Campaign: cid, MAC: mac, Name: "rescued", Iteration: 2, PrevBootID: "old",
			RequestedAt: asked, Status: -1, Outcome: api.BootRequested}}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetBootStatuses(ctx, []store.BootStatus{{MAC: mac, BootID: "old", Since: asked, Cause: api.CauseBootupTimeout, RetriesLeft: 8}}); err != nil {
			t.Fatal(err)
		}
		rescue := now.Add(-2 * time.Minute)
		id, err := st.AddReboots(ctx, []store.Reboot{
			{Batch: "c", Requester: "alice", Cause: "campaign " + cid + " round 2/3", NodeMAC: mac, NodeName: "rescued", OK: true, Method: "soft-reboot", RequestedAt: asked, FinishedAt: asked},
			{Batch: "w", Requester: api.WatchdogRequester, Cause: api.CauseBootupTimeout, NodeMAC: mac, NodeName: "rescued", OK: true, Method: "PoE-reboot", RequestedAt: rescue, FinishedAt: rescue},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids["rescued"], ids["campaign"] = id[1], cid
	})
	// The stored status of fresh says booted since before its reboot,
	// which worked: it is booting since the reboot's request (the
	// tracker holds that status back, and a restart must not lose it);
	// stale's reboot is no longer awaited: its node stays booted.
	for name, want := range map[string]string{"fresh": api.StateBooting, "stale": api.StateBooted} {
		nl, err := env.Client.Nodes(t.Context(), map[string]string{"name": name})
		if err != nil || nl.NumNodes != 1 {
			t.Fatalf("node %s: %+v, %v", name, nl, err)
		}
		b := nl.Nodes[0].Boot
		if b.State != want {
			t.Errorf("%s after the restart: %+v, want %s", name, b, want)
		}
		if at := now.Add(-time.Minute).Truncate(time.Microsecond); want == api.StateBooting &&
			(b.Cause != api.CauseRebootRequested || b.Method != "soft-reboot" || !b.Since.Equal(at) || b.LastRebootMethod != "soft-reboot") {
			t.Errorf("%s after the restart: %+v, want booting since %s for alice's soft-reboot", name, b, at)
		}
	}
	d, err := env.Store.DeviceByName(t.Context(), "rescued")
	if err != nil {
		t.Fatal(err)
	}
	n, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: d.MAC, IP: "127.0.0.1", Name: "rescued", Model: "rpi-b", BootID: "new"})
	if bc := n.BootContext; err != nil || bc == nil || bc.Cause != api.BootCauseWatchdog || bc.RebootID != ids["rescued"] || bc.Method != "PoE-reboot" ||
		bc.WatchdogTry != 1 || bc.WatchdogTries != 9 || bc.Campaign != ids["campaign"] || bc.CampaignName != "warm" || bc.Iteration != 2 || bc.Iterations != 3 {
		t.Errorf("rescued: boot context %+v, %v; want the watchdog's try 1 of 9 by PoE-reboot (%s), campaign %s (warm) iteration 2 of 3", bc, err, ids["rescued"], ids["campaign"])
	}
	for name, want := range map[string]string{"fresh": api.BootCauseUser, "stale": api.BootCauseUnknown, "noretry": api.BootCauseUnknown} {
		d, err := env.Store.DeviceByName(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: d.MAC, IP: "127.0.0.1", Name: name, Model: "rpi-b", BootID: "new"})
		if err != nil {
			t.Fatal(err)
		}
		bc := n.BootContext
		if bc == nil || bc.Cause != want {
			t.Errorf("%s: boot context %+v, want cause %q", name, bc, want)
			continue
		}
		if want == api.BootCauseUser && (bc.Requester != "alice" || bc.Method != "soft-reboot" || bc.RebootID != ids[name]) {
			t.Errorf("%s: boot context %+v, want alice's soft-reboot %s", name, bc, ids[name])
		}
	}
}

// A restored campaign's reboot is bounded by the campaign's own
// --boot-timeout, longer or shorter than the node's watchdog's, and names
// the campaign even when it is no longer running (it ended, or was
// stopped, while no server ran). The watchdog's rescue of a campaign's
// boot is the campaign's iteration only within the campaign's wait.
func TestStartRestoresCampaignReboots(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	ids := map[string]string{}
	env := servertest.New(t, nil, func(cfg *server.Config) {
		ctx := context.Background()
		st := cfg.Store
		for i, n := range []struct {
			name, campaign, state string
			bootTimeout, age      time.Duration
		}{
			// Older than the node's 30 min (180 s × (9 + 1)), within the campaign's 2 h.
			{"ended1", "long", api.CampaignDone, 2 * time.Hour, 45 * time.Minute},
			// Within the node's 30 min, older than the campaign's 10 min.
			{"stopped1", "short", api.CampaignStopped, 10 * time.Minute, 20 * time.Minute},
		} {
			mac := "52:54:00:00:72:0" + string(rune('1'+i))
			if err := st.AddDevice(ctx, store.Device{MAC: mac, Name: n.name, IP: "127.0.0.1", Type: store.TypeNode, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := st.SetBootStatuses(ctx, []store.BootStatus{{MAC: mac, BootID: "old", Booted: true, Since: now.Add(-3 * time.Hour), RetriesLeft: -1}}); err != nil {
				t.Fatal(err)
			}
			cid, err := st.AddCampaign(ctx, store.Campaign{Name: n.campaign, Requester: "alice", Set: n.name, Mode: api.CampaignRounds, Repeat: 3,
				BootTimeout: n.bootTimeout, Quarantine: 2, State: n.state, Round: 2, CreatedAt: now.Add(-3 * time.Hour)},
				[]store.CampaignNode{{MAC: mac, Name: n.name, State: api.NodeActive, Iteration: 2}})
			if err != nil {
				t.Fatal(err)
			}
			at := now.Add(-n.age)
			id, err := st.AddReboots(ctx, []store.Reboot{{Batch: "c" + n.name, Requester: "alice", Cause: "campaign " + cid + " round 2/3", NodeMAC: mac, NodeName: n.name,
				OK: true, Method: "soft-reboot", RequestedAt: at, AckAt: at, FinishedAt: at}})
			if err != nil {
				t.Fatal(err)
			}
			ids[n.name], ids[n.campaign] = id[0], cid
		}
		// late: the campaign waited 10 min for the boot of its reboot,
		// asked 15 min ago; the watchdog rescued it 2 min ago.
		const mac = "52:54:00:00:72:09"
		if err := st.AddDevice(ctx, store.Device{MAC: mac, Name: "late", IP: "127.0.0.1", Type: store.TypeNode, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		cid, err := st.AddCampaign(ctx, store.Campaign{Name: "brief", Requester: "alice", Set: "late", Mode: api.CampaignRounds, Repeat: 3,
			BootTimeout: 10 * time.Minute, Quarantine: 2, State: api.CampaignRunning, Round: 1, CreatedAt: now.Add(-time.Hour)},
			[]store.CampaignNode{{MAC: mac, Name: "late", State: api.NodeActive, Iteration: 1}})
		if err != nil {
			t.Fatal(err)
		}
		asked, rescue := now.Add(-15*time.Minute), now.Add(-2*time.Minute)
		if err := st.SaveCampaignProgress(ctx, nil, []store.CampaignBoot{{Campaign: cid, MAC: mac, Name: "late", Iteration: 1, PrevBootID: "old",
			RequestedAt: asked, Status: -1, Outcome: api.BootRequested}}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetBootStatuses(ctx, []store.BootStatus{{MAC: mac, BootID: "old", Since: rescue, Cause: api.CauseBootupTimeout, RetriesLeft: 8}}); err != nil {
			t.Fatal(err)
		}
		id, err := st.AddReboots(ctx, []store.Reboot{
			{Batch: "c", Requester: "alice", Cause: "campaign " + cid + " round 1/3", NodeMAC: mac, NodeName: "late", OK: true, Method: "soft-reboot", RequestedAt: asked, FinishedAt: asked},
			{Batch: "w", Requester: api.WatchdogRequester, Cause: api.CauseBootupTimeout, NodeMAC: mac, NodeName: "late", OK: true, Method: "PoE-reboot", RequestedAt: rescue, FinishedAt: rescue},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids["late"] = id[1]
	})
	report := func(name string) *api.BootContext {
		t.Helper()
		d, err := env.Store.DeviceByName(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: d.MAC, IP: "127.0.0.1", Name: name, Model: "rpi-b", BootID: "new"})
		if err != nil || n.BootContext == nil {
			t.Fatalf("report of %s: %+v, %v", name, n, err)
		}
		return n.BootContext
	}
	if bc := report("ended1"); bc.Cause != api.BootCauseCampaign || bc.Campaign != ids["long"] || bc.CampaignName != "long" ||
		bc.Iteration != 2 || bc.Iterations != 3 || bc.RebootID != ids["ended1"] || bc.Method != "soft-reboot" {
		t.Errorf("ended1: boot context %+v; want campaign %s (long) iteration 2 of 3, reboot %s by soft-reboot", bc, ids["long"], ids["ended1"])
	}
	if bc := report("stopped1"); bc.Cause != api.BootCauseUnknown || bc.RebootID != "" || bc.Campaign != "" {
		t.Errorf("stopped1: boot context %+v, want cause unknown: the campaign waited 10 min for the boot", bc)
	}
	if bc := report("late"); bc.Cause != api.BootCauseWatchdog || bc.RebootID != ids["late"] || bc.Campaign != "" || bc.CampaignName != "" || bc.Iteration != 0 {
		t.Errorf("late: boot context %+v, want the watchdog's rescue %s, no campaign: the campaign waited 10 min for the boot", bc, ids["late"])
	}
}

// A starting server restores a plain reboot its predecessor left waiting
// for its boot only if the reboot may have reached the node, and says
// when it does not know that it did: a record left running (the server
// was killed during the reboot; this start marks it interrupted) or a
// failed one whose request went out gives its context to the node's
// next boot with reboot_outcome interrupted or failed; a failed one that
// reached nothing (refused, then forbidden on switch) gives none. Each
// gives its context once: the node's next boot is no reboot's. A boot
// after the reboot's wait, passed since the start, is no reboot's either.
func TestStartRestoresUncertainReboots(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	clock := servertest.NewClock(now)
	ids := map[string]string{}
	env := servertest.New(t, nil, func(cfg *server.Config) {
		cfg.Boot.Clock = clock
		ctx := context.Background()
		st := cfg.Store
		at := now.Add(-time.Minute)
		for i, n := range []struct {
			name     string
			state    store.RebootState
			attempts []store.Attempt
		}{
			{"killed", store.RebootRunning, nil},
			{"late", store.RebootRunning, nil}, // boot.retries 0: waits 180 s
			{"noreply", store.RebootDone, []store.Attempt{{Method: api.MethodSoft, Error: "no reply", Code: "reply-timeout", Started: at, Finished: at},
				{Method: api.MethodPoE, Error: "forbidden on switch", Code: "forbidden", Started: at, Finished: at}}},
			{"refused", store.RebootDone, []store.Attempt{{Method: api.MethodSoft, Error: "connection refused", Code: "refused", Started: at, Finished: at},
				{Method: api.MethodPoE, Error: "forbidden on switch", Code: "forbidden", Started: at, Finished: at}}},
		} {
			mac := "52:54:00:00:73:0" + string(rune('1'+i))
			if err := st.AddDevice(ctx, store.Device{MAC: mac, Name: n.name, IP: "127.0.0.1", Type: store.TypeNode, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := st.SetBootStatuses(ctx, []store.BootStatus{{MAC: mac, BootID: "old", Booted: true, Since: now.Add(-time.Hour), RetriesLeft: -1}}); err != nil {
				t.Fatal(err)
			}
			id, err := st.AddReboots(ctx, []store.Reboot{{Batch: "b", Requester: "alice", Cause: api.CauseRebootRequested, NodeMAC: mac, NodeName: n.name,
				State: n.state, Attempts: n.attempts, RequestedAt: at, FinishedAt: at}})
			if err != nil {
				t.Fatal(err)
			}
			ids[n.name] = id[0]
		}
		zero := "0"
		if err := st.ApplyChanges(ctx, []store.DeviceChange{{MAC: "52:54:00:00:73:02", Set: map[string]*string{"boot.retries": &zero}}}); err != nil {
			t.Fatal(err)
		}
	})
	report := func(name, bootID string) *api.BootContext {
		t.Helper()
		d, err := env.Store.DeviceByName(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: d.MAC, IP: "127.0.0.1", Name: name, Model: "rpi-b", BootID: bootID})
		if err != nil || n.BootContext == nil {
			t.Fatalf("report of %s: %+v, %v", name, n, err)
		}
		return n.BootContext
	}
	for name, outcome := range map[string]string{"killed": api.RebootOutcomeInterrupted, "noreply": api.RebootOutcomeFailed} {
		if bc := report(name, "new"); bc.Cause != api.BootCauseUser || bc.Requester != "alice" || bc.RebootID != ids[name] || bc.Method != "" ||
			bc.RebootOutcome != outcome || bc.RequestedAt == nil {
			t.Errorf("%s: boot context %+v, want alice's reboot %s, no method, reboot_outcome %q", name, bc, ids[name], outcome)
		}
		if bc := report(name, "newer"); bc.Cause != api.BootCauseUnknown || bc.RebootID != "" || bc.RebootOutcome != "" {
			t.Errorf("%s: second boot's context %+v, want unknown: the reboot had its boot", name, bc)
		}
	}
	if bc := report("refused", "new"); bc.Cause != api.BootCauseUnknown || bc.RebootID != "" {
		t.Errorf("refused: boot context %+v, want unknown: the reboot reached nothing", bc)
	}
	clock.Advance(2*time.Minute + time.Second) // 181 s after late's reboot
	if bc := report("late", "new"); bc.Cause != api.BootCauseUnknown || bc.RebootID != "" || bc.RebootOutcome != "" {
		t.Errorf("late: boot context %+v, want unknown: the boot came after the reboot's wait", bc)
	}
	// The interrupted reboot's record got the boot that the context named.
	booted := map[string]string{}
	testutil.Eventually(t, 10*time.Second, "the boots in the records", func() bool {
		rs, err := env.Store.Reboots(t.Context(), store.RebootFilter{Batch: "b"})
		if err != nil {
			return false
		}
		for _, r := range rs {
			booted[r.NodeName] = string(r.State) + " " + r.BootID
		}
		return booted["killed"] == "interrupted new" && booted["noreply"] == "done new"
	})
	if booted["refused"] != "done " {
		t.Errorf("records: %v; want refused's without boot", booted)
	}
}
