package boot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// recorder is an Observer that keeps what it hears.
type recorder struct {
	mu     sync.Mutex
	booted []boot.Booted
	done   []boot.DoneReport
}

func (r *recorder) NodeBooted(b boot.Booted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.booted = append(r.booted, b)
}

func (r *recorder) NodeDone(d boot.DoneReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, d)
}

// A boot's context says why it happened: nothing the server did, a
// user's reboot (with its method, even when the boot is reported before
// the reboot's outcome), or a campaign's.
func TestBootContext(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:01", "ctx"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, _, clock := newTracker(t, mac, name, t0, nil)
	rec := &recorder{}
	tr.Observe(rec)

	got := reported(t, tr, mac, name, "b1", "")
	if diff := cmp.Diff(api.BootContext{BootID: "b1", Cause: api.BootCauseUnknown}, got); diff != "" {
		t.Errorf("first boot's context (-want +got):\n%s", diff)
	}
	// The same boot reported again is no new boot, and keeps its context.
	if again := reported(t, tr, mac, name, "b1", ""); again != got {
		t.Errorf("context of a boot reported twice = %+v, then %+v", got, again)
	}

	at := clock.Now()
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "r1", Requester: "alice", Cause: api.CauseRebootRequested}, at)
	tr.RebootEnded(mac, api.CauseRebootRequested, "soft-reboot", boot.Rebooted, true)
	got = reported(t, tr, mac, name, "b2", "kexec")
	want := api.BootContext{BootID: "b2", Cause: api.BootCauseUser, Requester: "alice", Method: "soft-reboot", NodeMethod: "kexec", RebootID: "r1", RequestedAt: &at}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("context after alice's reboot (-want +got):\n%s", diff)
	}

	// A node that boots before its reboot's outcome is known gets the
	// method later, in BootContext.
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "r2", Requester: "bob", Cause: api.CauseRebootRequested,
		Campaign: "c1", CampaignName: "warm", Iteration: 2, Iterations: 5}, at)
	got = reported(t, tr, mac, name, "b3", "")
	if got.Method != "" || got.Cause != api.BootCauseCampaign || got.Campaign != "c1" || got.Iteration != 2 || got.Iterations != 5 {
		t.Errorf("context of a campaign's boot before the outcome = %+v, want cause campaign, c1 2/5, no method", got)
	}
	tr.RebootEnded(mac, api.CauseRebootRequested, "PoE-reboot", boot.Rebooted, true)
	if c := tr.BootContext(mac); c == nil || c.Method != "PoE-reboot" || c.BootID != "b3" {
		t.Errorf("BootContext after the outcome = %+v, want b3 by PoE-reboot", c)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ids []string
	for _, b := range rec.booted {
		ids = append(ids, b.BootID)
	}
	if diff := cmp.Diff([]string{"b1", "b2", "b3"}, ids); diff != "" {
		t.Errorf("boots the observer heard of (-want +got):\n%s", diff)
	}
}

// A done report counts only for the node's current boot.
func TestReportDone(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:02", "done"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, _, clock := newTracker(t, mac, name, t0, nil)
	rec := &recorder{}
	tr.Observe(rec)
	if err := tr.ReportDone(mac, boot.Done{BootID: "b1"}); !errors.Is(err, boot.ErrUnknownNode) {
		t.Errorf("done before any boot = %v, want ErrUnknownNode", err)
	}
	reported(t, tr, mac, name, "b1", "")
	reported(t, tr, mac, name, "b2", "")
	if err := tr.ReportDone(mac, boot.Done{BootID: "b1", Status: 3}); !errors.Is(err, boot.ErrStaleBoot) {
		t.Errorf("done for an earlier boot = %v, want ErrStaleBoot", err)
	}
	clock.Advance(time.Second)
	if err := tr.ReportDone(mac, boot.Done{BootID: "b2", Status: 3, Metrics: map[string]float64{"rtt": 1.5}}); err != nil {
		t.Fatalf("done for the current boot = %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []boot.DoneReport{{MAC: mac, Name: name, Done: boot.Done{BootID: "b2", At: t0.Add(time.Second), Status: 3, Metrics: map[string]float64{"rtt": 1.5}}}}
	if diff := cmp.Diff(want, rec.done); diff != "" {
		t.Errorf("done reports the observer heard of (-want +got):\n%s", diff)
	}
}

// rescuer is a watchdog whose reboots are recorded as the server's are,
// with one retry per node.
type rescuer struct {
	tr       *boot.Tracker
	rebooted chan struct{}
}

func (w *rescuer) Limits(_ context.Context, macs []string) (map[string]boot.Limit, error) {
	out := map[string]boot.Limit{}
	for _, m := range macs {
		out[m] = boot.Limit{Timeout: time.Minute, Retries: 2}
	}
	return out, nil
}

func (w *rescuer) Reboot(ctx context.Context, mac string) {
	w.tr.BeginReboot(mac, "", boot.RebootInfo{RecordID: "wd", Requester: api.WatchdogRequester, Cause: api.CauseBootupTimeout}, w.tr.Now())
	w.tr.RebootEnded(mac, api.CauseBootupTimeout, "PoE-reboot", boot.Rebooted, true)
	w.rebooted <- struct{}{}
}

// campaignRebooted returns a tracker (with a rescuer watchdog, not
// started) on a fake clock at t0, where node mac booted b1, then
// campaign c7's iteration 3 of 10 rebooted it, waiting wait for its boot.
func campaignRebooted(t *testing.T, mac, name string, t0 time.Time, wait time.Duration) (*boot.Tracker, *servertest.Clock, *rescuer) {
	t.Helper()
	wd := &rescuer{rebooted: make(chan struct{}, 1)}
	tr, _, clock := newTracker(t, mac, name, t0, wd)
	wd.tr = tr // before the first sweep (Start)
	reported(t, tr, mac, name, "b1", "")
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "c", Requester: "alice", Cause: api.CauseRebootRequested,
		Campaign: "c7", Iteration: 3, Iterations: 10, Wait: wait}, clock.Now())
	tr.RebootEnded(mac, api.CauseRebootRequested, "soft-reboot", boot.Rebooted, true)
	return tr, clock, wd
}

// A boot that the watchdog rescued says so, with its try number, and
// stays the campaign iteration it rescued.
func TestBootContextWatchdog(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:03", "rescued"
	tr, clock, wd := campaignRebooted(t, mac, name, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), 0)
	tr.Start()
	testutil.Eventually(t, 10*time.Second, "the watchdog's first try", func() bool {
		clock.Advance(61 * time.Second)
		select {
		case <-wd.rebooted:
			return true
		default:
			return false
		}
	})
	got := reported(t, tr, mac, name, "b2", "")
	if got.Cause != api.BootCauseWatchdog || got.WatchdogTry != 1 || got.WatchdogTries != 2 || got.Method != "PoE-reboot" ||
		got.Campaign != "c7" || got.Iteration != 3 || got.Iterations != 10 || got.Requester != api.WatchdogRequester {
		t.Errorf("context of a rescued boot = %+v, want bootup timeout, try 1 of 2 by PoE-reboot, campaign c7 3/10", got)
	}
}

// Reboots an earlier server asked and whose boots it did not see give
// the next boot its context, as if this server had asked them; a node
// that booted since, or that this server rebooted meanwhile, keeps its
// own.
func TestRestore(t *testing.T) {
	t.Parallel()
	const rescued, booted, mine = "52:54:00:00:04:04", "52:54:00:00:04:05", "52:54:00:00:04:06"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st := storeWithNode(t, rescued, "rescued", t0)
	for _, d := range []store.Device{{MAC: booted, Name: "booted"}, {MAC: mine, Name: "mine"}} {
		d.Type, d.CreatedAt = store.TypeNode, t0
		if err := st.AddDevice(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	// What the killed server had written: rescued is down, its watchdog's
	// first try of 2 in progress; booted booted after its reboot.
	if err := st.SetBootStatuses(t.Context(), []store.BootStatus{
		{MAC: rescued, BootID: "b1", Since: t0, Cause: api.CauseBootupTimeout, Method: "PoE-reboot", RetriesLeft: 1},
		{MAC: booted, BootID: "c2", Booted: true, Since: t0.Add(time.Second), RetriesLeft: -1},
		{MAC: mine, BootID: "d1", Booted: true, Since: t0.Add(-time.Hour), RetriesLeft: -1},
	}); err != nil {
		t.Fatal(err)
	}
	clock := servertest.NewClock(t0.Add(time.Minute))
	tr, err := boot.New(t.Context(), boot.Config{Clock: clock}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	tr.BeginReboot(mine, "mine", boot.RebootInfo{RecordID: "m", Requester: "carol", Cause: api.CauseRebootRequested}, clock.Now())
	wd := boot.RebootInfo{RecordID: "wd", Requester: api.WatchdogRequester, Cause: api.CauseBootupTimeout, Campaign: "c7", CampaignName: "warm", Iteration: 3, Iterations: 10}
	n := tr.Restore([]boot.Awaited{
		{MAC: rescued, Info: wd, Requested: t0, Method: "PoE-reboot", Retries: 2},
		{MAC: booted, Info: boot.RebootInfo{RecordID: "old", Requester: "bob", Cause: api.CauseRebootRequested}, Requested: t0, Method: "soft-reboot"},
		{MAC: mine, Info: boot.RebootInfo{RecordID: "old2", Requester: "bob", Cause: api.CauseRebootRequested}, Requested: t0},
		{MAC: "52:54:00:00:04:99", Info: boot.RebootInfo{RecordID: "gone"}, Requested: t0},
	})
	if n != 1 {
		t.Errorf("Restore took %d reboots, want 1 (rescued's)", n)
	}
	// The boot known before the restart is no new boot.
	if got := reported(t, tr, rescued, "rescued", "b1", ""); got.Cause != api.BootCauseUnknown || got.RebootID != "" {
		t.Errorf("context of the boot before the reboot = %+v, want unknown", got)
	}
	got := reported(t, tr, rescued, "rescued", "b2", "")
	at := t0
	want := api.BootContext{BootID: "b2", Cause: api.BootCauseWatchdog, Requester: api.WatchdogRequester, Method: "PoE-reboot", RebootID: "wd",
		RequestedAt: &at, WatchdogTry: 1, WatchdogTries: 2, Campaign: "c7", CampaignName: "warm", Iteration: 3, Iterations: 10}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("context of the first boot after the restart (-want +got):\n%s", diff)
	}
	if got := reported(t, tr, rescued, "rescued", "b3", ""); got.Cause != api.BootCauseUnknown {
		t.Errorf("context of the boot after = %+v, want unknown: the restored reboot completed", got)
	}
	if got := reported(t, tr, booted, "booted", "c3", ""); got.Cause != api.BootCauseUnknown {
		t.Errorf("context of a node that booted after its reboot = %+v, want unknown", got)
	}
	if got := reported(t, tr, mine, "mine", "d2", ""); got.RebootID != "m" || got.Requester != "carol" {
		t.Errorf("context of a node this server rebooted = %+v, want carol's reboot m", got)
	}
}

// A reboot is a boot's cause only within its wait: one that failed but
// may have reached the node (a request sent, no reply) gives its context
// to a boot within the wait, not to one after (someone pulled the plug
// days later), nor does a reboot that reached nothing, even at once. A
// boot that is not the reboot's has cause unknown and leaves the
// reboot's record without boot time.
func TestBootContextBound(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:07", "bound"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, st, clock := newTracker(t, mac, name, t0, nil)
	reported(t, tr, mac, name, "b0", "")
	wait := 30 * time.Minute // 180 s × (9 + 1)
	for i, c := range []struct {
		name    string
		outcome boot.Outcome
		wait    time.Duration // the reboot's Wait; 0: boot.MaxWait
		after   time.Duration // from the reboot to the boot
		want    string        // the boot's cause
	}{
		{"failed, boot within the wait", boot.Failed, wait, wait, api.BootCauseUser},
		{"failed, boot after the wait", boot.Failed, wait, wait + time.Second, api.BootCauseUnknown},
		{"rebooted, boot after the wait", boot.Rebooted, wait, wait + time.Second, api.BootCauseUnknown},
		{"failed, no wait, boot within MaxWait", boot.Failed, 0, boot.MaxWait, api.BootCauseUser},
		{"failed, no wait, boot after MaxWait", boot.Failed, 0, boot.MaxWait + time.Second, api.BootCauseUnknown},
		{"not reached, boot at once", boot.NotReached, wait, time.Second, api.BootCauseUnknown},
	} {
		batch := fmt.Sprintf("b%d", i)
		at := clock.Now()
		ids, err := st.AddReboots(t.Context(), []store.Reboot{{Batch: batch, Requester: "alice", Cause: api.CauseRebootRequested, NodeMAC: mac, NodeName: name,
			RequestedAt: at, FinishedAt: at}})
		if err != nil {
			t.Fatal(err)
		}
		tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: ids[0], Requester: "alice", Cause: api.CauseRebootRequested, Wait: c.wait}, at)
		tr.RebootEnded(mac, api.CauseRebootRequested, "soft-reboot", c.outcome, true)
		clock.Advance(c.after)
		bootID := fmt.Sprintf("b%d", i+1)
		got := reported(t, tr, mac, name, bootID, "")
		tr.Flush()
		recs, err := st.Reboots(t.Context(), store.RebootFilter{Batch: batch})
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s: records %+v, %v", c.name, recs, err)
		}
		if c.want == api.BootCauseUser {
			if got.Cause != c.want || got.RebootID != ids[0] || got.RebootOutcome != api.RebootOutcomeFailed || recs[0].BootID != bootID {
				t.Errorf("%s: context %+v, record booted as %q; want alice's reboot %s, outcome failed, booted as %s", c.name, got, recs[0].BootID, ids[0], bootID)
			}
			continue
		}
		if got.Cause != c.want || got.RebootID != "" || got.Requester != "" || !recs[0].BootedAt.IsZero() || recs[0].BootID != "" {
			t.Errorf("%s: context %+v, record booted as %q at %v; want cause unknown, the record without boot", c.name, got, recs[0].BootID, recs[0].BootedAt)
		}
		// Nothing is left pending: the next boot is no reboot's either.
		if again := reported(t, tr, mac, name, bootID+"'", ""); again.Cause != api.BootCauseUnknown {
			t.Errorf("%s: the boot after = %+v, want cause unknown", c.name, again)
		}
	}
}

// A node found down is booting while a failed reboot of it is pending,
// and down again once the reboot's wait has passed. A reboot still in
// progress past its wait is left to its end, which marks its node down.
func TestFailedRebootWaitEnds(t *testing.T) {
	t.Parallel()
	const mac, name, slow = "52:54:00:00:04:08", "gone", "52:54:00:00:04:0a"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, _, clock := newTracker(t, mac, name, t0, nil)
	reported(t, tr, mac, name, "b1", "")
	reported(t, tr, slow, "slow", "s1", "")
	tr.MarkDown(mac, api.CauseUnknown, "")
	for _, m := range []string{mac, slow} {
		tr.BeginReboot(m, "", boot.RebootInfo{RecordID: "r" + m, Requester: "alice", Cause: api.CauseRebootRequested, Wait: time.Minute}, clock.Now())
	}
	tr.RebootEnded(mac, api.CauseRebootRequested, "", boot.Failed, true)
	if st, _ := tr.Status(mac); st.State != api.StateBooting {
		t.Fatalf("state after a failed reboot that may have reached the node = %s, want booting", st.State)
	}
	tr.Start()
	testutil.Eventually(t, 10*time.Second, "the node down again", func() bool {
		clock.Advance(time.Second)
		st, _ := tr.Status(mac)
		if st.State == api.StateDown && !clock.Now().After(t0.Add(time.Minute)) {
			t.Fatalf("down again at %s, within the reboot's wait", clock.Now().Sub(t0))
		}
		return st.State == api.StateDown
	})
	// The sweep that took gone down ran past slow's wait too.
	tr.RebootEnded(slow, api.CauseRebootRequested, "PoE-reboot", boot.Rebooted, true)
	if st, _ := tr.Status(slow); st.State != api.StateBooting || st.Method != "PoE-reboot" {
		t.Errorf("status of a node whose reboot ended after its wait = %+v, want booting after PoE-reboot", st)
	}
}

// The watchdog's rescue of a campaign's boot is the campaign's iteration
// only within the campaign's wait: a later boot is the rescue's alone.
func TestBootContextRescueAfterCampaignWait(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:09", "slow"
	tr, clock, wd := campaignRebooted(t, mac, name, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), 90*time.Second)
	tr.Start()
	clock.Advance(61 * time.Second) // one sweep, past the boot timeout: the rescue, within the campaign's wait
	select {
	case <-wd.rebooted:
	case <-time.After(10 * time.Second):
		t.Fatal("no watchdog reboot 61 s after the campaign's")
	}
	clock.Advance(30 * time.Second) // 91 s after the campaign's reboot
	got := reported(t, tr, mac, name, "b2", "")
	if got.Cause != api.BootCauseWatchdog || got.RebootID != "wd" || got.WatchdogTry != 1 || got.Campaign != "" || got.Iteration != 0 {
		t.Errorf("context of a rescued boot after the campaign's wait = %+v, want the watchdog's try 1, no campaign", got)
	}
}

// A restored reboot says what the earlier server knew of its outcome: an
// interrupted one (the server died before knowing whether the node got
// the request) or a failed one that may have reached the node gives its
// context to the node's next boot within its wait, saying so; one that
// reached nothing is not restored; a boot after the wait, or a second
// boot, is no reboot's.
func TestRestoreOutcome(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	macs := map[string]string{"intr": "52:54:00:00:04:11", "failed": "52:54:00:00:04:12", "gone": "52:54:00:00:04:13", "late": "52:54:00:00:04:14"}
	st := storeWithNode(t, macs["intr"], "intr", t0)
	var statuses []store.BootStatus
	for name, mac := range macs {
		if name != "intr" {
			if err := st.AddDevice(t.Context(), store.Device{MAC: mac, Name: name, Type: store.TypeNode, CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		statuses = append(statuses, store.BootStatus{MAC: mac, BootID: name + "0", Booted: true, Since: t0.Add(-time.Hour), RetriesLeft: -1})
	}
	if err := st.SetBootStatuses(t.Context(), statuses); err != nil {
		t.Fatal(err)
	}
	clock := servertest.NewClock(t0.Add(time.Minute))
	tr, err := boot.New(t.Context(), boot.Config{Clock: clock}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	info := func(id string, wait time.Duration) boot.RebootInfo {
		return boot.RebootInfo{RecordID: id, Requester: "alice", Cause: api.CauseRebootRequested, Wait: wait}
	}
	n := tr.Restore([]boot.Awaited{
		{MAC: macs["intr"], Info: info("r-intr", 30*time.Minute), Requested: t0, Outcome: boot.Interrupted},
		{MAC: macs["failed"], Info: info("r-failed", 30*time.Minute), Requested: t0, Outcome: boot.Failed},
		{MAC: macs["gone"], Info: info("r-gone", 30*time.Minute), Requested: t0, Outcome: boot.NotReached},
		{MAC: macs["late"], Info: info("r-late", 2*time.Minute), Requested: t0, Method: "soft-reboot", Outcome: boot.Rebooted},
	})
	if n != 3 {
		t.Errorf("Restore took %d reboots, want 3 (all but the one that reached nothing)", n)
	}
	at := t0
	for _, c := range []struct{ name, outcome string }{{"intr", api.RebootOutcomeInterrupted}, {"failed", api.RebootOutcomeFailed}} {
		got := reported(t, tr, macs[c.name], c.name, c.name+"1", "")
		want := api.BootContext{BootID: c.name + "1", Cause: api.BootCauseUser, Requester: "alice", RebootID: "r-" + c.name, RebootOutcome: c.outcome, RequestedAt: &at}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: context of the first boot after the restart (-want +got):\n%s", c.name, diff)
		}
		if got := reported(t, tr, macs[c.name], c.name, c.name+"2", ""); got.Cause != api.BootCauseUnknown || got.RebootID != "" || got.RebootOutcome != "" {
			t.Errorf("%s: context of the second boot = %+v, want unknown: the reboot had its boot", c.name, got)
		}
	}
	if got := reported(t, tr, macs["gone"], "gone", "gone1", ""); got.Cause != api.BootCauseUnknown || got.RebootID != "" {
		t.Errorf("gone: context %+v, want unknown: the reboot reached nothing", got)
	}
	clock.Advance(time.Minute + time.Second) // 2 min 1 s after late's reboot
	if got := reported(t, tr, macs["late"], "late", "late1", ""); got.Cause != api.BootCauseUnknown || got.RebootID != "" {
		t.Errorf("late: context %+v, want unknown: the boot came after the reboot's wait", got)
	}
}

// A boot reported while its reboot still runs takes the reboot's context
// at once; the outcome, once known, completes it for the node's next
// report of that boot: the method that worked, or that the reboot failed
// (the boot may not be its).
func TestBootContextBeforeOutcome(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:15", "fast"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, _, clock := newTracker(t, mac, name, t0, nil)
	reported(t, tr, mac, name, "b0", "")
	for i, c := range []struct {
		outcome       boot.Outcome
		method, wants string
	}{
		{boot.Rebooted, "vnode hard-reboot", ""},
		{boot.Failed, "", api.RebootOutcomeFailed},
	} {
		id := fmt.Sprintf("r%d", i)
		tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: id, Requester: "alice", Cause: api.CauseRebootRequested, Wait: time.Hour}, clock.Now())
		bootID := fmt.Sprintf("b%d", i+1)
		if got := reported(t, tr, mac, name, bootID, ""); got.RebootID != id || got.Method != "" || got.RebootOutcome != "" {
			t.Errorf("%s: context before the outcome = %+v, want reboot %s, no method nor outcome yet", id, got, id)
		}
		tr.RebootEnded(mac, api.CauseRebootRequested, c.method, c.outcome, true)
		if got := reported(t, tr, mac, name, bootID, ""); got.RebootID != id || got.Method != c.method || got.RebootOutcome != c.wants {
			t.Errorf("%s: context after the outcome = %+v, want method %q, outcome %q", id, got, c.method, c.wants)
		}
	}
}

// reported reports a boot that must be taken, and returns its context.
func reported(t *testing.T, tr *boot.Tracker, mac, name, bootID, nodeMethod string) api.BootContext {
	t.Helper()
	bc, err := tr.Report(mac, name, bootID, nodeMethod)
	if err != nil {
		t.Fatalf("report of boot %s of %s: %v", bootID, name, err)
	}
	return bc
}

// The late report of an earlier boot (a report retried over a server's
// restart, sent before the node rebooted) is refused: it is no new boot,
// and the reboot pending meanwhile still waits for the node's real boot.
// The tracker remembers the node's last boots, not all.
func TestPastBootReportRefused(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:09", "late"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, _, clock := newTracker(t, mac, name, t0, nil)
	rec := &recorder{}
	tr.Observe(rec)
	const boots = 12
	for i := range boots {
		reported(t, tr, mac, name, fmt.Sprintf("b%d", i), "")
	}
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "r1", Requester: "alice", Cause: api.CauseRebootRequested}, clock.Now())
	tr.RebootEnded(mac, api.CauseRebootRequested, "soft-reboot", boot.Rebooted, true)

	last := fmt.Sprintf("b%d", boots-1)
	for _, old := range []string{"b3", fmt.Sprintf("b%d", boots-2)} {
		if !tr.PastBoot(mac, old) {
			t.Errorf("PastBoot(%s) = false, want true", old)
		}
		_, err := tr.Report(mac, name, old, "")
		if !errors.Is(err, boot.ErrPastBoot) || !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), last) {
			t.Errorf("report of the earlier boot %s: %v, want ErrPastBoot naming it and %s", old, err, last)
		}
	}
	if tr.PastBoot(mac, last) || tr.PastBoot(mac, "b0") || tr.PastBoot(mac, "never") {
		t.Error("PastBoot true for the current boot, one too old to be remembered, or an unknown one")
	}
	rec.mu.Lock()
	n := len(rec.booted)
	rec.mu.Unlock()
	if n != boots {
		t.Errorf("%d boots observed, want %d: a refused report was taken as a boot", n, boots)
	}
	if st, _ := tr.Status(mac); st.State != api.StateBooting || st.BootID != last {
		t.Errorf("status after refused reports = %+v, want booting for alice's reboot since boot %s", st, last)
	}
	got := reported(t, tr, mac, name, "new", "")
	if got.RebootID != "r1" || got.Requester != "alice" {
		t.Errorf("the real boot's context = %+v, want alice's reboot r1", got)
	}
}
