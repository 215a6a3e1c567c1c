package campaign_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/campaign"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vocab"
)

// heldStore holds each write of a row that records a done report until
// open is closed, and says so on held.
type heldStore struct {
	store.Store
	held chan []store.CampaignBoot // buffered: the first held write
	open chan struct{}
}

func (h *heldStore) SaveCampaignProgress(ctx context.Context, nodes []store.CampaignNode, boots []store.CampaignBoot) error {
	for _, b := range boots {
		if b.DoneAt.IsZero() {
			continue
		}
		select {
		case h.held <- boots:
		default:
		}
		select {
		case <-h.open:
		case <-ctx.Done():
			return ctx.Err()
		}
		break
	}
	return h.Store.SaveCampaignProgress(ctx, nodes, boots)
}

// doneResult is what DoneStored returned.
type doneResult struct {
	campaign  string
	iteration int
	err       error
}

// The answer to a done report that ends an iteration waits for the
// commit of the row recording it: while the store holds that write, the
// answer does not come (a bounded wait says unavailable, for the node to
// report again); once the write is let through, it names the iteration,
// and the stored row has the report's status and metrics. A repeat of
// the report is answered the same, at once.
func TestDoneAnsweredOnceStored(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, nodes := storeWithNodes(t, 1, 5)
	hs := &heldStore{Store: st, held: make(chan []store.CampaignBoot, 1), open: make(chan struct{})}
	lab := &bootedLab{ids: map[string]string{}}
	e := campaign.New(campaign.Config{Store: hs, Rebooter: lab, Boots: lab})
	e.ResumeFirst()
	stop := runEngine(t, e)
	defer stop()
	release := sync.OnceFunc(func() { close(hs.open) })
	defer release() // before stop, which writes what is pending
	c, err := e.Start(ctx, store.Campaign{Name: "held", Requester: "alice", Set: "all-nodes", Mode: api.CampaignRounds, Repeat: 1,
		UntilDone: true, DoneTimeout: time.Minute, BootTimeout: time.Minute, Quarantine: 2, State: api.CampaignRunning, CreatedAt: time.Now().UTC()}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	mac := nodes[0].MAC
	testutil.Eventually(t, 30*time.Second, "node1 booted in its iteration", func() bool {
		v, ok := e.View(c.ID)
		return ok && v.Nodes[0].Phase == api.BootBooted
	})
	bootID := lab.BootID(mac)
	lab.mu.Lock()
	obs := lab.obs
	lab.mu.Unlock()
	report := boot.DoneReport{MAC: mac, Name: "node1", Done: boot.Done{BootID: bootID, Status: 4, Metrics: map[string]float64{"score": 1.5}, At: time.Now()}}
	obs.NodeDone(report)

	answer := make(chan doneResult, 1)
	go func() {
		c, it, err := e.DoneStored(ctx, mac, bootID)
		answer <- doneResult{c, it, err}
	}()
	var held []store.CampaignBoot
	select {
	case held = <-hs.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the row recording the done report was never written")
	}
	if len(held) != 1 || held[0].BootID != bootID || held[0].Status != 4 {
		t.Fatalf("held write %+v, want node1's row with the done report", held)
	}
	select {
	case got := <-answer:
		t.Fatalf("DoneStored = %+v while the row's write is held, want no answer yet", got)
	default:
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _, err = e.DoneStored(short, mac, bootID)
	cancel()
	if !errors.Is(err, vocab.ErrUnavailable) {
		t.Errorf("DoneStored with a context that ends first = %v, want an unavailable error", err)
	}

	release()
	var got doneResult
	select {
	case got = <-answer:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer once the write went through")
	}
	if got != (doneResult{c.ID, 1, nil}) {
		t.Errorf("DoneStored = %+v, want campaign %s iteration 1", got, c.ID)
	}
	boots, err := st.CampaignBoots(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(boots) != 1 || boots[0].DoneAt.IsZero() || boots[0].Status != 4 || boots[0].Metrics["score"] != 1.5 || boots[0].Outcome != api.BootCompleted {
		t.Errorf("stored rows %+v, want node1's completed with status 4 and score 1.5", boots)
	}

	// The node reports again (its answer lost): the same iteration.
	report.Done.Status = 9
	obs.NodeDone(report)
	if c2, it, err := e.DoneStored(ctx, mac, bootID); c2 != c.ID || it != 1 || err != nil {
		t.Errorf("DoneStored of the repeated report = %s, %d, %v; want campaign %s iteration 1", c2, it, err, c.ID)
	}
	// Another boot's report ended nothing.
	if c2, it, err := e.DoneStored(ctx, mac, "other-boot"); c2 != "" || it != 0 || err != nil {
		t.Errorf("DoneStored of another boot = %q, %d, %v; want nothing", c2, it, err)
	}
}

// A server that starts serving before it resumes the campaigns can take
// a node's done report before the iteration it ends is resumed: the
// resumed iteration takes it from the tracker, and the answer, after the
// resumption, names it once its row is stored. A report a killed server
// had stored, and answered or not, is answered the same by the next.
func TestDoneBeforeResumption(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, nodes := storeWithNodes(t, 2, 6)
	start := time.Now().UTC().Add(-time.Minute)
	id, err := st.AddCampaign(ctx, store.Campaign{Name: "resumed", Requester: "alice", Set: "all-nodes", Mode: api.CampaignRounds, Repeat: 1,
		UntilDone: true, DoneTimeout: time.Hour, BootTimeout: time.Hour, Quarantine: 2, State: api.CampaignRunning, Round: 1, CreatedAt: start}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	mac1, mac2 := nodes[0].MAC, nodes[1].MAC
	row := func(mac, name string) store.CampaignBoot {
		return store.CampaignBoot{Campaign: id, MAC: mac, Name: name, Iteration: 1, RebootID: "r-" + name, PrevBootID: name + "-b0",
			RequestedAt: start, AckAt: start, DownAt: start, Method: "soft-reboot", BootedAt: start.Add(time.Second), BootID: name + "-b1",
			Status: -1, Outcome: api.BootBooted}
	}
	// node1 waits for its done report; node2's was stored, its answer
	// lost with the server.
	done2 := row(mac2, "node2")
	done2.DoneAt, done2.Status, done2.Metrics, done2.Outcome = start.Add(2*time.Second), 0, map[string]float64{"runs": 3}, api.BootCompleted
	if err := st.SaveCampaignProgress(ctx, nil, []store.CampaignBoot{row(mac1, "node1"), done2}); err != nil {
		t.Fatal(err)
	}
	lab := &bootedLab{ids: map[string]string{mac1: "node1-b1", mac2: "node2-b1"},
		dones: map[string]*boot.Done{mac1: {BootID: "node1-b1", Status: 2, At: time.Now()}}}
	e := campaign.New(campaign.Config{Store: st, Rebooter: lab, Boots: lab})
	e.ResumeFirst()
	answer := make(chan doneResult, 1)
	go func() {
		c, it, err := e.DoneStored(ctx, mac1, "node1-b1") // before Run resumes
		answer <- doneResult{c, it, err}
	}()
	stop := runEngine(t, e)
	defer stop()
	var got doneResult
	select {
	case got = <-answer:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to node1's done report")
	}
	if got != (doneResult{id, 1, nil}) {
		t.Errorf("DoneStored of node1's report = %+v, want campaign %s iteration 1", got, id)
	}
	boots, err := st.CampaignBoots(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boots {
		if b.MAC == mac1 && (b.Outcome != api.BootCompleted || b.Status != 2 || b.DoneAt.IsZero()) {
			t.Errorf("node1's stored row %+v, want completed by its done report, status 2", b)
		}
	}
	if c, it, err := e.DoneStored(ctx, mac2, "node2-b1"); c != id || it != 1 || err != nil {
		t.Errorf("DoneStored of node2's report again = %q, %d, %v; want campaign %s iteration 1", c, it, err, id)
	}
	testutil.Eventually(t, 30*time.Second, "the campaign ended", func() bool { return e.Running() == 0 })
	lab.mu.Lock()
	defer lab.mu.Unlock()
	if len(lab.asked) != 0 {
		t.Errorf("reboots asked after the restart: %v, want none", lab.asked)
	}
}
