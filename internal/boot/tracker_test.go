package boot_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

// stuckWatchdog gives every node a 60 s boot timeout and one retry; its
// reboots last until their context ends.
type stuckWatchdog struct {
	started  chan string
	returned atomic.Bool
}

func (w *stuckWatchdog) Limits(_ context.Context, macs []string) (map[string]boot.Limit, error) {
	out := map[string]boot.Limit{}
	for _, m := range macs {
		out[m] = boot.Limit{Timeout: time.Minute, Retries: 1}
	}
	return out, nil
}

func (w *stuckWatchdog) Reboot(ctx context.Context, mac string) {
	w.started <- mac
	<-ctx.Done()
	time.Sleep(10 * time.Millisecond) // a reboot that takes a moment to stop
	w.returned.Store(true)
}

// storeWithNode opens a store in a temporary directory, with one node.
func storeWithNode(t *testing.T, mac, name string, created time.Time) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.AddDevice(t.Context(), store.Device{MAC: mac, Name: name, Type: store.TypeNode, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	return st
}

// newTracker returns a tracker on a store holding one node, on a fake
// clock at t0, closed at the test's end; wd may be nil.
func newTracker(t *testing.T, mac, name string, t0 time.Time, wd boot.Watchdog) (*boot.Tracker, store.Store, *servertest.Clock) {
	t.Helper()
	st := storeWithNode(t, mac, name, t0)
	clock := servertest.NewClock(t0)
	tr, err := boot.New(t.Context(), boot.Config{Clock: clock}, st, slog.New(slog.NewTextHandler(t.Output(), nil)), wd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr, st, clock
}

// Run returns only once the watchdog's reboots have returned and what the
// tracker had pending is in the store.
func TestRunWaitsForWatchdogAndFlushes(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:00:03:01"
	st := storeWithNode(t, mac, "stuck", time.Now())
	clock := servertest.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	wd := &stuckWatchdog{started: make(chan string, 1)}
	tr, err := boot.New(t.Context(), boot.Config{Clock: clock}, st, slog.New(slog.NewTextHandler(t.Output(), nil)), wd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	// Run starts the sweeps on its goroutine: advance until the watchdog fires.
	testutil.Eventually(t, 20*time.Second, "the watchdog's reboot", func() bool {
		clock.Advance(61 * time.Second)
		select {
		case got := <-wd.started:
			if got != mac {
				t.Fatalf("watchdog rebooted %s, want %s", got, mac)
			}
			return true
		case <-time.After(10 * time.Millisecond): // the sweep's time to react before the next advance
			return false
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !wd.returned.Load() {
		t.Error("Run returned while a watchdog reboot was still running")
	}
	statuses, err := st.BootStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 1 || statuses[0].RetriesLeft != 0 || statuses[0].Cause != api.CauseStartup {
		t.Errorf("stored boot statuses after Run = %+v, want stuck's, no retry left, cause startup", statuses)
	}
	lines, err := st.LogLines(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Line != "stuck: boot timeout reached, trying hard-reboot (last try)." {
		t.Errorf("stored platform log after Run = %+v, want the watchdog's line", lines)
	}
}

// A flush writes boot statuses, reboot boot times and log lines together;
// when one part cannot be written, the others still are.
func TestFlushWritesEveryPart(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:03:02", "flushed"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, st, clock := newTracker(t, mac, name, t0, nil)
	// reboot has the tracker note a reboot of the node and its boot as
	// bootID, then flush.
	reboot := func(bootID string) string {
		t.Helper()
		ids, err := st.AddReboots(t.Context(), []store.Reboot{{Batch: "b-" + bootID, Requester: "alice", Cause: "test", NodeMAC: mac, NodeName: name, RequestedAt: t0, FinishedAt: t0}})
		if err != nil {
			t.Fatal(err)
		}
		tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: ids[0]}, clock.Now())
		tr.RebootEnded(mac, "test", "soft", boot.Rebooted, true)
		tr.Report(mac, name, bootID, "")
		tr.Flush()
		return ids[0]
	}
	check := func(id, bootID string, lines int) {
		t.Helper()
		statuses, err := st.BootStatuses(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(statuses) != 1 || statuses[0].BootID != bootID || !statuses[0].Booted {
			t.Errorf("stored boot statuses = %+v, want %s booted as %s", statuses, name, bootID)
		}
		recs, err := st.Reboots(t.Context(), store.RebootFilter{Batch: "b-" + bootID})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].ID != id || recs[0].BootID != bootID || recs[0].BootedAt.IsZero() {
			t.Errorf("stored reboot = %+v, want %s booted as %s", recs, id, bootID)
		}
		got, err := st.LogLines(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != lines {
			t.Errorf("stored platform log = %+v, want %d lines", got, lines)
		}
	}
	id := reboot("boot-1")
	check(id, "boot-1", 2) // down (rebooted), then booted

	// The tracker's next log line numbers are taken: its lines fail.
	seq := tr.Log().Seq()
	if err := st.AddLogLines(t.Context(), []store.LogLine{{Seq: seq + 1, At: t0, Line: "x"}, {Seq: seq + 2, At: t0, Line: "y"}}); err != nil {
		t.Fatal(err)
	}
	id = reboot("boot-2")
	check(id, "boot-2", 4) // the two lines above only
}

// The status of a node that a recorded reboot takes down is held back:
// a boot that comes within downDelay (2 min) writes the only status of
// the reboot; else the sweep writes the down status then, and Close at
// once. The platform log's line is written at once either way.
func TestRebootDownStatusIsHeldBack(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:03:03", "held"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tr, st, clock := newTracker(t, mac, name, t0, nil)
	stored := func() store.BootStatus {
		t.Helper()
		bs, err := st.BootStatuses(t.Context())
		if err != nil || len(bs) != 1 {
			t.Fatalf("stored boot statuses = %+v, %v, want one", bs, err)
		}
		return bs[0]
	}
	reboot := func() {
		t.Helper()
		ids, err := st.AddReboots(t.Context(), []store.Reboot{{Batch: "b", Requester: "alice", Cause: api.CauseRebootRequested, NodeMAC: mac, NodeName: name,
			OK: true, Method: "soft", RequestedAt: clock.Now(), FinishedAt: clock.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: ids[0]}, clock.Now())
		tr.RebootEnded(mac, api.CauseRebootRequested, "soft", boot.Rebooted, true)
		tr.Flush()
	}
	tr.Report(mac, name, "boot-1", "")
	tr.Flush()
	reboot()
	if b := stored(); !b.Booted || b.BootID != "boot-1" {
		t.Errorf("stored status right after the reboot = %+v, want booted as boot-1 (held back)", b)
	}
	if lines, err := st.LogLines(t.Context(), 0, 0); err != nil || len(lines) != 2 {
		t.Errorf("stored platform log = %+v, %v, want booted and down", lines, err)
	}
	tr.Report(mac, name, "boot-2", "")
	tr.Flush()
	if b := stored(); !b.Booted || b.BootID != "boot-2" || b.LastMethod != "soft" {
		t.Errorf("stored status after the boot = %+v, want booted as boot-2, last method soft", b)
	}

	// No boot within downDelay: the sweep writes the down status.
	reboot()
	asked := clock.Now()
	tr.Start()
	clock.Advance(time.Minute)
	tr.Flush()
	if b := stored(); !b.Booted {
		t.Errorf("stored status a minute after the reboot = %+v, want still booted (held back)", b)
	}
	clock.Advance(time.Minute + time.Second)
	testutil.Eventually(t, 10*time.Second, "the down status written", func() bool {
		tr.Flush()
		b := stored()
		return !b.Booted && b.Cause == api.CauseRebootRequested && b.Since.Equal(asked) && b.Method == "soft"
	})

	// Close writes what is held back.
	tr.Report(mac, name, "boot-3", "")
	tr.Flush()
	reboot()
	tr.Close()
	if b := stored(); b.Booted || b.Cause != api.CauseRebootRequested {
		t.Errorf("stored status after Close = %+v, want down for the reboot", b)
	}
}
