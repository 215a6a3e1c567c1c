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
		tr.RebootEnded(mac, "test", "soft", boot.Rebooted)
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
