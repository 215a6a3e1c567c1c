package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/agent"
	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Boot tracking tests use 127.42.0.0/16 for their agents.
var bootAddrs = reboottest.NewAddrs(42)

var (
	buildOnce sync.Once
	nodeBin   string
	buildErr  error
)

// waltNode builds walt-node once for the package's tests.
func waltNode(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds walt-node")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "walt-node-bin")
		if err != nil {
			buildErr = err
			return
		}
		nodeBin = filepath.Join(dir, "walt-node")
		out, err := exec.Command("go", "build", "-o", nodeBin, "github.com/walt-testbed/walt/cmd/walt-node").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build walt-node: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return nodeBin
}

// supervised runs a real walt-node with --reboot-action exit and starts it
// again each time it exits for a reboot, as a node's init would boot it
// again: each start is a new boot, with a new boot id.
type supervised struct {
	mu     sync.Mutex
	starts int
}

func (s *supervised) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

func superviseNode(t *testing.T, serverURL, name, mac string) *supervised {
	t.Helper()
	bin := waltNode(t)
	ln, err := bootAddrs.Listen() // reserve a fresh address, then hand it to the agent
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervised{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, bin, "--listen", addr, "--server", serverURL, "--name", name, "--mac", mac,
				"--model", "pc-x86-64", "--boot-mode", "network", "--virtual", "false", "--root", root, "--reboot-action", "exit")
			cmd.Stderr = &testWriter{t: t, prefix: name + ": "}
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			s.mu.Lock()
			s.starts++
			s.mu.Unlock()
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != agent.ExitRebooted {
				return // stopped, or failed: no reboot to supervise
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// TestRebootWaitRealAgents reboots real walt-node agents that exit and
// are started again by a supervisor: `walt node reboot --wait` returns
// once both are back in a new boot and prints each boot time; history
// and the platform log have it all.
func TestRebootWaitRealAgents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sups := []*supervised{
		superviseNode(t, e.url, "sup1", "52:54:00:42:00:01"),
		superviseNode(t, e.url, "sup2", "52:54:00:42:00:02"),
	}
	testutil.Eventually(t, time.Minute, "both agents to report", func() bool {
		nl, err := e.c.Nodes(t.Context(), map[string]string{"model": "pc-x86-64"})
		return err == nil && nl.NumNodes == 2
	})
	stdout, stderr, code := e.run(t, false, "node", "wait", "--timeout", "60", "sup1,sup2")
	if code != 0 {
		t.Fatalf("walt node wait (first boots): exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	before := bootIDs(t, e, "sup1", "sup2")
	stdout, stderr, code = e.run(t, false, "node", "reboot", "--wait", "--timeout", "60", "sup1,sup2")
	if code != 0 || !strings.HasPrefix(stdout, "Nodes sup1 and sup2: rebooted OK.\n") ||
		!strings.Contains(stdout, "Node sup1: booted ") || !strings.Contains(stdout, "Node sup2: booted ") || stderr != "" {
		t.Fatalf("walt node reboot --wait: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for i, s := range sups {
		if s.Starts() != 2 {
			t.Errorf("agent %d started %d times, want 2 (it exited for the reboot and came back)", i+1, s.Starts())
		}
	}
	after := bootIDs(t, e, "sup1", "sup2")
	for i := range before {
		if before[i] == after[i] || after[i] == "" {
			t.Errorf("boot id %d: %q before the reboot, %q after; want a new one", i+1, before[i], after[i])
		}
	}

	stdout, _, code = e.run(t, false, "node", "history", "--json", "sup1")
	var h api.RebootList
	if err := json.Unmarshal([]byte(stdout), &h); err != nil || code != 0 {
		t.Fatalf("history --json: exit %d, %q: %v", code, stdout, err)
	}
	if len(h.Reboots) != 1 {
		t.Fatalf("history of sup1: %+v, want one reboot", h.Reboots)
	}
	r := h.Reboots[0]
	if r.Requester != "alice" || r.Cause != "reboot requested" || r.Method != "soft-reboot" || r.Ack == nil ||
		r.Booted == nil || r.BootID != after[0] || r.BootDuration == nil || len(r.Attempts) != 1 {
		t.Errorf("history row %+v: want alice, reboot requested, soft-reboot, ack, boot time with the new boot id", r)
	}
	stdout, _, _ = e.run(t, false, "node", "history", "sup1,sup2")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "reboot requested") || !strings.Contains(lines[1], "soft-reboot") {
		t.Errorf("walt node history: %q, want a header and two rows", stdout)
	}
	stdout, _, _ = e.run(t, false, "log", "show")
	for _, want := range []string{
		// The method is in the line only if the agent's OK came before
		// its new boot (docs/boot-tracking.md): a fast restart is first.
		"walt-server.platform.nodes -> node sup1 is down (cause: reboot requested",
		"walt-server.platform.nodes -> node sup2 is booted\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("walt log show: %q lacks %q", stdout, want)
		}
	}
	stdout, _, _ = e.run(t, false, "node", "show", "--all")
	if !strings.Contains(stdout, "sup1") || !strings.Contains(stdout, " yes ") || !strings.Contains(stdout, "soft-reboot") {
		t.Errorf("walt node show --all: %q, want sup1 booted (yes) with last reboot soft-reboot", stdout)
	}
}

func bootIDs(t *testing.T, e *env, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		nl, err := e.c.Nodes(t.Context(), map[string]string{"name": n})
		if err != nil || nl.NumNodes != 1 || nl.Nodes[0].Boot == nil {
			t.Fatalf("node %s: %v %+v", n, err, nl)
		}
		out = append(out, nl.Nodes[0].Boot.BootID)
	}
	return out
}

// TestWaitTimeout: a node that acknowledged its reboot but never reports
// a new boot keeps `walt node wait` waiting until the timeout, which names
// it; on a terminal the wait shows what it waits for.
func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	e := newBootCLIEnv(t)
	e.AddNode(t, "gone1", reboottest.OK) // acknowledges, never comes back
	e.AddNode(t, "fine1", reboottest.OK)
	if _, _, code := e.run(t, false, "node", "reboot", "gone1"); code != 0 {
		t.Fatalf("reboot gone1: exit %d", code)
	}
	stdout, stderr, code := e.run(t, true, "node", "wait", "--timeout", "1", "gone1,fine1")
	if code != cli.ExitFailure || stdout != "" || !strings.Contains(stderr, "\rWaiting for bootup of node gone1") ||
		!strings.HasSuffix(stderr, "Timeout was reached.\nNode gone1: not booted.\n") {
		t.Errorf("walt node wait: exit %d, stdout %q, stderr %q; want exit 1 naming gone1", code, stdout, stderr)
	}
	stdout, _, _ = e.run(t, false, "node", "show", "--all")
	if !strings.Contains(stdout, "booting (since ") {
		t.Errorf("walt node show --all: %q, want gone1 booting (since ...)", stdout)
	}
	stdout, stderr, code = e.run(t, false, "node", "reboot", "--wait", "--timeout", "1", "gone1,fine1")
	if code != cli.ExitFailure || !strings.Contains(stderr, "Nodes fine1 and gone1: not booted.") {
		t.Errorf("walt node reboot --wait: exit %d, stdout %q, stderr %q; want exit 1 naming both", code, stdout, stderr)
	}
	if _, stderr, code := e.run(t, false, "node", "wait", "--timeout", "-5", "fine1"); code != cli.ExitUsage || !strings.Contains(stderr, "--timeout -5") {
		t.Errorf("walt node wait --timeout -5: exit %d, stderr %q; want a usage error", code, stderr)
	}
	if _, stderr, code := e.run(t, false, "node", "wait", "nope"); code == 0 || !strings.Contains(stderr, "nope") {
		t.Errorf("walt node wait nope: exit %d, stderr %q; want an error naming nope", code, stderr)
	}
}

func newBootCLIEnv(t *testing.T) *env {
	e := servertest.New(t, bootAddrs, nil)
	return &env{Env: e, url: e.URL, c: e.Client, tokens: e.Tokens}
}

// TestLogFollow: `walt log show --follow` prints lines as they come.
func TestLogFollow(t *testing.T) {
	t.Parallel()
	e := newBootCLIEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Buffer
	done := make(chan int)
	go func() {
		done <- cli.Run(ctx, cli.Options{
			Args: []string{"log", "show", "--follow"}, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out,
			Getenv: func(k string) string {
				return map[string]string{"WALT_SERVER": e.url, "WALT_USER": "alice", "WALT_TOKEN": e.token(t, "alice")}[k]
			},
		})
	}()
	e.AddNode(t, "f1", reboottest.OK)
	e.run(t, false, "node", "reboot", "f1")
	testutil.Eventually(t, time.Minute, "followed lines", func() bool {
		s := out.String()
		return strings.Contains(s, "-> node f1 is booted\n") && strings.Contains(s, "-> node f1 is down (cause: reboot requested, method: soft-reboot)\n")
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("walt log show --follow ended with %d, want 0 when interrupted; output %q", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("walt log show --follow did not stop when its context ended")
	}
}
