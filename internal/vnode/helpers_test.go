package vnode

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
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
	agentBin = filepath.Join(dir, "walt-node")
	build := exec.Command("go", "build", "-o", agentBin, "github.com/walt-testbed/walt/cmd/walt-node")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build walt-node: %v\n%s", err, out)
		return 1
	}
	imageDir = findImage(dir)
	return m.Run()
}

// findImage returns the image in $WALT_VNODE_IMAGE or the default data
// directory; in CI (CI=true) with QEMU installed and no image, it builds one
// with scripts/build-vnode-image.sh into tmp.
func findImage(tmp string) string {
	dirs := []string{os.Getenv("WALT_VNODE_IMAGE")}
	if os.Getuid() == 0 {
		dirs = append(dirs, DefaultImageDir("/var/lib/walt"))
	} else if d, err := os.UserHomeDir(); err == nil {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			base = filepath.Join(d, ".local", "share")
		}
		dirs = append(dirs, DefaultImageDir(filepath.Join(base, "walt")))
	}
	for _, d := range dirs {
		if d != "" && isFile(filepath.Join(d, KernelFile)) && isFile(filepath.Join(d, InitramfsFile)) {
			return d
		}
	}
	if os.Getenv("CI") != "true" {
		return ""
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "" // the QEMU tests fail on their own, saying so
	}
	start := time.Now()
	data := filepath.Join(tmp, "data")
	cmd := exec.Command("../../scripts/build-vnode-image.sh", "--data", data)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build vnode image: %v\n", err)
		return ""
	}
	fmt.Fprintf(os.Stderr, "built vnode image in %s\n", time.Since(start).Round(time.Second))
	return DefaultImageDir(data)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
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

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var quick = &netservice.Requester{ConnectTimeout: time.Second, ReplyTimeout: time.Second}

// ping reports whether the agent at addr answers PING with OK: with QEMU's
// port forwarding a connection always succeeds, only a reply proves the
// agent is up.
func ping(addr string) bool {
	line, err := quick.Do(context.Background(), addr, netservice.Request{Verb: "PING"})
	return err == nil && line == "OK"
}

// waitGen waits until vnode name runs machine gen or later and its agent answers.
func waitUp(t testing.TB, s *Supervisor, name string, gen uint64, timeout time.Duration) Status {
	t.Helper()
	addr, _ := s.Addr(name)
	var st Status
	waitFor(t, timeout, fmt.Sprintf("vnode %s machine %d to answer PING", name, gen), func() bool {
		st, _ = s.Status(name)
		return st.Running && st.Generation >= gen && ping(addr)
	})
	return st
}

var bannerRE = regexp.MustCompile(`walt-vnode: boot_id=(\S+) name=(\S*) memtotal_kb=(\d+) cpus=(\d+)`)

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
	for _, m := range bannerRE.FindAllStringSubmatch(string(data), -1) {
		kb, _ := strconv.Atoi(m[3])
		cpus, _ := strconv.Atoi(m[4])
		out = append(out, banner{bootID: m[1], memTotalKiB: kb, cpus: cpus})
	}
	return out
}

// procState returns the state letter of pid from /proc/<pid>/stat ("R",
// "S", "Z", ...) and its command name, or "" when the process is gone. A
// zombie is dead: PID 1 here does not reap orphans.
func procState(pid int) (state, comm string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", ""
	}
	s := string(data)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i || j+2 >= len(s) {
		return "", ""
	}
	return s[j+2 : j+3], s[i+1 : j]
}

// alive reports whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	st, _ := procState(pid)
	return st != "" && st != "Z" && st != "X"
}

// liveChildren returns the live processes whose parent is ppid.
func liveChildren(t testing.TB, ppid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		j := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[j+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) && f[0] != "Z" && f[0] != "X" {
			pids = append(pids, pid)
		}
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
