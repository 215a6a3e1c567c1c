package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// runNoEnv runs walt as alice with WALT_SERVER pointing nowhere, so that
// only a --server switch reaches the server.
func runNoEnv(t *testing.T, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = cli.Run(t.Context(), cli.Options{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			return map[string]string{"WALT_SERVER": "http://127.30.255.254:1", "WALT_USER": "alice"}[k]
		},
		IsTerminal: func(any) bool { return false },
	})
	return out.String(), errOut.String(), code
}

// --server works before the category as after the command.
func TestGlobalSwitchBeforeCategory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "g1")
	for _, args := range [][]string{
		{"--server", e.url, "node", "show", "--all"},
		{"--server=" + e.url, "node", "show", "--all"},
		{"-server", e.url, "node", "show", "--all"},
		{"node", "show", "--all", "--server", e.url},
		{"--server", "http://127.30.255.253:1", "node", "show", "--all", "--server", e.url}, // the later one wins
	} {
		stdout, stderr, code := runWith(t, map[string]string{"WALT_SERVER": "http://127.30.255.254:1", "WALT_TOKEN": e.token(t, "alice")}, args...)
		if code != 0 || !strings.Contains(stdout, "g1") {
			t.Errorf("walt %s: exit %d, stdout %q, stderr %q; want g1 listed", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	if stdout, _, code := runNoEnv(t, "--server", e.url, "--help"); code != 0 || !strings.Contains(stdout, "walt [--server URL] CATEGORY COMMAND") {
		t.Errorf("walt --server URL --help: exit %d, stdout %q; want the top help", code, stdout)
	}
	for _, args := range [][]string{{"--server"}, {"--colour", "red", "node", "show"}} {
		_, stderr, code := runNoEnv(t, args...)
		if code != cli.ExitUsage || !strings.HasPrefix(stderr, "Error: ") {
			t.Errorf("walt %s: exit %d, stderr %q; want usage error", strings.Join(args, " "), code, stderr)
		}
	}
}

// Changing or forgetting another user's node needs --force or a
// confirmation, as a reboot does; device names follow the one rule.
func TestChangesNeedForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "a1", "a2")
	e.golden(t, "changes_need_force",
		step{args: "node acquire a1,a2"},
		step{args: "node config a1 kexec.allow=false", user: "bob"},
		step{args: "device config a1,a2 kexec.allow=false", user: "bob", terminal: true, stdin: "n\n"},
		step{args: "node config a1 kexec.allow=false", user: "bob", terminal: true, stdin: "y\n"},
		step{args: "node config a2 kexec.allow=false --force", user: "bob"},
		step{args: "node config a[1-2]", user: "bob"},
		step{args: "device forget a1", user: "bob"}, // not an admin
		step{args: "device forget a1", user: "admin"},
		step{args: "device forget a1 --force", user: "admin"},
		step{args: "device forget a2"},
		step{args: "device add .. --ip 192.168.152.2"},
		step{args: "device add all-nodes --ip 192.168.152.2"},
		step{args: "device add sw1 --ip 169.254.169.254"},
		step{args: "device show"},
	)
}

// walt device forget refuses a virtual node, whose machine would go on
// running: walt node remove stops it, and the name can be used again.
func TestForgetVNodeRefused(t *testing.T) {
	e := processVNodes(t, "127.57.0.0/16")
	if stdout, stderr, code := e.run(t, false, "node", "create", "vf1", "boot.delay=0"); code != 0 {
		t.Fatalf("walt node create vf1: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, stderr, code := e.run(t, false, "device", "forget", "vf1")
	if code != cli.ExitUsage || !strings.Contains(stderr, "use walt node remove vf1") {
		t.Errorf("walt device forget vf1: exit %d, stderr %q; want usage error pointing to walt node remove", code, stderr)
	}
	if _, ok := vnodesByName(t, e)["vf1"]; !ok {
		t.Errorf("vf1 gone from the supervisor after a refused forget")
	}
	if _, stderr, code := e.run(t, false, "node", "remove", "vf1"); code != 0 {
		t.Fatalf("walt node remove vf1: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := e.run(t, false, "node", "create", "vf1", "boot.delay=0"); code != 0 {
		t.Errorf("walt node create vf1 again: exit %d, stderr %q", code, stderr)
	}
}
