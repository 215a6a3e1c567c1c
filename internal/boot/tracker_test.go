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

// Run returns only once the watchdog's reboots have returned and what the
// tracker had pending is in the store.
func TestRunWaitsForWatchdogAndFlushes(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const mac = "52:54:00:00:03:01"
	if err := st.AddDevice(t.Context(), store.Device{MAC: mac, Name: "stuck", Type: store.TypeNode, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
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
	for fired := false; !fired; {
		clock.Advance(61 * time.Second)
		select {
		case got := <-wd.started:
			if got != mac {
				t.Fatalf("watchdog rebooted %s, want %s", got, mac)
			}
			fired = true
		case <-time.After(10 * time.Millisecond):
		}
	}
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
