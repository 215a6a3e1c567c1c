package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The power-crash test uses 127.67.0.0/16.

// A server killed with SIGKILL while a node's power.command has cut its
// power (power.off_time holds it off) leaves the node off; the next server
// start runs the command's "on" and logs it.
func TestKilledDuringCommandPowerCycleRestoresAtRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	script, err := filepath.Abs("../../internal/power/command/testdata/record.sh")
	if err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(t.TempDir(), "calls")
	actions := func() []string {
		b, _ := os.ReadFile(calls)
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if _, rest, ok := strings.Cut(l, " "); ok {
				out = append(out, rest)
			}
		}
		return out
	}
	bin, dataDir := buildServer(t), t.TempDir()
	first := startProcAt(t, bin, dataDir, "127.67.0.1:0")
	c, err := client.New("http://"+first.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithToken(userToken(t, "test", "--data", dataDir))
	ctx := t.Context()
	if _, err := c.ReportNode(ctx, api.NodeReport{MAC: "02:67:00:00:00:02", IP: "127.67.0.2", Name: "pc1", Model: "pc-x86-64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConfig(ctx, api.ConfigRequest{Set: "pc1", Settings: []string{"power.method=command", "power.off_time=30s",
		"power.command=" + script + " " + calls + " {action} {name}"}}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Reboot(rctx, api.RebootRequest{Set: "pc1", Hard: true, Requester: "test"}, nil) // ends with the server
	testutil.Eventually(t, 30*time.Second, "the power command to switch pc1 off", func() bool { return len(actions()) > 0 })
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-first.done
	if got := actions(); !slices.Equal(got, []string{"<off> <pc1>"}) {
		t.Fatalf("power command calls before the restart %q, want only off: the kill did not land in the off period", got)
	}

	second := startRestored(t, bin, dataDir)
	if got := actions(); !slices.Equal(got, []string{"<off> <pc1>", "<on> <pc1>"}) {
		t.Errorf("power command calls after the restart %q, want off then on", got)
	}
	testutil.Eventually(t, 10*time.Second, "the restart log to report pc1's power restored", func() bool {
		log := second.log.String()
		return strings.Contains(log, `msg="power restored" node=pc1`) && strings.Contains(log, "reason=hard-reboot")
	})
	// Restored once: a third start has nothing to do.
	second.cmd.Process.Kill()
	<-second.done
	startRestored(t, bin, dataDir)
	if got := actions(); len(got) != 2 {
		t.Errorf("power command calls after a third start %q, want no more", got)
	}
}

// startRestored starts walt-server on dataDir, on 127.67.0.1, and waits
// until its start-up has restored node power.
func startRestored(t *testing.T, bin, dataDir string) *serverProc {
	t.Helper()
	p := startProcAt(t, bin, dataDir, "127.67.0.1:0")
	c, err := client.New("http://"+p.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the server to restore node power", func() bool {
		h, err := c.Health(t.Context())
		return err == nil && !slices.Contains(h.Starting, "restore node power")
	})
	return p
}
