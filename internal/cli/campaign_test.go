package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The CLI's loopback blocks for labs: 127.160.x.y to 127.162.x.y
// (internal/campaign's tests use 127.150 to 127.157).
const (
	octetCLICampaign = 160
	octetCLICompare  = 161
	octetCLITaken    = 162
)

// walt campaign start prints the campaign's id; follow tells each boot and
// the quarantine, then the summary, and fails when a node failed; show
// and node show tell the quarantine, node clear-quarantine lifts it.
func TestCampaignCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartLab(t, lab.Config{Nodes: 3, Octet: octetCLICampaign, Faults: map[string]lab.Fault{"node02": lab.Refused}})
	stdout, stderr, code := e.run(t, false, "campaign", "start", "--repeat", "3", "--name", "warm", "--force", "--boot-timeout", "2s", "all-nodes")
	if code != cli.ExitOK || stdout != "1\n" || !strings.Contains(stderr, "Campaign 1 started: 3 nodes, 3 rounds.") {
		t.Fatalf("campaign start = %d, stdout %q, stderr %q; want campaign 1's id alone on stdout", code, stdout, stderr)
	}
	stdout, _, code = e.run(t, false, "campaign", "follow", "1")
	if code != cli.ExitFailure {
		t.Errorf("campaign follow of a campaign with a failed node exited %d, want 1", code)
	}
	for _, re := range []string{
		`node01 iteration 3: booted in \d+\.\d\ds \(soft-reboot\)`,
		`node02 iteration 2: failed: `,
		`node02 quarantined: 2 failed boots in a row`,
		`Campaign 1 \(warm\) of alice on all-nodes: done, round 3 of 3`,
		`node03 +finished +3 +3 +0 `,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("campaign follow output lacks %q:\n%s", re, stdout)
		}
	}
	if n := strings.Count(stdout, "node01 iteration 3: booted"); n != 1 {
		t.Errorf("node01's third boot told %d times, want once:\n%s", n, stdout)
	}
	if strings.Contains(stdout, "\033") {
		t.Errorf("campaign follow wrote terminal escapes to a pipe:\n%q", stdout)
	}
	stdout, _, _ = e.run(t, false, "campaign", "show")
	if !regexp.MustCompile(`(?m)^1 +warm +alice +done +3/3 +rounds`).MatchString(stdout) {
		t.Errorf("campaign show lists:\n%s", stdout)
	}
	stdout, _, _ = e.run(t, false, "node", "show", "--all", "--json")
	if !strings.Contains(stdout, `"quarantine": {`) {
		t.Errorf("node show --json does not show node02's quarantine:\n%s", stdout)
	}
	_, stderr, code = e.run(t, false, "node", "clear-quarantine", "all-nodes")
	if code != cli.ExitOK || !strings.Contains(stderr, "Node node02 is out of quarantine") {
		t.Errorf("node clear-quarantine = %d, %q", code, stderr)
	}
	_, stderr, code = e.run(t, false, "campaign", "show", "x")
	if code != cli.ExitUsage || !strings.Contains(stderr, `campaign id "x" is not valid`) {
		t.Errorf("campaign show x = %d, %q; want a usage error naming x", code, stderr)
	}

	stdout, _, code = e.run(t, false, "campaign", "stats", "1", "--csv")
	if code != cli.ExitOK || !regexp.MustCompile(`(?m)^node,node01,rpi-b,finished,3,3,0,`).MatchString(stdout) || !regexp.MustCompile(`(?m)^node,node02,rpi-b,quarantined,2,0,2,`).MatchString(stdout) {
		t.Errorf("campaign stats --csv = %d:\n%s", code, stdout)
	}
	stdout, _, code = e.run(t, false, "campaign", "stats", "1", "--json")
	if code != cli.ExitOK || !strings.Contains(stdout, `"attempted": 8,
    "completed": 6,
    "failed": 2,`) || !strings.Contains(stdout, `"soft-reboot": 6`) {
		t.Errorf("campaign stats --json = %d, want 8 boots attempted by the whole set (3 of node01 and node03, 2 of node02), 6 completed by soft reboots:\n%s", code, stdout)
	}
	dir := t.TempDir()
	svg, png := filepath.Join(dir, "c1.svg"), filepath.Join(dir, "c1.png")
	_, stderr, code = e.run(t, false, "campaign", "stats", "1", "--svg", svg, "--png", png)
	if code != cli.ExitOK || !strings.Contains(stderr, "Plots written to "+svg) {
		t.Errorf("campaign stats --svg --png = %d, %q", code, stderr)
	}
	for _, f := range []string{svg, png} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", f, err)
		}
	}
	if _, stderr, code = e.run(t, false, "campaign", "stats", "1", "--svg", filepath.Join(dir, "no", "such", "dir.svg")); code == cli.ExitOK || !strings.Contains(stderr, "dir.svg") {
		t.Errorf("campaign stats --svg into a missing directory = %d, %q; want an error naming the file", code, stderr)
	}

	// On a terminal, follow keeps one status line up to date, and prints
	// a line only for failures and quarantines.
	stdout, _, code = e.run(t, true, "campaign", "follow", "1")
	if code != cli.ExitFailure || !strings.Contains(stdout, "\r\033[Kcampaign 1 round 3/3: 2 booted, 0 booting, 0 failed, 1 out") ||
		strings.Contains(stdout, "node01 iteration") {
		t.Errorf("campaign follow on a terminal = %d:\n%q", code, stdout)
	}

	// walt node reboot --repeat runs a campaign and follows it.
	stdout, stderr, code = e.run(t, false, "node", "reboot", "--repeat", "2", "--force", "node01,node03")
	if code != cli.ExitOK || !strings.Contains(stderr, "Campaign 2 started: 2 nodes, 2 rounds.") || !strings.Contains(stdout, "node03 iteration 2: booted") {
		t.Errorf("node reboot --repeat 2 = %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// walt campaign compare reports, per model, the shift of the boot time
// and the tests' p-values.
func TestCampaignCompare(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartLab(t, lab.Config{Nodes: 2, Octet: octetCLICompare})
	for range 2 {
		if _, _, code := e.run(t, false, "node", "reboot", "--repeat", "3", "--force", "all-nodes"); code != cli.ExitOK {
			t.Fatalf("node reboot --repeat 3 = %d", code)
		}
	}
	stdout, stderr, code := e.run(t, false, "campaign", "compare", "1", "2")
	if code != cli.ExitOK || !strings.Contains(stdout, "rpi-b") {
		t.Errorf("campaign compare 1 2 = %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, _, code = e.run(t, false, "campaign", "compare", "1", "2", "--json")
	if code != cli.ExitOK || !strings.Contains(stdout, `"mann_whitney_p"`) || !strings.Contains(stdout, `"a": "1"`) {
		t.Errorf("campaign compare --json = %d:\n%s", code, stdout)
	}
	if _, stderr, code = e.run(t, false, "campaign", "compare", "1", "7"); code == cli.ExitOK || !strings.Contains(stderr, `"7"`) {
		t.Errorf("campaign compare 1 7 = %d, %q; want an error naming campaign 7", code, stderr)
	}
}

// A node another user takes during a campaign leaves it: follow says so
// (and does not fail for it), show and stats give its state and reason.
func TestCampaignNodeTakenCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartLab(t, lab.Config{Nodes: 2, Octet: octetCLITaken})
	if stdout, stderr, code := e.run(t, false, "campaign", "start", "--repeat", "3", "--hold", "1500ms", "all-nodes"); code != cli.ExitOK || stdout != "1\n" {
		t.Fatalf("campaign start = %d, %q, %q", code, stdout, stderr)
	}
	alice := e.ClientAs(t, "alice")
	testutil.EventuallyNil(t, 20*time.Second, "round 1 booted", func() error {
		c, err := alice.Campaign(t.Context(), "1")
		if err != nil {
			return err
		}
		for _, n := range c.Nodes {
			if n.Iteration != 1 || n.Phase != api.BootCompleted {
				return fmt.Errorf("%s is %s in iteration %d", n.Node, n.Phase, n.Iteration)
			}
		}
		return nil
	})
	if _, err := e.ClientAs(t, "bob").Ownership(t.Context(), api.OwnershipRequest{Set: "node02", Action: "acquire", Requester: "bob"}); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := e.run(t, false, "campaign", "follow", "1")
	if code != cli.ExitOK || !regexp.MustCompile(`node02 left the campaign: owned by bob before round 2`).MatchString(stdout) {
		t.Errorf("campaign follow = %d, want 0 and a line for node02 leaving:\n%s", code, stdout)
	}
	stdout, _, _ = e.run(t, false, "campaign", "show", "1")
	if !regexp.MustCompile(`(?m)^node02 +taken: owned by bob before round 2: no longer rebooted by this campaign +1 +1 +0 `).MatchString(stdout) {
		t.Errorf("campaign show 1:\n%s", stdout)
	}
	stdout, _, _ = e.run(t, false, "campaign", "stats", "1", "--csv")
	if !regexp.MustCompile(`(?m)^node,node02,rpi-b,taken,1,1,0,`).MatchString(stdout) {
		t.Errorf("campaign stats --csv:\n%s", stdout)
	}
}
