package history_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/history"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/vocab"
)

// counting is a real SQLite store that counts the grouped writes and can
// hold the first one until released.
type counting struct {
	store.Store
	adds, finishes atomic.Int32
	hold           chan struct{} // when not nil, the first AddReboots waits for it
	held           chan struct{} // closed when the first AddReboots waits
	once           sync.Once
}

func (c *counting) AddReboots(ctx context.Context, rs []store.Reboot) ([]string, error) {
	c.adds.Add(1)
	if c.hold != nil {
		first := false
		c.once.Do(func() { first = true })
		if first {
			close(c.held)
			<-c.hold
		}
	}
	return c.Store.AddReboots(ctx, rs)
}

func (c *counting) FinishReboots(ctx context.Context, rs []store.Reboot) error {
	c.finishes.Add(1)
	return c.Store.FinishReboots(ctx, rs)
}

func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func logger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func rec(i int) store.Reboot {
	at := time.Now()
	return store.Reboot{Batch: "b", Requester: "alice", Cause: "test", NodeMAC: fmt.Sprintf("52:54:00:00:02:%02x", i),
		NodeName: fmt.Sprintf("n%d", i), RequestedAt: at, FinishedAt: at}
}

// Records that arrive while one is being written go together in the next
// transaction, and each caller gets its own ID once its row is stored.
func TestBeginsArrivingDuringAWriteAreGrouped(t *testing.T) {
	t.Parallel()
	st := &counting{Store: newStore(t)}
	r := history.New(st, "", logger(t))
	const n = 50
	ids := make([]string, n)
	// The bubble lets the test wait until every Begin is queued behind the
	// held write (blocked on a channel); the store lives outside it.
	synctest.Test(t, func(t *testing.T) {
		st.hold, st.held = make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var err error
			if ids[0], err = r.Begin(context.Background(), rec(0)); err != nil {
				t.Error(err)
			}
		})
		<-st.held // record 0 is being written; the others queue up
		for i := 1; i < n; i++ {
			wg.Go(func() {
				var err error
				if ids[i], err = r.Begin(context.Background(), rec(i)); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		close(st.hold)
		wg.Wait()
	})
	if got := st.adds.Load(); got != 2 {
		t.Errorf("AddReboots calls for %d records = %d, want 2 (the first, then the others together)", n, got)
	}
	rows, err := st.Reboots(t.Context(), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		if row.State != store.RebootRunning {
			t.Errorf("%s: state %q, want running", row.NodeName, row.State)
		}
		seen[row.ID] = true
	}
	for i, id := range ids {
		if id == "" || !seen[id] {
			t.Errorf("Begin(n%d) = %q, not a stored record", i, id)
		}
	}
}

// A record that cannot be stored fails alone; the others of its write go in.
func TestBadRecordFailsAlone(t *testing.T) {
	t.Parallel()
	st := &counting{Store: newStore(t)}
	r := history.New(st, "", logger(t))
	ids := make([]string, 3)
	for i := range ids {
		var err error
		if ids[i], err = r.Begin(t.Context(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range ids {
		wg.Go(func() {
			done := rec(i)
			done.ID, done.OK, done.Method = ids[i], true, "soft-reboot"
			_, errs[i] = r.Finish(t.Context(), done)
		})
	}
	wg.Go(func() {
		bad := rec(9)
		bad.ID = "no-such-record"
		_, errs[3] = r.Finish(t.Context(), bad)
	})
	wg.Wait()
	if !errors.Is(errs[3], vocab.ErrNotFound) {
		t.Errorf("Finish(unknown id) = %v, want ErrNotFound", errs[3])
	}
	for i, err := range errs[:3] {
		if err != nil {
			t.Errorf("Finish(n%d) = %v, want nil beside a bad record", i, err)
		}
	}
	rows, err := st.Reboots(t.Context(), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.State != store.RebootDone || !row.OK {
			t.Errorf("%s: state %q ok %v, want done, OK", row.NodeName, row.State, row.OK)
		}
	}
}

// A reboot that never started (no ID) is added whole; Recover marks what
// a dead server left running, once.
func TestFinishWithoutBeginAndRecover(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	r := history.New(st, "server-a", logger(t))
	whole := rec(1)
	whole.Attempts = []store.Attempt{{Method: "none", Error: "not started", Code: "canceled", Started: whole.RequestedAt, Finished: whole.RequestedAt}}
	id, err := r.Finish(t.Context(), whole)
	if err != nil || id == "" {
		t.Fatalf("Finish(no id) = %q, %v; want a new record", id, err)
	}
	left, err := r.Begin(t.Context(), rec(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := history.New(st, "server-a", logger(t)).Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Reboots(t.Context(), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.RebootState{id: store.RebootDone, left: store.RebootInterrupted}
	for _, row := range rows {
		if want[row.ID] != row.State {
			t.Errorf("%s: state %q, want %q", row.NodeName, row.State, want[row.ID])
		}
	}
	if len(rows) != 2 {
		t.Errorf("%d rows, want 2", len(rows))
	}
}

// On a store shared by two servers, the records carry the server that
// runs them: server-b's start leaves server-a's running records alone,
// server-a's restart marks them interrupted.
func TestRecoverMarksOnlyTheServersOwnRecords(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	a := history.New(st, "server-a", logger(t))
	batch, err := a.BeginBatch(t.Context(), []store.Reboot{rec(1), rec(2)})
	if err != nil {
		t.Fatal(err)
	}
	one, err := a.Begin(t.Context(), rec(3))
	if err != nil {
		t.Fatal(err)
	}
	states := func() map[string]store.RebootState {
		t.Helper()
		rows, err := st.Reboots(t.Context(), store.RebootFilter{Batch: "b"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.RebootState{}
		for _, row := range rows {
			if row.Server != "server-a" {
				t.Errorf("%s: server %q, want server-a", row.NodeName, row.Server)
			}
			out[row.ID] = row.State
		}
		return out
	}
	if err := history.New(st, "server-b", logger(t)).Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]store.RebootState{batch[0]: store.RebootRunning, batch[1]: store.RebootRunning, one: store.RebootRunning}
	if diff := cmp.Diff(want, states()); diff != "" {
		t.Errorf("after server-b's start (-want +got):\n%s", diff)
	}
	if err := history.New(st, "server-a", logger(t)).Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	want = map[string]store.RebootState{batch[0]: store.RebootInterrupted, batch[1]: store.RebootInterrupted, one: store.RebootInterrupted}
	if diff := cmp.Diff(want, states()); diff != "" {
		t.Errorf("after server-a's restart (-want +got):\n%s", diff)
	}
}

// A failed reboot's record says whether the reboot may have acted on the
// node as the engine's result did: a restarted server reads it to know
// whether the node's next boot can be the reboot's.
func TestMayHaveActedFromRecord(t *testing.T) {
	t.Parallel()
	soft := func(err error) reboot.Attempt { return reboot.Attempt{Method: reboot.MethodSoft, Err: err} }
	poe := func(err error) reboot.Attempt { return reboot.Attempt{Method: api.MethodPoE, Err: err} }
	for _, c := range []struct {
		name     string
		attempts []reboot.Attempt
		want     bool
	}{
		{"refused, then forbidden", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindRefused}), poe(power.ErrForbidden)}, false},
		{"no route, then no method", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindUnreachable}), {Method: reboot.MethodHard, Err: reboot.ErrNoMethod}}, false},
		{"KO, then unknown port", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindKO}), poe(fmt.Errorf("n1: %w", power.ErrUnknownPosition))}, false},
		{"connect timeout", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindConnectTimeout})}, false},
		{"never started", []reboot.Attempt{{Method: "none", Err: context.Canceled}}, false},
		{"no attempt", nil, false},
		{"reply timeout, then forbidden", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindReplyTimeout}), poe(power.ErrForbidden)}, true},
		{"broken connection", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindBroken})}, true},
		{"refused, then switch unreachable", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindRefused}), poe(power.ErrUnreachable)}, true},
		{"refused, then switch denied", []reboot.Attempt{soft(&netservice.Error{Kind: netservice.KindRefused}), poe(power.ErrDenied)}, true},
	} {
		res := reboot.Result{Node: reboot.Node{Name: "n1", MAC: "52:54:00:00:02:01"}, Attempts: c.attempts}
		if got := res.MayHaveActed(); got != c.want {
			t.Fatalf("%s: the engine's MayHaveActed = %t, want %t (test out of date)", c.name, got, c.want)
		}
		if got := history.MayHaveActed(history.FromResult(res, "b", "alice", "test")); got != c.want {
			t.Errorf("%s: MayHaveActed(record) = %t, want %t as the engine said", c.name, got, c.want)
		}
	}
	if !history.MayHaveActed(store.Reboot{OK: true}) {
		t.Error("MayHaveActed(a record of a reboot that worked) = false")
	}
}
