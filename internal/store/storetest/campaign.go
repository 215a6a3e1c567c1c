package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

func campaign(repeat int) store.Campaign {
	return store.Campaign{Name: "warm", Requester: "alice", Set: "rpi[1-2]", Mode: "rounds", Repeat: repeat, Hard: true, UntilDone: true, Force: true,
		Hold: 1500 * time.Millisecond, DoneTimeout: time.Minute, BootTimeout: 5 * time.Minute, Quarantine: 2, State: "running", Round: 0, CreatedAt: t0}
}

func campaignNodes(id string) []store.CampaignNode {
	return []store.CampaignNode{
		{Campaign: id, MAC: node(1).MAC, Name: "rpi1", Model: "rpi-b", State: "active"},
		{Campaign: id, MAC: node(2).MAC, Name: "rpi2", Model: "rpi-b", State: "active"},
	}
}

func testCampaigns(t *testing.T, s store.Store, reopen func() store.Store) {
	mustAdd(t, s, node(1), node(2))
	id1, err := s.AddCampaign(ctx(t), campaign(3), campaignNodes(""))
	if err != nil {
		t.Fatalf("AddCampaign = %v", err)
	}
	id2, err := s.AddCampaign(ctx(t), campaign(5), nil)
	if err != nil {
		t.Fatalf("second AddCampaign = %v", err)
	}
	if id1 != "1" || id2 != "2" {
		t.Errorf("campaign ids = %q, %q, want 1, 2", id1, id2)
	}
	if _, err := s.AddCampaign(ctx(t), store.Campaign{Mode: "rounds"}, nil); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("AddCampaign(no repeat) = %v, want ErrInvalid", err)
	}

	c := campaign(3)
	c.ID, c.State, c.Round, c.FinishedAt = id1, "done", 3, t0.Add(time.Hour)
	if err := s.UpdateCampaign(ctx(t), c); err != nil {
		t.Fatalf("UpdateCampaign = %v", err)
	}
	if err := s.UpdateCampaign(ctx(t), store.Campaign{ID: "99", State: "done"}); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("UpdateCampaign(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.UpdateCampaign(ctx(t), store.Campaign{ID: "x1", State: "done"}); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("UpdateCampaign(malformed id) = %v, want ErrNotFound", err)
	}

	check := func(s store.Store) {
		t.Helper()
		all, err := s.Campaigns(ctx(t), store.CampaignFilter{})
		if err != nil {
			t.Fatal(err)
		}
		c2 := campaign(5)
		c2.ID = id2
		if diff := cmp.Diff([]store.Campaign{c2, c}, all); diff != "" {
			t.Errorf("Campaigns() newest first (-want +got):\n%s", diff)
		}
		running, err := s.Campaigns(ctx(t), store.CampaignFilter{State: "running"})
		if err != nil || len(running) != 1 || running[0].ID != id2 {
			t.Errorf("Campaigns(running) = %+v, %v, want campaign %s", running, err, id2)
		}
		one, err := s.Campaigns(ctx(t), store.CampaignFilter{ID: id1})
		if err != nil || len(one) != 1 || one[0].ID != id1 {
			t.Errorf("Campaigns(id %s) = %+v, %v", id1, one, err)
		}
		if none, err := s.Campaigns(ctx(t), store.CampaignFilter{ID: "nope"}); err != nil || len(none) != 0 {
			t.Errorf("Campaigns(malformed id) = %+v, %v, want none", none, err)
		}
		nodes, err := s.CampaignNodes(ctx(t), id1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(campaignNodes(id1), nodes); diff != "" {
			t.Errorf("CampaignNodes (-want +got):\n%s", diff)
		}
	}
	check(s)
	if reopen != nil {
		check(reopen())
	}
}

func testCampaignProgress(t *testing.T, s store.Store, reopen func() store.Store) {
	mustAdd(t, s, node(1), node(2))
	id, err := s.AddCampaign(ctx(t), campaign(3), campaignNodes(""))
	if err != nil {
		t.Fatal(err)
	}
	nodes := campaignNodes(id)
	nodes[0].Iteration, nodes[0].Booted = 1, 1
	nodes[1].Iteration, nodes[1].Failed, nodes[1].FailedInRow, nodes[1].State, nodes[1].Reason = 1, 1, 1, "quarantined", "no new boot within 5m"
	requested := []store.CampaignBoot{
		{Campaign: id, MAC: node(1).MAC, Name: "rpi1", Iteration: 1, RebootID: "r1", PrevBootID: "b0", RequestedAt: t0, Status: -1, Outcome: "requested"},
		{Campaign: id, MAC: node(2).MAC, Name: "rpi2", Iteration: 1, RebootID: "r2", PrevBootID: "c0", RequestedAt: t0, Status: -1, Outcome: "requested"},
	}
	if err := s.SaveCampaignProgress(ctx(t), nil, requested); err != nil {
		t.Fatalf("SaveCampaignProgress(requested) = %v", err)
	}
	// The same rows again, with their outcome, replace the first ones.
	done := append([]store.CampaignBoot(nil), requested...)
	done[0].AckAt, done[0].DownAt, done[0].BootedAt, done[0].DoneAt = t0.Add(time.Millisecond), t0.Add(2*time.Millisecond), t0.Add(time.Second), t0.Add(2*time.Second)
	done[0].Method, done[0].NodeMethod, done[0].Fallback, done[0].Rescued, done[0].BootID = "PoE-reboot", "kexec", true, true, "b1"
	done[0].Status, done[0].Metrics, done[0].Outcome = 0, map[string]float64{"rtt_ms": 1.25, "loss": 0}, "completed"
	done[1].Outcome, done[1].Error, done[1].Code = "failed", "no new boot within 5m", "boot-timeout"
	if err := s.SaveCampaignProgress(ctx(t), nodes, done); err != nil {
		t.Fatalf("SaveCampaignProgress(outcomes) = %v", err)
	}
	bad := requested[0]
	bad.Outcome = ""
	if err := s.SaveCampaignProgress(ctx(t), nodes, []store.CampaignBoot{bad}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("SaveCampaignProgress(no outcome) = %v, want ErrInvalid", err)
	}
	stranger := requested[0]
	stranger.MAC, stranger.Name = "52:54:00:00:00:77", "stranger"
	if err := s.SaveCampaignProgress(ctx(t), nil, []store.CampaignBoot{stranger}); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("SaveCampaignProgress(node not in the campaign) = %v, want ErrNotFound", err)
	}
	check := func(s store.Store) {
		t.Helper()
		got, err := s.CampaignBoots(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(done, got); diff != "" {
			t.Errorf("CampaignBoots (-want +got):\n%s", diff)
		}
		gotNodes, err := s.CampaignNodes(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(nodes, gotNodes); diff != "" {
			t.Errorf("CampaignNodes (-want +got):\n%s", diff)
		}
	}
	check(s)
	if reopen != nil {
		check(reopen())
	}
}

func testQuarantine(t *testing.T, s store.Store, reopen func() store.Store) {
	mustAdd(t, s, node(1), node(2))
	qs := []store.Quarantine{
		{MAC: node(2).MAC, Campaign: "1", Reason: "2 failed boots in a row", Since: t0},
		{MAC: node(1).MAC, Campaign: "1", Reason: "old", Since: t0},
		{MAC: "52:54:00:00:00:99", Campaign: "1", Reason: "forgotten", Since: t0},
	}
	if err := s.SetQuarantines(ctx(t), qs); err != nil {
		t.Fatalf("SetQuarantines = %v", err)
	}
	qs[1].Reason, qs[1].Campaign = "new", "2"
	if err := s.SetQuarantines(ctx(t), qs[1:2]); err != nil {
		t.Fatal(err)
	}
	want := []store.Quarantine{qs[1], qs[0]}
	got, err := s.Quarantines(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Quarantines (-want +got), unknown MAC skipped, latest record kept:\n%s", diff)
	}
	if ok, err := s.ClearQuarantine(ctx(t), node(1).MAC); err != nil || !ok {
		t.Errorf("ClearQuarantine(quarantined) = %t, %v, want true", ok, err)
	}
	if ok, err := s.ClearQuarantine(ctx(t), node(1).MAC); err != nil || ok {
		t.Errorf("ClearQuarantine(cleared) = %t, %v, want false", ok, err)
	}
	if err := s.ForgetDevice(ctx(t), node(2).MAC); err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen()
	}
	if got, err := s.Quarantines(ctx(t)); err != nil || len(got) != 0 {
		t.Errorf("Quarantines after clearing one and forgetting the other = %+v, %v, want none", got, err)
	}
}

// UnbootedCampaignBoots gives the rows of running campaigns still
// waiting for their boot.
func testUnbootedCampaignBoots(t *testing.T, s store.Store, reopen func() store.Store) {
	mustAdd(t, s, node(1), node(2))
	id, err := s.AddCampaign(ctx(t), campaign(3), campaignNodes(""))
	if err != nil {
		t.Fatal(err)
	}
	ended := campaign(3)
	ended.State = "completed"
	old, err := s.AddCampaign(ctx(t), ended, campaignNodes(""))
	if err != nil {
		t.Fatal(err)
	}
	rows := []store.CampaignBoot{
		{Campaign: id, MAC: node(1).MAC, Name: "rpi1", Iteration: 1, RebootID: "r1", PrevBootID: "b0", RequestedAt: t0, BootedAt: t0.Add(time.Second), BootID: "b1", Status: -1, Outcome: "completed"},
		{Campaign: id, MAC: node(1).MAC, Name: "rpi1", Iteration: 2, RebootID: "r2", PrevBootID: "b1", RequestedAt: t0.Add(time.Minute),
			AckAt: t0.Add(time.Minute + time.Millisecond), DownAt: t0.Add(time.Minute + time.Millisecond), Method: "PoE-reboot", Fallback: true, Status: -1, Outcome: "rebooted"},
		{Campaign: id, MAC: node(2).MAC, Name: "rpi2", Iteration: 2, PrevBootID: "c1", RequestedAt: t0.Add(time.Minute), Status: -1, Outcome: "requested"},
		// Not the node's latest iteration.
		{Campaign: id, MAC: node(2).MAC, Name: "rpi2", Iteration: 1, PrevBootID: "c0", RequestedAt: t0, Status: -1, Outcome: "rebooted"},
		{Campaign: old, MAC: node(1).MAC, Name: "rpi1", Iteration: 1, PrevBootID: "b0", RequestedAt: t0, Status: -1, Outcome: "requested"},
	}
	// The nodes' rows stay as AddCampaign wrote them (iteration 0): a
	// node's current iteration is its latest row's.
	if err := s.SaveCampaignProgress(ctx(t), nil, rows); err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen()
	}
	got, err := s.UnbootedCampaignBoots(ctx(t), "running", []string{"requested", "rebooted"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.CampaignBoot{rows[1], rows[2]}, got); diff != "" {
		t.Errorf("UnbootedCampaignBoots (-want +got):\n%s", diff)
	}
	if got, err := s.UnbootedCampaignBoots(ctx(t), "running", []string{"requested"}); err != nil || len(got) != 1 || got[0].Name != "rpi2" {
		t.Errorf("UnbootedCampaignBoots(requested) = %+v, %v; want rpi2's row", got, err)
	}
	if got, err := s.UnbootedCampaignBoots(ctx(t), "running", nil); err != nil || len(got) != 0 {
		t.Errorf("UnbootedCampaignBoots(no outcome) = %v, %v; want none", got, err)
	}
}
