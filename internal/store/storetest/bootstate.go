package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// A bootStateWriter writes the boot tracker's flush in one transaction
// (sqlstore's SetBootState).
type bootStateWriter interface {
	SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error
}

// A flush of many boots, as the boot tracker writes it, with in the
// middle of it what a flush can hold besides: the status of a device
// forgotten meanwhile (skipped), a node's status and a reboot's boot time
// twice (the last wins), a reboot unknown (ignored). Then a flush with
// one log line whose sequence number is taken: it fails naming that
// line, and writes nothing. A backend may write rows in groups; the
// sizes here span groups of several sizes and single rows.
func testBootStateFlush(t *testing.T, s store.Store, _ func() store.Store) {
	sw, ok := s.(bootStateWriter)
	if !ok {
		t.Skip("no SetBootState")
	}
	const nodes = 90
	var devs []store.Device
	var recs []store.Reboot
	for i := 1; i <= nodes; i++ {
		devs = append(devs, node(i))
		recs = append(recs, store.Reboot{Batch: "b", NodeMAC: node(i).MAC, NodeName: node(i).Name, Method: "soft-reboot", OK: true, RequestedAt: t0, FinishedAt: t0})
	}
	mustAdd(t, s, devs...)
	ids, err := s.AddReboots(ctx(t), recs)
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	var want, flush []store.BootStatus
	seen := map[string]time.Time{}
	var boots []store.RebootBoot
	wantBoot := map[string]store.RebootBoot{}
	var lines []store.LogLine
	for i := 1; i <= nodes; i++ {
		b := store.BootStatus{MAC: node(i).MAC, BootID: fmt.Sprintf("b-%d", i), Booted: i%3 != 0, Since: at(i), LastMethod: "soft-reboot", RetriesLeft: i % 4}
		if !b.Booted {
			b.Cause, b.Method = "reboot requested", "PoE-reboot"
		}
		want = append(want, b) // BootStatuses leaves LastSeen zero
		if i%5 != 0 {          // else no sign of life: the device keeps its LastSeen
			b.LastSeen = at(100 + i)
			seen[b.MAC] = b.LastSeen
		}
		flush = append(flush, b)
		rb := store.RebootBoot{ID: ids[i-1], BootID: b.BootID, At: at(200 + i)}
		boots, wantBoot[rb.ID] = append(boots, rb), rb
		for j, l := range []string{"is down", "is booted"} {
			lines = append(lines, store.LogLine{Seq: int64(2*i + j), At: at(i), Stream: "platform.nodes", Node: node(i).Name, Line: "node " + node(i).Name + " " + l})
		}
	}
	// A device forgotten, then node 85 twice: first with another boot and
	// a sign of life, then the one that stays, without one (its LastSeen
	// is the first's).
	flush = slices.Insert(flush, 10, store.BootStatus{MAC: "52:54:00:00:01:99", BootID: "x", Booted: true, Since: t0, LastSeen: t0})
	flush = slices.Insert(flush, 85, store.BootStatus{MAC: node(85).MAC, BootID: "older", Since: t0, LastSeen: at(500)})
	seen[node(85).MAC] = at(500)
	boots = slices.Insert(boots, 70, store.RebootBoot{ID: "no-such-reboot", BootID: "x", At: t0})
	boots = slices.Insert(boots, 30, store.RebootBoot{ID: ids[31], BootID: "older", At: t0})
	if err := sw.SetBootState(ctx(t), flush, boots, lines); err != nil {
		t.Fatalf("SetBootState(%d statuses, %d boot times, %d lines) = %v", len(flush), len(boots), len(lines), err)
	}
	got, err := s.BootStatuses(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BootStatuses() after the flush (-want +got):\n%s", diff)
	}
	stored, err := s.Devices(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	wantBooted := map[string]bool{}
	for _, b := range want {
		wantBooted[b.MAC] = b.Booted
	}
	for _, d := range stored {
		if want := seen[d.MAC]; d.Booted != wantBooted[d.MAC] || !d.LastSeen.Equal(want) {
			t.Errorf("device %s after the flush: booted %t, last seen %v; want %t, %v", d.Name, d.Booted, d.LastSeen, wantBooted[d.MAC], want)
		}
	}
	rs, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if w := wantBoot[r.ID]; r.BootID != w.BootID || !r.BootedAt.Equal(w.At) {
			t.Errorf("reboot of %s after the flush: booted at %v with boot id %q, want %v and %q", r.NodeName, r.BootedAt, r.BootID, w.At, w.BootID)
		}
	}
	gotLines, err := s.LogLines(ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lines, gotLines); diff != "" {
		t.Errorf("LogLines() after the flush (-want +got):\n%s", diff)
	}

	// A second flush, one of whose lines reuses a sequence number.
	next := make([]store.BootStatus, len(want))
	var more []store.LogLine
	for i, b := range want {
		b.BootID, b.Booted = "again", !b.Booted
		next[i] = b
		more = append(more, store.LogLine{Seq: int64(1000 + i), At: t0, Stream: "platform.nodes", Node: "n", Line: "again"})
	}
	more[40].Seq = 7
	err = sw.SetBootState(ctx(t), next, []store.RebootBoot{{ID: ids[0], BootID: "again", At: t0}}, more)
	if !errors.Is(err, vocab.ErrConflict) || !strings.Contains(err.Error(), "log line 7") {
		t.Errorf("SetBootState(line 7 again) = %v, want ErrConflict naming log line 7", err)
	}
	if got, _ := s.BootStatuses(ctx(t)); !cmp.Equal(want, got) {
		t.Error("a failed SetBootState changed the boot statuses, want all or nothing")
	}
	if got, _ := s.LogLines(ctx(t), int64(2*nodes+1), 0); len(got) != 0 {
		t.Errorf("a failed SetBootState left %d log lines, want none", len(got))
	}
	rs, _ = s.Reboots(ctx(t), store.RebootFilter{Batch: "b"})
	for _, r := range rs {
		if r.ID == ids[0] && r.BootID != wantBoot[r.ID].BootID {
			t.Errorf("a failed SetBootState set the boot id of a reboot to %q, want %q kept", r.BootID, wantBoot[r.ID].BootID)
		}
	}
	// The same on its own.
	if err := s.AddLogLines(ctx(t), more); !errors.Is(err, vocab.ErrConflict) || !strings.Contains(err.Error(), "log line 7") {
		t.Errorf("AddLogLines(line 7 again) = %v, want ErrConflict naming log line 7", err)
	}
}
