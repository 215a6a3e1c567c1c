package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// octetWrites is the loopback block of TestBootWritesPerSoftReboot's lab.
const octetWrites = 211

// writeCounter is the server's store, counting the rows the boot
// tracker's flush writes: boot statuses (each a devices row and a
// boot_status row), reboot boot times and platform log lines.
type writeCounter struct {
	store.Store
	mu       sync.Mutex
	statuses []store.BootStatus
	boots    int
	lines    []string
}

func (w *writeCounter) count(bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.statuses = append(w.statuses, bs...)
	w.boots += len(rb)
	for _, l := range ls {
		w.lines = append(w.lines, l.Line)
	}
}

// reset forgets what was counted so far.
func (w *writeCounter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.statuses, w.boots, w.lines = nil, 0, nil
}

func (w *writeCounter) SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error {
	sw, ok := w.Store.(interface {
		SetBootState(context.Context, []store.BootStatus, []store.RebootBoot, []store.LogLine) error
	})
	if !ok {
		return errors.New("no SetBootState")
	}
	err := sw.SetBootState(ctx, bs, rb, ls)
	if err == nil {
		w.count(bs, rb, ls)
	}
	return err
}

func (w *writeCounter) SetBootStatuses(ctx context.Context, bs []store.BootStatus) error {
	err := w.Store.SetBootStatuses(ctx, bs)
	if err == nil {
		w.count(bs, nil, nil)
	}
	return err
}

func (w *writeCounter) SetRebootsBooted(ctx context.Context, rb []store.RebootBoot) error {
	err := w.Store.SetRebootsBooted(ctx, rb)
	if err == nil {
		w.count(nil, rb, nil)
	}
	return err
}

func (w *writeCounter) AddLogLines(ctx context.Context, ls []store.LogLine) error {
	err := w.Store.AddLogLines(ctx, ls)
	if err == nil {
		w.count(nil, nil, ls)
	}
	return err
}

// summary says what was counted, per kind of row, divided by boots.
func (w *writeCounter) summary(boots int) (statuses, bootTimes, lines float64, detail string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := map[string]int{}
	for _, b := range w.statuses {
		k := "booted"
		if !b.Booted {
			k = "not booted, cause " + b.Cause
		}
		kinds[k]++
	}
	per := func(n int) float64 { return float64(n) / float64(boots) }
	return per(len(w.statuses)), per(w.boots), per(len(w.lines)), fmt.Sprintf("statuses %v, %d lines", kinds, len(w.lines))
}

// TestBootWritesPerSoftReboot counts the rows the boot tracker writes
// for soft reboots of a lab's nodes (the reboot acknowledged, the node
// down, its boot reported): a boot status, a reboot boot time and two
// platform log lines a boot, and no more (docs/boot-tracking.md, "What is
// written, and when").
func TestBootWritesPerSoftReboot(t *testing.T) {
	t.Parallel()
	w := &writeCounter{}
	e := servertest.New(t, nil, func(c *server.Config) {
		w.Store = c.Store
		c.Store = w
		c.Reboot.ReplyTimeout = 5 * time.Second
	})
	const nodes, rounds = 20, 3
	l := e.StartLab(t, lab.Config{Nodes: nodes, Octet: octetWrites})
	names := make([]string, 0, nodes)
	for _, n := range l.Nodes {
		names = append(names, n.Name())
	}
	set := strings.Join(names, ",")
	testutil.Eventually(t, 10*time.Second, "first boots written", func() bool {
		s, _, _, _ := w.summary(1)
		return s >= nodes
	})
	w.reset()
	for r := range rounds {
		before := map[string]string{}
		for _, n := range l.Nodes {
			before[n.Name()] = n.BootID()
		}
		res, err := e.Client.Reboot(t.Context(), api.RebootRequest{Set: set, Requester: "alice"}, nil)
		if err != nil {
			t.Fatalf("round %d: reboot: %v", r, err)
		}
		for _, x := range res {
			if !x.OK || x.Method != api.MethodSoft {
				t.Fatalf("round %d: %+v, want soft-reboot OK", r, x)
			}
		}
		testutil.Eventually(t, time.Minute, fmt.Sprintf("round %d: every boot written", r), func() bool {
			_, b, _, _ := w.summary(1)
			return b >= float64((r+1)*nodes)
		})
		for _, n := range l.Nodes {
			if n.BootID() == before[n.Name()] {
				t.Fatalf("round %d: %s kept boot id %s", r, n.Name(), n.BootID())
			}
		}
	}
	e.Server.Close() // the tracker's last flush
	statuses, bootTimes, lines, detail := w.summary(nodes * rounds)
	t.Logf("per boot: %.2f boot statuses, %.2f boot times, %.2f log lines (%s)", statuses, bootTimes, lines, detail)
	// One status a boot: the boot's. The down status of the reboot,
	// held back, is not written (a boot status a node and flush at most,
	// so that one written by a slow flush is the odd one, not the rule;
	// two a boot before).
	if statuses >= 1.5 || bootTimes != 1 || lines != 2 {
		t.Errorf("per boot: %.2f boot statuses, %.2f boot times, %.2f log lines (%s); want 1 (at most 1.5), 1 and 2", statuses, bootTimes, lines, detail)
	}
}
