package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

func testBootStatuses(t *testing.T, s store.Store, _ func() store.Store) {
	mustAdd(t, s, node(1), node(2), node(3))
	want := []store.BootStatus{
		{MAC: node(1).MAC, BootID: "b-1", Booted: true, Since: t0, LastMethod: "soft-reboot", RetriesLeft: 9},
		{MAC: node(2).MAC, BootID: "b-2", Since: t0.Add(time.Second), Cause: "reboot requested", Method: "PoE-reboot", LastMethod: "PoE-reboot", RetriesLeft: 3},
	}
	unknown := store.BootStatus{MAC: "52:54:00:00:00:99", BootID: "x", Booted: true, Since: t0}
	if err := s.SetBootStatuses(ctx(t), append(append([]store.BootStatus(nil), want...), unknown)); err != nil {
		t.Fatalf("SetBootStatuses = %v", err)
	}
	got, err := s.BootStatuses(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BootStatuses() (-want +got), unknown MAC must be skipped:\n%s", diff)
	}
	d1, _ := s.Device(ctx(t), node(1).MAC)
	d2, _ := s.Device(ctx(t), node(2).MAC)
	if !d1.Booted || d2.Booted {
		t.Errorf("Device.Booted = %t, %t, want true, false (kept in step with the status)", d1.Booted, d2.Booted)
	}

	// A new status replaces the old one.
	want[0] = store.BootStatus{MAC: node(1).MAC, BootID: "b-1", Since: t0.Add(time.Minute), Cause: "unknown", RetriesLeft: 9}
	if err := s.SetBootStatuses(ctx(t), want[:1]); err != nil {
		t.Fatal(err)
	}
	got, _ = s.BootStatuses(ctx(t))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BootStatuses() after update (-want +got):\n%s", diff)
	}
	if d1, _ := s.Device(ctx(t), node(1).MAC); d1.Booted {
		t.Error("Device.Booted still true after a status with Booted false")
	}

	if err := s.ForgetDevice(ctx(t), node(2).MAC); err != nil {
		t.Fatal(err)
	}
	got, _ = s.BootStatuses(ctx(t))
	if len(got) != 1 || got[0].MAC != node(1).MAC {
		t.Errorf("BootStatuses() after forgetting rpi2 = %+v, want rpi1's only", got)
	}
}

func testRebootsBooted(t *testing.T, s store.Store, _ func() store.Store) {
	ids, err := s.AddReboots(ctx(t), []store.Reboot{
		{Batch: "b", NodeMAC: node(1).MAC, NodeName: "rpi1", Method: "soft-reboot", OK: true, RequestedAt: t0, FinishedAt: t0},
		{Batch: "b", NodeMAC: node(2).MAC, NodeName: "rpi2", Method: "soft-reboot", OK: true, RequestedAt: t0, FinishedAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(3 * time.Second)
	if err := s.SetRebootsBooted(ctx(t), []store.RebootBoot{{ID: ids[0], BootID: "new-boot", At: at}, {ID: "no-such-id", BootID: "x", At: at}}); err != nil {
		t.Fatalf("SetRebootsBooted = %v", err)
	}
	got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	booted := map[string]store.Reboot{}
	for _, r := range got {
		booted[r.NodeName] = r
	}
	if r := booted["rpi1"]; !r.BootedAt.Equal(at) || r.BootID != "new-boot" {
		t.Errorf("rpi1's reboot: booted at %v with boot id %q, want %v and new-boot", r.BootedAt, r.BootID, at)
	}
	if r := booted["rpi2"]; !r.BootedAt.IsZero() || r.BootID != "" {
		t.Errorf("rpi2's reboot: booted at %v with boot id %q, want neither", r.BootedAt, r.BootID)
	}
	if err := s.SetRebootsBooted(ctx(t), []store.RebootBoot{{ID: ids[1]}}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("SetRebootsBooted(no time) = %v, want ErrInvalid", err)
	}
}

func testLogLines(t *testing.T, s store.Store, _ func() store.Store) {
	var want []store.LogLine
	for i := int64(1); i <= 5; i++ {
		want = append(want, store.LogLine{Seq: i, At: t0.Add(time.Duration(i) * time.Second), Stream: "platform.nodes", Node: "rpi1", Line: "node rpi1 is booted"})
	}
	if err := s.AddLogLines(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LogLines(ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LogLines(0, 0) (-want +got):\n%s", diff)
	}
	got, _ = s.LogLines(ctx(t), 0, 2)
	if diff := cmp.Diff(want[3:], got); diff != "" {
		t.Errorf("LogLines(0, 2) must be the last two, oldest first (-want +got):\n%s", diff)
	}
	got, _ = s.LogLines(ctx(t), 4, 0)
	if diff := cmp.Diff(want[4:], got); diff != "" {
		t.Errorf("LogLines(after 4) (-want +got):\n%s", diff)
	}
	if err := s.AddLogLines(ctx(t), []store.LogLine{{Seq: 6, At: t0}, {Seq: 3, At: t0}}); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("AddLogLines(seq 3 again) = %v, want ErrConflict", err)
	}
	if got, _ := s.LogLines(ctx(t), 5, 0); len(got) != 0 {
		t.Errorf("a failed AddLogLines left %d lines, want none (atomic)", len(got))
	}
	if _, err := s.LogLines(ctx(t), 0, -1); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("LogLines(limit -1) = %v, want ErrInvalid", err)
	}
}

func testBootSurvivesReopen(t *testing.T, s store.Store, reopen func() store.Store) {
	if reopen == nil {
		t.Skip("store cannot be reopened")
	}
	mustAdd(t, s, node(1))
	st := store.BootStatus{MAC: node(1).MAC, BootID: "b", Since: t0, Cause: "bootup timeout", Method: "PoE-reboot", RetriesLeft: 4}
	if err := s.SetBootStatuses(ctx(t), []store.BootStatus{st}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLogLines(ctx(t), []store.LogLine{{Seq: 1, At: t0, Stream: "platform.nodes", Node: "rpi1", Line: "node rpi1 is booted"}}); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	bs, _ := s.BootStatuses(ctx(t))
	ls, _ := s.LogLines(ctx(t), 0, 0)
	if diff := cmp.Diff([]store.BootStatus{st}, bs); diff != "" || len(ls) != 1 {
		t.Errorf("after reopen: boot statuses (-want +got):\n%s\nlog lines %+v", diff, ls)
	}
}

// A reboot is recorded running when it starts and completed when its
// outcome is known; its boot, reported in between, stays.
func testRebootProgress(t *testing.T, s store.Store, _ func() store.Store) {
	running := []store.Reboot{
		{Batch: "b", Requester: "alice", Cause: "reboot requested", NodeMAC: node(1).MAC, NodeName: "rpi1", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0},
		{Batch: "b", Requester: "alice", Cause: "reboot requested", NodeMAC: node(2).MAC, NodeName: "rpi2", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0},
	}
	ids, err := s.AddReboots(ctx(t), running)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].State != store.RebootRunning || got[1].State != store.RebootRunning {
		t.Fatalf("Reboots() after AddReboots(running) = %+v, want two running", got)
	}
	booted := t0.Add(3 * time.Second)
	if err := s.SetRebootsBooted(ctx(t), []store.RebootBoot{{ID: ids[0], BootID: "boot-2", At: booted}}); err != nil {
		t.Fatal(err)
	}
	done := running[0]
	done.ID, done.State, done.Method, done.OK = ids[0], "", "PoE-reboot", true
	done.RequestedAt, done.AckAt, done.FinishedAt = t0.Add(time.Millisecond), t0.Add(time.Second), t0.Add(time.Second)
	done.Attempts = []store.Attempt{
		{Method: "soft-reboot", Error: "connection refused", Code: "refused", Started: t0, Finished: t0.Add(time.Millisecond)},
		{Method: "PoE-reboot", Started: t0.Add(time.Millisecond), Finished: t0.Add(time.Second)},
	}
	if err := s.FinishReboots(ctx(t), []store.Reboot{done}); err != nil {
		t.Fatalf("FinishReboots = %v", err)
	}
	got, err = s.Reboots(ctx(t), store.RebootFilter{NodeMAC: node(1).MAC})
	if err != nil {
		t.Fatal(err)
	}
	want := done
	want.State, want.BootedAt, want.BootID = store.RebootDone, booted, "boot-2"
	if diff := cmp.Diff([]store.Reboot{want}, got); diff != "" {
		t.Errorf("Reboots(rpi1) after FinishReboots (-want +got):\n%s", diff)
	}
	if err := s.FinishReboots(ctx(t), []store.Reboot{done}); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("FinishReboots(done again) = %v, want ErrConflict", err)
	}
	// All or nothing: an unknown ID leaves the known one running.
	other := running[1]
	other.ID, other.State = ids[1], store.RebootDone
	if err := s.FinishReboots(ctx(t), []store.Reboot{other, {ID: "no-such-id", NodeName: "rpi9"}}); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("FinishReboots(unknown id) = %v, want ErrNotFound", err)
	}
	if got, _ := s.Reboots(ctx(t), store.RebootFilter{NodeMAC: node(2).MAC}); len(got) != 1 || got[0].State != store.RebootRunning {
		t.Errorf("rpi2 after a failed FinishReboots = %+v, want still running", got)
	}
	if err := s.FinishReboots(ctx(t), []store.Reboot{{ID: ids[1], State: store.RebootRunning}}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("FinishReboots(state running) = %v, want ErrInvalid", err)
	}
	if _, err := s.AddReboots(ctx(t), []store.Reboot{{NodeName: "rpi3", State: "sleeping", RequestedAt: t0, FinishedAt: t0}}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("AddReboots(state sleeping) = %v, want ErrInvalid", err)
	}
}

// Completing records replaces their attempts, whether they had some or
// not; a record listed twice in one call is refused, and nothing changes.
func testFinishReplacesAttempts(t *testing.T, s store.Store, _ func() store.Store) {
	old := []store.Attempt{{Method: "soft-reboot", Error: "timeout", Code: "timeout", Started: t0, Finished: t0}}
	ids, err := s.AddReboots(ctx(t), []store.Reboot{
		{Batch: "b", NodeMAC: node(1).MAC, NodeName: "rpi1", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0, Attempts: old},
		{Batch: "b", NodeMAC: node(2).MAC, NodeName: "rpi2", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make([]store.Reboot, 2)
	verified := true
	for i, id := range ids {
		done[i] = store.Reboot{ID: id, Batch: "b", NodeMAC: node(i + 1).MAC, NodeName: fmt.Sprintf("rpi%d", i+1), Method: "PoE-reboot", OK: true,
			RequestedAt: t0, FinishedAt: t0.Add(time.Second), Attempts: []store.Attempt{{Method: "PoE-reboot", Started: t0, Finished: t0.Add(time.Second),
				CutVerified: &verified, Cut: "sw1 read port 2 back off"}}}
	}
	if err := s.FinishReboots(ctx(t), []store.Reboot{done[0], done[1], done[0]}); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("FinishReboots(rpi1 twice) = %v, want ErrConflict", err)
	}
	if got, _ := s.Reboots(ctx(t), store.RebootFilter{Batch: "b"}); len(got) != 2 || got[0].State != store.RebootRunning || got[1].State != store.RebootRunning {
		t.Errorf("after a refused FinishReboots: %+v, want both still running", got)
	}
	if err := s.FinishReboots(ctx(t), done); err != nil {
		t.Fatalf("FinishReboots = %v", err)
	}
	checkFinished(t, s, done)
}

// Records left running by a server that died are interrupted at the next
// start; complete ones are left alone. These carry no server (as records
// written before schema version 8): any server's start marks them.
func testRebootInterrupted(t *testing.T, s store.Store, reopen func() store.Store) {
	ids, err := s.AddReboots(ctx(t), []store.Reboot{
		{Batch: "b", NodeMAC: node(1).MAC, NodeName: "rpi1", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0},
		{Batch: "b", NodeMAC: node(2).MAC, NodeName: "rpi2", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0},
		{Batch: "b", NodeMAC: node(3).MAC, NodeName: "rpi3", OK: true, Method: "soft-reboot", RequestedAt: t0, FinishedAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen() // what a restart sees
	}
	n, err := s.InterruptReboots(ctx(t), "server-b")
	if err != nil || n != 2 {
		t.Fatalf("InterruptReboots(server-b) = %d, %v; want 2, nil", n, err)
	}
	got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]store.RebootState{}
	for _, r := range got {
		states[r.ID] = r.State
	}
	want := map[string]store.RebootState{ids[0]: store.RebootInterrupted, ids[1]: store.RebootInterrupted, ids[2]: store.RebootDone}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states after InterruptReboots (-want +got):\n%s", diff)
	}
	if n, err := s.InterruptReboots(ctx(t), ""); err != nil || n != 0 {
		t.Errorf("InterruptReboots(\"\") again = %d, %v; want 0, nil", n, err)
	}
	// On a shared database, another server's start interrupts the records
	// of no server that a live server runs: its outcome, when it comes,
	// still lands.
	if err := s.FinishReboots(ctx(t), []store.Reboot{{ID: ids[0], NodeName: "rpi1", OK: true, Method: "soft-reboot", RequestedAt: t0, FinishedAt: t0}}); err != nil {
		t.Errorf("FinishReboots(interrupted) = %v, want nil", err)
	}
	if got, _ := s.Reboots(ctx(t), store.RebootFilter{NodeMAC: node(1).MAC}); len(got) != 1 || got[0].State != store.RebootDone || !got[0].OK {
		t.Errorf("rpi1 completed after being interrupted: %+v, want done, OK", got)
	}
}

// Two servers share the store: server-b's start marks interrupted its own
// records and those of no server, and leaves server-a's, which server-a
// is still running; server-a's own restart marks them. A record keeps its
// server when completed.
func testRebootInterruptedByServer(t *testing.T, s store.Store, reopen func() store.Store) {
	ids, err := s.AddReboots(ctx(t), []store.Reboot{
		{Batch: "a", NodeMAC: node(1).MAC, NodeName: "rpi1", State: store.RebootRunning, Server: "server-a", RequestedAt: t0, FinishedAt: t0},
		{Batch: "a", NodeMAC: node(2).MAC, NodeName: "rpi2", State: store.RebootRunning, Server: "server-a", RequestedAt: t0, FinishedAt: t0},
		{Batch: "b", NodeMAC: node(3).MAC, NodeName: "rpi3", State: store.RebootRunning, Server: "server-b", RequestedAt: t0, FinishedAt: t0},
		{Batch: "old", NodeMAC: node(4).MAC, NodeName: "rpi4", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen()
	}
	type rec struct {
		State  store.RebootState
		Server string
	}
	check := func(when string, want map[string]rec) {
		t.Helper()
		got := map[string]rec{}
		for _, b := range []string{"a", "b", "old"} {
			rs, err := s.Reboots(ctx(t), store.RebootFilter{Batch: b})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				got[r.ID] = rec{r.State, r.Server}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("records %s (-want +got):\n%s", when, diff)
		}
	}
	if n, err := s.InterruptReboots(ctx(t), "server-b"); err != nil || n != 2 {
		t.Fatalf("InterruptReboots(server-b) = %d, %v; want 2 (its own and the one of no server), nil", n, err)
	}
	check("after server-b's start", map[string]rec{
		ids[0]: {store.RebootRunning, "server-a"}, ids[1]: {store.RebootRunning, "server-a"},
		ids[2]: {store.RebootInterrupted, "server-b"}, ids[3]: {store.RebootInterrupted, ""},
	})
	// server-a, still running, completes one of its records.
	if err := s.FinishReboots(ctx(t), []store.Reboot{{ID: ids[0], NodeName: "rpi1", OK: true, Method: "soft-reboot", RequestedAt: t0, FinishedAt: t0}}); err != nil {
		t.Fatalf("FinishReboots(server-a's) = %v", err)
	}
	if n, err := s.InterruptReboots(ctx(t), "server-c"); err != nil || n != 0 {
		t.Errorf("InterruptReboots(server-c) = %d, %v; want 0, nil", n, err)
	}
	// server-a dies and starts again, from the same data directory.
	if n, err := s.InterruptReboots(ctx(t), "server-a"); err != nil || n != 1 {
		t.Fatalf("InterruptReboots(server-a) = %d, %v; want 1, nil", n, err)
	}
	check("after server-a's restart", map[string]rec{
		ids[0]: {store.RebootDone, "server-a"}, ids[1]: {store.RebootInterrupted, "server-a"},
		ids[2]: {store.RebootInterrupted, "server-b"}, ids[3]: {store.RebootInterrupted, ""},
	})
}

// A running record can be forgotten, with its attempts; a complete one
// cannot.
func testDeleteReboots(t *testing.T, s store.Store, _ func() store.Store) {
	ids, err := s.AddReboots(ctx(t), []store.Reboot{
		{Batch: "b", NodeMAC: node(1).MAC, NodeName: "rpi1", State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0,
			Attempts: []store.Attempt{{Method: "soft-reboot", Started: t0, Finished: t0}}},
		{Batch: "b", NodeMAC: node(2).MAC, NodeName: "rpi2", OK: true, Method: "soft-reboot", RequestedAt: t0, FinishedAt: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteReboots(ctx(t), []string{ids[0], "no-such-id"}); err != nil {
		t.Fatalf("DeleteReboots(running, unknown) = %v, want nil", err)
	}
	got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != ids[1] {
		t.Errorf("records after DeleteReboots = %+v, want rpi2's only", got)
	}
	if err := s.DeleteReboots(ctx(t), []string{ids[1]}); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("DeleteReboots(done) = %v, want ErrConflict", err)
	}
}

// A boot status with a last sign of life stores it as the device's
// LastSeen; one without leaves LastSeen as it was.
func testBootStatusLastSeen(t *testing.T, s store.Store, _ func() store.Store) {
	mustAdd(t, s, node(1))
	seen := t0.Add(time.Hour)
	if err := s.SetBootStatuses(ctx(t), []store.BootStatus{{MAC: node(1).MAC, BootID: "b", Booted: true, Since: t0, LastSeen: seen}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBootStatuses(ctx(t), []store.BootStatus{{MAC: node(1).MAC, BootID: "b", Booted: false, Since: t0}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Device(ctx(t), node(1).MAC)
	if err != nil {
		t.Fatal(err)
	}
	if !d.LastSeen.Equal(seen) || d.Booted {
		t.Errorf("device after two statuses: last seen %v, booted %t; want %v (kept by the second), false", d.LastSeen, d.Booted, seen)
	}
}

// LatestReboots gives each node's latest record, if recent and not
// booted: what a restarted server may still see the boot of; a failed
// one with its attempts.
func testLatestReboots(t *testing.T, s store.Store, reopen func() store.Store) {
	mustAdd(t, s, node(1), node(2), node(3), node(4), node(5))
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	attempts := []store.Attempt{
		{Method: "soft-reboot", Error: "no reply from rpi5", Code: "reply-timeout", Started: at(time.Minute), Finished: at(time.Minute + 15*time.Second)},
		{Method: "PoE-reboot", Error: "forbidden on switch", Code: "forbidden", Started: at(time.Minute + 15*time.Second), Finished: at(time.Minute + 15*time.Second)},
	}
	ids, err := s.AddReboots(ctx(t), []store.Reboot{
		// rpi1: an old one, then the latest, done and waiting for its boot.
		{Batch: "a", Requester: "alice", Cause: "reboot requested", NodeMAC: node(1).MAC, NodeName: "rpi1", OK: true, Method: "soft-reboot", RequestedAt: at(0), FinishedAt: at(0)},
		{Batch: "b", Requester: "bob", Cause: "campaign 3 round 2/5", NodeMAC: node(1).MAC, NodeName: "rpi1", OK: true, Method: "PoE-reboot",
			RequestedAt: at(time.Minute), AckAt: at(time.Minute + time.Second), FinishedAt: at(time.Minute + time.Second)},
		// rpi2: its latest one booted.
		{Batch: "b", NodeMAC: node(2).MAC, NodeName: "rpi2", OK: true, Method: "soft-reboot", RequestedAt: at(time.Minute), FinishedAt: at(time.Minute)},
		// rpi3: running (interrupted by a restart), recent.
		{Batch: "b", Requester: "bob", Cause: "reboot requested", NodeMAC: node(3).MAC, NodeName: "rpi3", State: store.RebootRunning, RequestedAt: at(time.Minute), FinishedAt: at(time.Minute)},
		// rpi4: too old.
		{Batch: "a", NodeMAC: node(4).MAC, NodeName: "rpi4", OK: true, Method: "soft-reboot", RequestedAt: at(0), FinishedAt: at(0)},
		// rpi5: failed, recent.
		{Batch: "b", Requester: "bob", Cause: "reboot requested", NodeMAC: node(5).MAC, NodeName: "rpi5", Attempts: attempts,
			RequestedAt: at(time.Minute), FinishedAt: at(time.Minute + 15*time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRebootsBooted(ctx(t), []store.RebootBoot{{ID: ids[2], BootID: "b2", At: at(2 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen()
	}
	if _, err := s.InterruptReboots(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestReboots(ctx(t), at(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Reboot{
		{ID: ids[1], Batch: "b", Requester: "bob", Cause: "campaign 3 round 2/5", NodeMAC: node(1).MAC, NodeName: "rpi1", State: store.RebootDone, OK: true, Method: "PoE-reboot",
			RequestedAt: at(time.Minute), AckAt: at(time.Minute + time.Second), FinishedAt: at(time.Minute + time.Second)},
		{ID: ids[3], Batch: "b", Requester: "bob", Cause: "reboot requested", NodeMAC: node(3).MAC, NodeName: "rpi3", State: store.RebootInterrupted,
			RequestedAt: at(time.Minute), FinishedAt: at(time.Minute)},
		{ID: ids[5], Batch: "b", Requester: "bob", Cause: "reboot requested", NodeMAC: node(5).MAC, NodeName: "rpi5", State: store.RebootDone, Attempts: attempts,
			RequestedAt: at(time.Minute), FinishedAt: at(time.Minute + 15*time.Second)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LatestReboots (-want +got):\n%s", diff)
	}
	if got, err := s.LatestReboots(ctx(t), at(2*time.Minute)); err != nil || len(got) != 0 {
		t.Errorf("LatestReboots(after all) = %v, %v; want none", got, err)
	}
}

// Completing many records at once (a backend may write them in groups,
// here of several sizes and single rows): one unknown or complete record
// among them fails the call naming it, and nothing changes; then all are
// completed, the attempts of those that had some replaced.
func testFinishManyReboots(t *testing.T, s store.Store, _ func() store.Store) {
	const n = 90
	old := []store.Attempt{{Method: "soft-reboot", Error: "timeout", Code: "timeout", Started: t0, Finished: t0}}
	var devs []store.Device
	var running []store.Reboot
	for i := 1; i <= n; i++ {
		devs = append(devs, node(i))
		r := store.Reboot{Batch: "many", NodeMAC: node(i).MAC, NodeName: node(i).Name, State: store.RebootRunning, RequestedAt: t0, FinishedAt: t0}
		if i%7 == 0 {
			r.Attempts = old
		}
		running = append(running, r)
	}
	mustAdd(t, s, append(devs, node(n+1))...)
	ids, err := s.AddReboots(ctx(t), running)
	if err != nil {
		t.Fatal(err)
	}
	completed, err := s.AddReboots(ctx(t), []store.Reboot{{Batch: "other", NodeMAC: node(n + 1).MAC, NodeName: node(n + 1).Name, RequestedAt: t0, FinishedAt: t0}})
	if err != nil {
		t.Fatal(err)
	}
	// Many records at once (in groups), one of which reuses an id: the
	// error names it, and none of them is added.
	reused := append([]store.Reboot{}, running...)
	for i := range reused {
		reused[i].Batch = "reused"
	}
	reused[60].ID = completed[0]
	if _, err := s.AddReboots(ctx(t), reused); !errors.Is(err, vocab.ErrConflict) || !strings.Contains(err.Error(), completed[0]) {
		t.Errorf("AddReboots(%d records, one of id %s already used) = %v, want ErrConflict naming it", n, completed[0], err)
	}
	if got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "reused"}); err != nil || len(got) != 0 {
		t.Errorf("after a failed AddReboots: %d records of its batch (err %v), want none", len(got), err)
	}
	done := make([]store.Reboot, n)
	for i, id := range ids {
		done[i] = store.Reboot{ID: id, Batch: "many", NodeMAC: node(i + 1).MAC, NodeName: node(i + 1).Name, Method: "PoE-reboot", OK: true,
			RequestedAt: t0, FinishedAt: t0.Add(time.Duration(i) * time.Second),
			Attempts: []store.Attempt{{Method: "PoE-reboot", Started: t0, Finished: t0.Add(time.Duration(i) * time.Second)}}}
	}
	for _, tc := range []struct {
		id   string
		want error
	}{{"no-such-reboot", vocab.ErrNotFound}, {completed[0], vocab.ErrConflict}} {
		bad := append(append(append([]store.Reboot{}, done[:40]...), store.Reboot{ID: tc.id, NodeName: node(n + 1).Name}), done[40:]...)
		if err := s.FinishReboots(ctx(t), bad); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.id) {
			t.Errorf("FinishReboots(%d records and %s) = %v, want %v naming it", n, tc.id, err, tc.want)
		}
	}
	got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "many"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.State != store.RebootRunning {
			t.Fatalf("after a failed FinishReboots, %s is %s, want running", r.NodeName, r.State)
		}
	}
	if err := s.FinishReboots(ctx(t), done); err != nil {
		t.Fatalf("FinishReboots(%d records) = %v", n, err)
	}
	checkFinished(t, s, done)
}

// checkFinished checks that the records done, of node(1), node(2)...,
// are stored complete, as given.
func checkFinished(t *testing.T, s store.Store, done []store.Reboot) {
	t.Helper()
	for i, want := range done {
		want.State = store.RebootDone
		got, err := s.Reboots(ctx(t), store.RebootFilter{NodeMAC: node(i + 1).MAC})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.Reboot{want}, got); diff != "" {
			t.Errorf("Reboots(%s) after FinishReboots (-want +got):\n%s", want.NodeName, diff)
		}
	}
}
