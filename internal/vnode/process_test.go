package vnode

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/testutil"
)

func processBackend(t testing.TB) *ProcessBackend {
	t.Helper()
	b, err := NewProcessBackend(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func zeroDelay() Settings {
	return Settings{CPUCores: 1, RAMMiB: 64, BootDelay: BootDelay{Seconds: 0}}
}

// TestProcessVnodes runs 50 process vnodes through the issue-6 scenario:
// boot, soft reboot by the real protocol, hard reboot, settings change,
// removal, stop with no process left.
func TestProcessVnodes(t *testing.T) {
	const n = 50
	t.Cleanup(func() {
		// Registered first, so it runs after the supervisor has stopped.
		if left := liveChildren(t, os.Getpid()); len(left) != 0 {
			t.Errorf("live children after the supervisor stopped: %v", left)
		}
	})
	s := startSupervisor(t, processBackend(t), "127.204.0.0/16")
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("pvn%02d", i)
		if err := s.Create(Spec{Name: names[i], Settings: zeroDelay()}); err != nil {
			t.Fatal(err)
		}
	}
	addrs := map[string]bool{}
	for _, name := range names {
		a, ok := s.Addr(name)
		if !ok || addrs[a] {
			t.Fatalf("Addr(%s) = %q, %v: want a distinct address", name, a, ok)
		}
		addrs[a] = true
	}
	first := map[string]Status{}
	for _, name := range names {
		first[name] = waitUp(t, s, name, 1, 30*time.Second)
	}

	// Soft reboot: each agent answers OK and exits with status 10; the
	// supervisor starts it again.
	forEach(t, names, func(name string) error {
		addr, _ := s.Addr(name)
		line, err := (&netservice.Requester{}).Do(t.Context(), addr, netservice.Request{Verb: "REBOOT"})
		if err != nil || line != "OK" {
			return fmt.Errorf("REBOOT %s = %q, %v; want OK", name, line, err)
		}
		return nil
	})
	for _, name := range names {
		st := waitUp(t, s, name, 2, 30*time.Second)
		if st.PID == first[name].PID || alive(first[name].PID) {
			t.Errorf("%s: first agent (pid %d) still alive after soft reboot", name, first[name].PID)
		}
		if st.LastExit != "agent rebooted (exit status 10)" {
			t.Errorf("%s: last exit %q, want agent rebooted", name, st.LastExit)
		}
	}

	// Hard reboot with a settings change.
	forEach(t, names, func(name string) error {
		set := zeroDelay()
		set.RAMMiB = 1024
		if err := s.Update(name, set); err != nil {
			return err
		}
		return s.HardReboot(t.Context(), name)
	})
	for _, name := range names {
		st := waitUp(t, s, name, 3, 30*time.Second)
		if st.LastExit != "killed by hard reboot" || st.Generation != 3 {
			t.Errorf("%s: generation %d, last exit %q; want 3, killed by hard reboot", name, st.Generation, st.LastExit)
		}
		if st.Settings.RAMMiB != 1024 {
			t.Errorf("%s: ram %d, want 1024", name, st.Settings.RAMMiB)
		}
	}

	// Remove half; stopping the supervisor (cleanup) removes the rest.
	for _, name := range names[:n/2] {
		st, _ := s.Status(name)
		if err := s.Remove(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		if alive(st.PID) {
			t.Errorf("%s: agent pid %d alive after Remove", name, st.PID)
		}
		if _, err := s.Status(name); err == nil {
			t.Errorf("%s: Status after Remove succeeded", name)
		}
	}
	if got := len(liveChildren(t, os.Getpid())); got != n-n/2 {
		t.Errorf("%d live children after removing %d of %d vnodes, want %d", got, n/2, n, n-n/2)
	}
}

func forEach(t *testing.T, names []string, f func(string) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() { errs[i] = f(name) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestHardRebootBetweenMachines checks WalT's defect (reference §9.2 item
// 20) is gone: a hard reboot requested while no machine runs kills nothing,
// not even the machine that starts next.
func TestHardRebootBetweenMachines(t *testing.T) {
	s := startSupervisor(t, processBackend(t), "127.205.0.0/16")
	set := zeroDelay()
	if err := s.Create(Spec{Name: "gen1", Settings: set}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, s, "gen1", 1, 30*time.Second)
	set.BootDelay = BootDelay{Seconds: 3600}
	if err := s.Update("gen1", set); err != nil {
		t.Fatal(err)
	}
	addr, _ := s.Addr("gen1")
	if line, err := (&netservice.Requester{}).Do(t.Context(), addr, netservice.Request{Verb: "REBOOT"}); err != nil || line != "OK" {
		t.Fatalf("REBOOT = %q, %v; want OK", line, err)
	}
	testutil.Eventually(t, 10*time.Second, "the agent to exit", func() bool {
		st, _ := s.Status("gen1")
		return !st.Running && st.Restarts == 1
	})
	// No machine runs (boot delay of an hour): the hard reboot must only
	// start the next machine, now.
	if err := s.HardReboot(t.Context(), "gen1"); err != nil {
		t.Fatal(err)
	}
	st := waitUp(t, s, "gen1", 2, 10*time.Second)
	// Several more requests to the new machine: still the same process.
	for range 5 {
		if !ping(addr) {
			t.Fatal("machine 2 stopped answering")
		}
	}
	st2, _ := s.Status("gen1")
	if st2.Generation != 2 || st2.PID != st.PID || !alive(st.PID) || st2.LastExit != "agent rebooted (exit status 10)" {
		t.Errorf("after a hard reboot between machines: %+v; want machine 2 (pid %d) still running", st2, st.PID)
	}

	// Two hard reboots at once kill one machine each at most: the
	// generation grows by one or two, never more, and the vnode answers.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := s.HardReboot(t.Context(), "gen1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st3 := waitUp(t, s, "gen1", 3, 10*time.Second)
	if st3.Generation > 4 {
		t.Errorf("two hard reboots took generation 2 to %d", st3.Generation)
	}
}

func TestSupervisorErrors(t *testing.T) {
	s := startSupervisor(t, processBackend(t), "127.206.0.0/16")
	if err := s.Create(Spec{Name: "e1", Settings: zeroDelay()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"create twice", s.Create(Spec{Name: "e1", Settings: zeroDelay()}), "create vnode e1: vnode already exists"},
		{"bad name", s.Create(Spec{Name: "a/b", Settings: zeroDelay()}), `create vnode: invalid vnode name "a/b"`},
		{"bad settings", s.Create(Spec{Name: "e2"}), "create vnode e2: '0' is not a valid value for cpu.cores"},
		{"bad mac", s.Create(Spec{Name: "e3", MAC: "zz", Settings: zeroDelay()}), `create vnode e3: invalid mac "zz"`},
		{"remove unknown", s.Remove(t.Context(), "nope"), "remove vnode nope: no such vnode"},
		{"hard reboot unknown", s.HardReboot(t.Context(), "nope"), "hard-reboot vnode nope: no such vnode"},
		{"update unknown", s.Update("nope", zeroDelay()), "update vnode nope: no such vnode"},
	} {
		if tc.err == nil || !strings.HasPrefix(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want prefix %q", tc.name, tc.err, tc.want)
		}
	}
	a, _ := s.Addr("e1")
	host := strings.TrimSuffix(a, ":12346")
	err := s.Create(Spec{Name: "e4", Addr: mustAddr(t, host), Settings: zeroDelay()})
	if err == nil || !strings.Contains(err.Error(), "is used by vnode e1") {
		t.Errorf("create with a taken address: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.HardReboot(ctx, "e1"); err != nil && !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("HardReboot with a cancelled context: %v", err)
	}
}
