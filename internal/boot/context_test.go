package boot_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
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

	got := tr.Report(mac, name, "b1", "")
	if diff := cmp.Diff(api.BootContext{BootID: "b1", Cause: api.BootCauseUnknown}, got); diff != "" {
		t.Errorf("first boot's context (-want +got):\n%s", diff)
	}
	// The same boot reported again is no new boot, and keeps its context.
	if again := tr.Report(mac, name, "b1", ""); again != got {
		t.Errorf("context of a boot reported twice = %+v, then %+v", got, again)
	}

	at := clock.Now()
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "r1", Requester: "alice", Cause: api.CauseRebootRequested}, at)
	tr.RebootEnded(mac, api.CauseRebootRequested, "soft-reboot", true)
	got = tr.Report(mac, name, "b2", "kexec")
	want := api.BootContext{BootID: "b2", Cause: api.BootCauseUser, Requester: "alice", Method: "soft-reboot", NodeMethod: "kexec", RebootID: "r1", RequestedAt: &at}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("context after alice's reboot (-want +got):\n%s", diff)
	}

	// A node that boots before its reboot's outcome is known gets the
	// method later, in BootContext.
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "r2", Requester: "bob", Cause: api.CauseRebootRequested,
		Campaign: "c1", CampaignName: "warm", Iteration: 2, Iterations: 5}, at)
	got = tr.Report(mac, name, "b3", "")
	if got.Method != "" || got.Cause != api.BootCauseCampaign || got.Campaign != "c1" || got.Iteration != 2 || got.Iterations != 5 {
		t.Errorf("context of a campaign's boot before the outcome = %+v, want cause campaign, c1 2/5, no method", got)
	}
	tr.RebootEnded(mac, api.CauseRebootRequested, "PoE-reboot", true)
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
	tr.Report(mac, name, "b1", "")
	tr.Report(mac, name, "b2", "")
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
	w.tr.RebootEnded(mac, api.CauseBootupTimeout, "PoE-reboot", true)
	w.rebooted <- struct{}{}
}

// A boot that the watchdog rescued says so, with its try number, and
// stays the campaign iteration it rescued.
func TestBootContextWatchdog(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:04:03", "rescued"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	wd := &rescuer{rebooted: make(chan struct{}, 1)}
	tr, _, clock := newTracker(t, mac, name, t0, wd)
	wd.tr = tr // before the first sweep (Start, below)
	tr.Report(mac, name, "b1", "")
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "c", Requester: "alice", Cause: api.CauseRebootRequested,
		Campaign: "c7", Iteration: 3, Iterations: 10}, clock.Now())
	tr.RebootEnded(mac, api.CauseRebootRequested, "soft-reboot", true)
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
	got := tr.Report(mac, name, "b2", "")
	if got.Cause != api.BootCauseWatchdog || got.WatchdogTry != 1 || got.WatchdogTries != 2 || got.Method != "PoE-reboot" ||
		got.Campaign != "c7" || got.Iteration != 3 || got.Iterations != 10 || got.Requester != api.WatchdogRequester {
		t.Errorf("context of a rescued boot = %+v, want bootup timeout, try 1 of 2 by PoE-reboot, campaign c7 3/10", got)
	}
}
