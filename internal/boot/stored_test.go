package boot_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
)

// gatedStore holds each write of boot state at its gate (when gated) and
// fails the writes while failing is set.
type gatedStore struct {
	store.Store
	gated   atomic.Bool
	entered chan struct{} // a write of boot state began
	gate    chan struct{} // lets one write go on
	failing atomic.Bool
}

var errWriteFailed = errors.New("the disk is full")

type stateWriter interface {
	SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error
}

func (g *gatedStore) SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error {
	if g.gated.Load() {
		g.entered <- struct{}{}
		<-g.gate
	}
	if g.failing.Load() {
		return errWriteFailed
	}
	return g.Store.(stateWriter).SetBootState(ctx, bs, rb, ls)
}

func (g *gatedStore) SetBootStatuses(ctx context.Context, bs []store.BootStatus) error {
	if g.failing.Load() {
		return errWriteFailed
	}
	return g.Store.SetBootStatuses(ctx, bs)
}

func (g *gatedStore) SetRebootsBooted(ctx context.Context, rb []store.RebootBoot) error {
	if g.failing.Load() {
		return errWriteFailed
	}
	return g.Store.SetRebootsBooted(ctx, rb)
}

func gatedTracker(t *testing.T, g *gatedStore) *boot.Tracker {
	t.Helper()
	tr, err := boot.New(t.Context(), boot.Config{Clock: servertest.NewClock(time.Now())}, g, slog.New(slog.NewTextHandler(t.Output(), nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// storedBoot fails the test unless the store says the node booted as
// bootID.
func storedBoot(t *testing.T, st store.Store, bootID string) {
	t.Helper()
	statuses, err := st.BootStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 1 || statuses[0].BootID != bootID || !statuses[0].Booted {
		t.Errorf("stored boot statuses = %+v, want booted as %s", statuses, bootID)
	}
}

// Stored returns only once the store holds the boot a report brought:
// what the server waits for before it answers the report.
func TestStoredWaitsForTheWrite(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:05:01", "gated"
	g := &gatedStore{Store: storeWithNode(t, mac, name, time.Now()), entered: make(chan struct{}), gate: make(chan struct{})}
	g.gated.Store(true)
	tr := gatedTracker(t, g)
	tr.Report(mac, name, "b1", "")
	stored := make(chan error, 1)
	go func() { stored <- tr.Stored(t.Context()) }()
	<-g.entered
	select {
	case err := <-stored:
		t.Fatalf("Stored returned (%v) while the store was still writing", err)
	default:
	}
	g.gate <- struct{}{}
	if err := <-stored; err != nil {
		t.Fatalf("Stored = %v", err)
	}
	storedBoot(t, g.Store, "b1")
	g.gated.Store(false) // for Close's last flush
	if err := tr.Stored(t.Context()); err != nil {
		t.Errorf("Stored with nothing to write = %v, want nil", err)
	}
}

// A flush that fails tells the waiting reports, and the flusher writes
// the same changes again once the store works.
func TestStoredFailsThenWritesAgain(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:05:02", "failing"
	g := &gatedStore{Store: storeWithNode(t, mac, name, time.Now())}
	g.failing.Store(true)
	tr := gatedTracker(t, g)
	tr.Report(mac, name, "b1", "")
	if err := tr.Stored(t.Context()); !errors.Is(err, errWriteFailed) {
		t.Fatalf("Stored with a failing store = %v, want %v", err, errWriteFailed)
	}
	g.failing.Store(false)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := tr.Stored(ctx); err != nil {
		t.Fatalf("Stored once the store works = %v", err)
	}
	storedBoot(t, g.Store, "b1")
}

// A report that reaches a closed tracker is not taken for stored.
func TestStoredAfterClose(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:05:03", "late"
	g := &gatedStore{Store: storeWithNode(t, mac, name, time.Now())}
	tr := gatedTracker(t, g)
	tr.Close()
	tr.Report(mac, name, "b1", "")
	if err := tr.Stored(t.Context()); !errors.Is(err, boot.ErrStopped) {
		t.Errorf("Stored after Close = %v, want %v", err, boot.ErrStopped)
	}
}

// A boot reported before its reboot's outcome (the agent answers, then
// reboots at once) is preceded in the platform log by the node's down
// line, as with the outcome first, and the outcome adds no other.
func TestBootBeforeOutcomeLogsDown(t *testing.T) {
	t.Parallel()
	const mac, name = "52:54:00:00:05:04", "quick"
	tr, _, clock := newTracker(t, mac, name, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), nil)
	tr.Report(mac, name, "b1", "")
	seq := tr.Log().Seq()
	tr.BeginReboot(mac, name, boot.RebootInfo{RecordID: "r1", Cause: "reboot requested"}, clock.Now())
	tr.Report(mac, name, "b2", "")
	tr.RebootEnded(mac, "reboot requested", "soft-reboot", boot.Rebooted, true)
	lines, _ := tr.Log().After(seq)
	var got []string
	for _, l := range lines {
		got = append(got, l.Line)
	}
	want := []string{"node quick is down (cause: reboot requested)", "node quick is booted"}
	if !slices.Equal(got, want) {
		t.Errorf("platform log = %q, want %q", got, want)
	}
}
