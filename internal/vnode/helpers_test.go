package vnode

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// agentBin is walt-node, built once by TestMain.
var agentBin string

// imageDir is the vnode image for QEMU tests, "" when there is none.
var imageDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vnode-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if agentBin, err = vmtest.BuildAgent(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	imageDir = vmtest.FindImage(dir)
	return m.Run()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startSupervisor runs a supervisor until the test ends, and checks that Run
// returns nil then.
func startSupervisor(t testing.TB, b Backend, prefix string) *Supervisor {
	t.Helper()
	s, err := New(Config{DataDir: t.TempDir(), Backend: b, Logger: testLogger(t),
		AddrPrefix: mustPrefix(t, prefix), StopGrace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	return s
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var quick = &netservice.Requester{ConnectTimeout: time.Second, ReplyTimeout: time.Second}

// ping reports whether the agent at addr answers PING with OK: with QEMU's
// port forwarding a connection always succeeds, only a reply proves the
// agent is up.
func ping(addr string) bool {
	line, err := quick.Do(context.Background(), addr, netservice.Request{Verb: "PING"})
	return err == nil && line == "OK"
}

// waitUp waits until vnode name runs machine gen or later and its agent answers.
func waitUp(t testing.TB, s *Supervisor, name string, gen uint64, timeout time.Duration) Status {
	t.Helper()
	addr, _ := s.Addr(name)
	var st Status
	testutil.Eventually(t, timeout, fmt.Sprintf("vnode %s machine %d to answer PING", name, gen), func() bool {
		st, _ = s.Status(name)
		return st.Running && st.Generation >= gen && ping(addr)
	})
	return st
}

type banner struct {
	bootID      string
	memTotalKiB int
	cpus        int
}

// banners returns the boot banners of the console log, oldest first.
func banners(t testing.TB, path string) []banner {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []banner
	for _, b := range vmtest.Banners(data) {
		out = append(out, banner{bootID: b.BootID, memTotalKiB: b.MemTotalKiB, cpus: b.CPUs})
	}
	return out
}

var alive = vmtest.Alive

// liveChildren returns the live processes whose parent is ppid.
func liveChildren(t testing.TB, ppid int) []int {
	t.Helper()
	pids, err := vmtest.LiveChildren(ppid)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
