package cli_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// TestRealAgentEndToEnd builds walt-node, starts two of them on loopback
// addresses reporting to an in-process server, and reboots them with the
// CLI. The agents only journal the reboot procedure (log:FILE).
func TestRealAgentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walt-node")
	}
	t.Parallel()
	e := servertest.New(t, addrs, nil)
	dir := t.TempDir()
	bin := filepath.Join(dir, "walt-node")
	build := exec.Command("go", "build", "-o", bin, "github.com/walt-testbed/walt/cmd/walt-node")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build walt-node: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var journals []string
	for i, name := range []string{"real1", "real2"} {
		ln, err := addrs.Listen() // reserve a fresh address, then hand it to the agent
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		journal := filepath.Join(dir, name+".journal")
		journals = append(journals, journal)
		cmd := exec.CommandContext(ctx, bin, "--listen", addr, "--server", e.URL, "--name", name, "--model", "pc-x86-64",
			"--mac", "52:54:00:ee:00:0"+string(rune('1'+i)), "--boot-mode", "network", "--virtual", "false",
			"--root", dir, "--reboot-action", "log:"+journal)
		cmd.Stderr = &testWriter{t: t, prefix: name + ": "}
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Wait() })
	}
	t.Cleanup(cancel)
	testutil.Eventually(t, time.Minute, "both agents to report", func() bool {
		nl, err := e.Client.Nodes(t.Context(), map[string]string{"model": "pc-x86-64", "booted": "true"})
		return err == nil && nl.NumNodes == 2
	})
	env := &env{Env: e, url: e.URL, c: e.Client, tokens: e.Tokens}
	stdout, stderr, code := env.run(t, false, "node", "reboot", "real1,real2")
	if code != 0 || stdout != "Nodes real1 and real2: rebooted OK.\n" || stderr != "" {
		t.Fatalf("walt node reboot: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, j := range journals {
		testutil.Eventually(t, time.Minute, "reboot journal "+j, func() bool {
			b, _ := os.ReadFile(j)
			return strings.TrimSpace(string(b)) != ""
		})
	}
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
