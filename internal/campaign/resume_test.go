package campaign_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/campaign"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

// bootedLab stands for the boot tracker and the reboot path at the
// engine's edges: a node it reboots acknowledges at once and reports a
// new boot.
type bootedLab struct {
	mu  sync.Mutex
	ids map[string]string // +checklocks:mu
	obs boot.Observer     // +checklocks:mu
	// dones holds the done reports the tracker would have, by MAC.
	dones map[string]*boot.Done // +checklocks:mu
	// asked holds "campaign/node/iteration" for each reboot asked.
	asked []string // +checklocks:mu
	// outcomes, if not nil: each node's boot is reported at once, its
	// reboot's outcome given to the test to deliver, a batch's at a time.
	outcomes chan []func()
}

func (l *bootedLab) BootID(mac string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[mac]
}

func (l *bootedLab) Status(mac string) (*api.BootStatus, bool) {
	return &api.BootStatus{State: "booted", Since: time.Now(), BootID: l.BootID(mac)}, true
}

func (l *bootedLab) Done(mac string) *boot.Done {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dones[mac]
}

func (l *bootedLab) Observe(o boot.Observer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.obs = o
}

func (l *bootedLab) Reboot(_ context.Context, b campaign.Batch, done func(campaign.Outcome)) {
	var later []func()
	defer func() {
		if l.outcomes != nil {
			l.outcomes <- later
		}
	}()
	for _, n := range b.Nodes {
		l.mu.Lock()
		l.asked = append(l.asked, fmt.Sprintf("%s/%s/%d", b.Campaign.ID, n.Name, b.Iteration))
		id := fmt.Sprintf("%s-%d", n.Name, len(l.asked))
		l.ids[n.MAC] = id
		obs := l.obs
		l.mu.Unlock()
		o := campaign.Outcome{MAC: n.MAC, RebootID: "r-" + id, OK: true, Method: "soft-reboot", Ack: time.Now().UTC()}
		booted := boot.Booted{MAC: n.MAC, Name: n.Name, BootID: id, At: time.Now().UTC()}
		if l.outcomes != nil {
			obs.NodeBooted(booted)
			later = append(later, func() { done(o) })
			continue
		}
		done(o)
		obs.NodeBooted(booted)
	}
}

// A server killed in the middle of campaigns left their nodes' rows as
// they were several iterations before (the store writes a node's row
// when its state changes, not at each iteration): the resumed campaigns
// count from the iterations' rows, and end as uninterrupted ones would.
// In rounds, node1's rows say two good iterations and a failed one;
// node2's, a good one, a failed one, and a third in progress when the
// server died, which fails at once on resume (its boot time is over):
// its second failure in a row quarantines it. In free mode, node3's six
// iterations are complete, its last killed during its hold, before its
// end: it is finished, not rebooted, and its campaign ends.
func TestResumeCountsFromRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lab := &bootedLab{ids: map[string]string{}}
	var nodes []store.CampaignNode
	for i := 1; i <= 3; i++ {
		d := store.Device{MAC: fmt.Sprintf("52:54:00:00:01:%02x", i), Name: fmt.Sprintf("node%d", i), IP: fmt.Sprintf("127.0.1.%d", i),
			Type: store.TypeNode, Model: "rpi-b", BootMode: "network", Booted: true}
		if _, err := st.ReportDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, store.CampaignNode{MAC: d.MAC, Name: d.Name, Model: d.Model, State: api.NodeActive})
	}
	mac1, mac2, mac3 := nodes[0].MAC, nodes[1].MAC, nodes[2].MAC
	start := time.Now().UTC().Add(-time.Hour)
	camp := func(mode string, round int, hold time.Duration) store.Campaign {
		return store.Campaign{Name: mode, Requester: "alice", Set: "all-nodes", Mode: mode, Repeat: 6, Hold: hold,
			BootTimeout: 5 * time.Second, Quarantine: 2, State: api.CampaignRunning, Round: round, CreatedAt: start}
	}
	rounds, err := st.AddCampaign(ctx, camp(api.CampaignRounds, 3, 0), nodes[:2])
	if err != nil {
		t.Fatal(err)
	}
	free, err := st.AddCampaign(ctx, camp(api.CampaignFree, 6, time.Hour), nodes[2:])
	if err != nil {
		t.Fatal(err)
	}
	row := func(id, mac, name string, it int, outcome string) store.CampaignBoot {
		at := start.Add(time.Duration(it) * time.Minute)
		b := store.CampaignBoot{Campaign: id, MAC: mac, Name: name, Iteration: it, RebootID: fmt.Sprintf("r%d", it),
			PrevBootID: fmt.Sprintf("%s-b%d", name, it-1), RequestedAt: at, AckAt: at, DownAt: at, Method: "soft-reboot", Status: -1, Outcome: outcome}
		switch outcome {
		case api.BootCompleted:
			b.BootedAt, b.BootID = at.Add(time.Second), fmt.Sprintf("%s-b%d", name, it)
		case api.BootFailed:
			b.Error, b.Code = "no new boot within 5s", "boot-timeout"
		}
		return b
	}
	// The nodes' rows as of iteration 1; the rows of the iterations since
	// without them.
	stale := []store.CampaignNode{nodes[0], nodes[1]}
	for i := range stale {
		stale[i].Campaign, stale[i].Iteration, stale[i].Booted = rounds, 1, 1
	}
	if err := st.SaveCampaignProgress(ctx, stale, []store.CampaignBoot{
		row(rounds, mac1, "node1", 1, api.BootCompleted), row(rounds, mac2, "node2", 1, api.BootCompleted)}); err != nil {
		t.Fatal(err)
	}
	later := []store.CampaignBoot{
		row(rounds, mac1, "node1", 2, api.BootCompleted), row(rounds, mac1, "node1", 3, api.BootFailed),
		row(rounds, mac2, "node2", 2, api.BootFailed), row(rounds, mac2, "node2", 3, api.BootRebooted),
	}
	for it := 1; it <= 6; it++ {
		later = append(later, row(free, mac3, "node3", it, api.BootCompleted))
	}
	if err := st.SaveCampaignProgress(ctx, nil, later); err != nil {
		t.Fatal(err)
	}
	lab.ids[mac2] = "node2-b2" // node2 has not booted since its third reboot
	lab.ids[mac3] = "node3-b6"

	e := campaign.New(campaign.Config{Store: st, Rebooter: lab, Boots: lab})
	stop := runEngine(t, e)
	testutil.Eventually(t, 30*time.Second, "both campaigns ended", func() bool { return e.Running() == 0 })
	stop()

	want := map[string][]store.CampaignNode{
		rounds: {
			{Campaign: rounds, MAC: mac1, Name: "node1", Model: "rpi-b", State: api.NodeFinished, Iteration: 6, Booted: 5, Failed: 1},
			{Campaign: rounds, MAC: mac2, Name: "node2", Model: "rpi-b", State: api.NodeQuarantined, Iteration: 3, Booted: 1, Failed: 2, FailedInRow: 2,
				Reason: "2 failed boots in a row (the last: no new boot within 5s)"},
		},
		free: {{Campaign: free, MAC: mac3, Name: "node3", Model: "rpi-b", State: api.NodeFinished, Iteration: 6, Booted: 6}},
	}
	for _, id := range []string{rounds, free} {
		cs, err := st.Campaigns(ctx, store.CampaignFilter{ID: id})
		if err != nil || len(cs) != 1 || cs[0].State != api.CampaignDone || cs[0].Round != 6 {
			t.Errorf("campaign %s = %+v, %v; want done in round 6", id, cs, err)
		}
		stored, err := st.CampaignNodes(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// Each node's last write was its last change of state, with the
		// counts of then, which are final.
		if diff := cmp.Diff(want[id], stored); diff != "" {
			t.Errorf("campaign %s: stored nodes (-want +got):\n%s", id, diff)
		}
		boots, err := st.CampaignBoots(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		tallied := append([]store.CampaignNode(nil), stored...)
		campaign.Tally(tallied, boots)
		if diff := cmp.Diff(want[id], tallied); diff != "" {
			t.Errorf("campaign %s: nodes counted from the rows (-want +got):\n%s", id, diff)
		}
	}
	lab.mu.Lock()
	asked := lab.asked
	lab.mu.Unlock()
	wantAsked := []string{rounds + "/node1/4", rounds + "/node1/5", rounds + "/node1/6"}
	if diff := cmp.Diff(wantAsked, asked); diff != "" {
		t.Errorf("reboots asked after the restart (-want +got): none again for an iteration asked before\n%s", diff)
	}
	qs, err := st.Quarantines(ctx)
	if err != nil || len(qs) != 1 || qs[0].MAC != mac2 || qs[0].Campaign != rounds {
		t.Errorf("Quarantines = %+v, %v; want node2's, by campaign %s", qs, err, rounds)
	}
}

// A campaign the server does not run is shown from the store, its nodes'
// counts from the rows, whatever the nodes' rows say (here, written at
// the start and never again, as a campaign another server runs has
// them).
func TestShowFromStoreCountsFromRows(t *testing.T) {
	t.Parallel()
	var id string
	env := servertest.New(t, nil, func(cfg *server.Config) {
		ctx := t.Context()
		c := store.Campaign{Name: "elsewhere", Requester: "alice", Set: "node1", Mode: api.CampaignRounds, Repeat: 3, BootTimeout: time.Minute,
			Quarantine: 2, State: api.CampaignDone, Round: 3, CreatedAt: time.Now().UTC(), FinishedAt: time.Now().UTC()}
		var err error
		id, err = cfg.Store.AddCampaign(ctx, c, []store.CampaignNode{{MAC: "52:54:00:00:02:01", Name: "node1", Model: "rpi-b", State: api.NodeFinished}})
		if err != nil {
			t.Fatal(err)
		}
		var rows []store.CampaignBoot
		for it, outcome := range []string{api.BootFailed, api.BootCompleted, api.BootFailed} {
			rows = append(rows, store.CampaignBoot{Campaign: id, MAC: "52:54:00:00:02:01", Name: "node1", Iteration: it + 1,
				RequestedAt: c.CreatedAt, Status: -1, Outcome: outcome})
		}
		if err := cfg.Store.SaveCampaignProgress(ctx, nil, rows); err != nil {
			t.Fatal(err)
		}
	})
	got, err := env.Client.Campaign(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 1 {
		t.Fatalf("campaign %s nodes = %+v, want node1", id, got.Nodes)
	}
	n := got.Nodes[0]
	if n.State != api.NodeFinished || n.Iteration != 3 || n.Booted != 1 || n.Failed != 2 || n.FailedInRow != 1 || n.Phase != api.BootFailed {
		t.Errorf("node1 = %+v; want finished, iteration 3, 1 booted, 2 failed, 1 in a row, last phase failed", n)
	}
}

// A server killed after a Stop had written its nodes' rows (stopped) but
// before the campaign's own end: the resumed campaign ends stopped, and
// reboots nothing.
func TestResumeAfterStopWritten(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, nodes := storeWithNodes(t, 2, 3)
	id, err := st.AddCampaign(ctx, store.Campaign{Name: "stopped", Requester: "alice", Set: "all-nodes", Mode: api.CampaignRounds, Repeat: 5,
		BootTimeout: 5 * time.Second, Quarantine: 2, State: api.CampaignRunning, Round: 1, CreatedAt: time.Now().UTC()}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		nodes[i].Campaign, nodes[i].State = id, api.NodeStopped
	}
	if err := st.SaveCampaignProgress(ctx, nodes, nil); err != nil {
		t.Fatal(err)
	}
	lab := &bootedLab{ids: map[string]string{}}
	e := campaign.New(campaign.Config{Store: st, Rebooter: lab, Boots: lab})
	stop := runEngine(t, e)
	testutil.Eventually(t, 30*time.Second, "the campaign ended", func() bool { return e.Running() == 0 })
	stop()
	cs, err := st.Campaigns(ctx, store.CampaignFilter{ID: id})
	if err != nil || len(cs) != 1 || cs[0].State != api.CampaignStopped {
		t.Errorf("campaign %s = %+v, %v; want stopped", id, cs, err)
	}
	lab.mu.Lock()
	defer lab.mu.Unlock()
	if len(lab.asked) != 0 {
		t.Errorf("reboots asked after the restart: %v, want none", lab.asked)
	}
}

// A node's boot report can reach the campaign before its reboot's
// outcome (the agent answers, then reboots, and the engine's outcome
// comes after): each row still has the acknowledgement and the method.
func TestBootBeforeOutcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, nodes := storeWithNodes(t, 3, 4)
	lab := &bootedLab{ids: map[string]string{}, outcomes: make(chan []func())}
	e := campaign.New(campaign.Config{Store: st, Rebooter: lab, Boots: lab})
	stop := runEngine(t, e)
	c, err := e.Start(ctx, store.Campaign{Name: "boot-first", Requester: "alice", Set: "all-nodes", Mode: api.CampaignRounds, Repeat: 3,
		BootTimeout: 5 * time.Second, Quarantine: 2, State: api.CampaignRunning, CreatedAt: time.Now().UTC()}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		later := <-lab.outcomes
		testutil.EventuallyNil(t, 30*time.Second, fmt.Sprintf("round %d's boots stored", round), func() error {
			boots, err := st.CampaignBoots(ctx, c.ID)
			if err != nil {
				return err
			}
			booted := 0
			for _, b := range boots {
				if b.Iteration == round && !b.BootedAt.IsZero() {
					booted++
				}
			}
			if booted != len(nodes) {
				return fmt.Errorf("%d of %d booted", booted, len(nodes))
			}
			return nil
		})
		for _, deliver := range later {
			deliver()
		}
	}
	testutil.Eventually(t, 30*time.Second, "the campaign ended", func() bool { return e.Running() == 0 })
	stop()
	boots, err := st.CampaignBoots(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(boots) != 9 {
		t.Fatalf("%d rows, want 9 (3 nodes, 3 rounds)", len(boots))
	}
	for _, b := range boots {
		if b.Outcome != api.BootCompleted || b.Method != "soft-reboot" || b.AckAt.IsZero() || b.BootedAt.IsZero() || b.RebootID == "" {
			t.Errorf("%s iteration %d: %+v; want completed, with its acknowledgement, method, boot and reboot id", b.Name, b.Iteration, b)
		}
	}
}

// storeWithNodes opens a store holding n booted nodes, node1 to nodeN at
// 127.0.<block>.i, and returns them as a campaign's active nodes.
func storeWithNodes(t *testing.T, n, block int) (store.Store, []store.CampaignNode) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var nodes []store.CampaignNode
	for i := 1; i <= n; i++ {
		d := store.Device{MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", block, i), Name: fmt.Sprintf("node%d", i), IP: fmt.Sprintf("127.0.%d.%d", block, i),
			Type: store.TypeNode, Model: "rpi-b", BootMode: "network", Booted: true}
		if _, err := st.ReportDevice(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, store.CampaignNode{MAC: d.MAC, Name: d.Name, Model: d.Model, State: api.NodeActive})
	}
	return st, nodes
}

// runEngine runs e until the returned stop is called, once it has
// resumed what the store holds.
func runEngine(t *testing.T, e *campaign.Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	<-e.Resumed()
	return func() {
		t.Helper()
		cancel()
		if err := <-ran; err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
}
