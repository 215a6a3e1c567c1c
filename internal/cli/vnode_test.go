package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/server/servertest/vnodetest"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// Virtual node tests use 127.50.0.0/16 to 127.59.0.0/16 for vnode agents.

func vnodeEnv(t *testing.T, v *vnodetest.Env) *env {
	return &env{url: v.URL, c: v.Client, tokens: v.Tokens}
}

// processVNodes starts, for a parallel test, a server whose vnodes are
// walt-node processes with addresses in prefix.
func processVNodes(t *testing.T, prefix string) *env {
	if testing.Short() {
		t.Skip("builds walt-node, runs agents")
	}
	t.Parallel()
	v := vnodetest.Start(t, vnodetest.Process(t), prefix, "")
	return vnodeEnv(t, v)
}

// vnodesByName returns the supervisor's view of every vnode, from the API.
func vnodesByName(t *testing.T, e *env) map[string]api.VNode {
	t.Helper()
	list, err := e.c.VNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.VNode{}
	for _, v := range list.VNodes {
		out[v.Name] = v
	}
	return out
}

// lastSeen returns when each device last reported.
func lastSeen(t *testing.T, e *env) map[string]time.Time {
	t.Helper()
	devs, err := e.c.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, d := range devs.Devices {
		if d.LastSeen != nil {
			out[d.Name] = *d.LastSeen
		}
	}
	return out
}

// rebootJSON runs walt node reboot --json and returns the per-node results.
func rebootJSON(t *testing.T, e *env, args ...string) map[string]api.NodeResult {
	t.Helper()
	stdout, stderr, code := e.run(t, false, append([]string{"node", "reboot", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("walt node reboot --json %v: exit %d, stderr %q", args, code, stderr)
	}
	var out struct{ Results []api.NodeResult }
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("walt node reboot --json: %v in %q", err, stdout)
	}
	m := map[string]api.NodeResult{}
	for _, r := range out.Results {
		m[r.Node] = r
	}
	return m
}

// vnodeBootTimeout bounds the wait for vnodes to boot and report, QEMU VMs
// under software emulation included, on a loaded machine.
const vnodeBootTimeout = 3 * time.Minute

// waitRebooted waits until every named vnode runs a machine of a later
// generation than in before, whose agent reported to the server after
// since, and returns the new view.
func waitRebooted(t *testing.T, e *env, names []string, before map[string]api.VNode, since time.Time) map[string]api.VNode {
	t.Helper()
	var now map[string]api.VNode
	testutil.Eventually(t, vnodeBootTimeout, fmt.Sprintf("%d vnodes to boot again and report", len(names)), func() bool {
		now = vnodesByName(t, e)
		seen := lastSeen(t, e)
		for _, n := range names {
			if v := now[n]; !v.Running || v.Generation <= before[n].Generation || !seen[n].After(since) {
				return false
			}
		}
		return true
	})
	return now
}

// TestVNodeProcessScenario runs 50 process vnodes through the CLI: create,
// booted, soft reboot (each agent exits and starts again), hard reboot
// (each machine killed and started again), VM settings, console, removal.
func TestVNodeProcessScenario(t *testing.T) {
	e := processVNodes(t, "127.50.0.0/16")
	const n = 50
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("pv%02d", i+1)
		stdout, stderr, code := e.run(t, false, "node", "create", names[i], "boot.delay=0")
		if code != 0 || !strings.HasPrefix(stdout, "Node "+names[i]+" is now booting (virtual node, process backend, agent at 127.50.") {
			t.Fatalf("walt node create %s: exit %d, stdout %q, stderr %q", names[i], code, stdout, stderr)
		}
	}
	const set = "pv[01-50]"
	testutil.Eventually(t, vnodeBootTimeout, "50 vnodes booted", func() bool {
		nl, err := e.c.Nodes(t.Context(), map[string]string{"booted": "true", "virtual": "true", "model": "pc-x86-64"})
		return err == nil && nl.NumNodes == n
	})
	nl, err := e.c.Nodes(t.Context(), map[string]string{"owner": "alice"})
	if err != nil || nl.NumNodes != n {
		t.Fatalf("nodes owned by their creator alice: %d, %v; want %d", nl.NumNodes, err, n)
	}
	gen1 := vnodesByName(t, e)

	// Soft reboot: every agent answers OK and exits; its next life reports.
	since := time.Now()
	for name, r := range rebootJSON(t, e, set) {
		if !r.OK || r.Method != api.MethodSoft {
			t.Errorf("soft reboot of %s: ok %v, method %q, attempts %+v", name, r.OK, r.Method, r.Attempts)
		}
	}
	gen2 := waitRebooted(t, e, names, gen1, since)
	if got := gen2["pv01"].LastExit; got != "agent rebooted (exit status 10)" {
		t.Errorf("after soft reboot, last exit %q", got)
	}

	// Hard reboot: the engine kills each machine through the supervisor.
	since = time.Now()
	res := rebootJSON(t, e, "--hard", set)
	if len(res) != n {
		t.Fatalf("hard reboot: %d results, want %d", len(res), n)
	}
	for name, r := range res {
		if !r.OK || r.Method != api.MethodVnodeHard {
			t.Errorf("hard reboot of %s: ok %v, method %q, attempts %+v", name, r.OK, r.Method, r.Attempts)
		}
	}
	gen3 := waitRebooted(t, e, names, gen2, since)
	for _, name := range names {
		if old := gen2[name].PID; vmtest.Alive(old) {
			t.Errorf("%s: machine pid %d survived its hard reboot", name, old)
		}
		if got := gen3[name].LastExit; got != "killed by hard reboot" {
			t.Errorf("%s: after hard reboot, last exit %q", name, got)
		}
	}

	// VM settings reach the supervisor for the next start.
	stdout, stderr, code := e.run(t, false, "node", "config", set, "ram=1024M", "cpu.cores=2")
	if code != 0 || stdout != "Done. Reboot node(s) to see new settings in effect.\n" {
		t.Fatalf("walt node config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, name := range names {
		if s := vnodesByName(t, e)[name].Settings; s["ram"] != "1G" || s["cpu.cores"] != "2" || s["boot.delay"] != "0" {
			t.Errorf("%s: supervisor settings %v, want ram=1G cpu.cores=2 boot.delay=0", name, s)
		}
	}
	stdout, _, _ = e.run(t, false, "node", "config", "pv07")
	for _, want := range []string{"boot.delay=0\n", "cpu.cores=2\n", "ram=1G\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("walt node config pv07: %q lacks %q", stdout, want)
		}
	}

	stdout, _, code = e.run(t, false, "node", "console", "pv07")
	if code != 0 || !strings.Contains(stdout, "== walt vnode pv07: machine 2 exited: killed by hard reboot ==") {
		t.Errorf("walt node console pv07: exit %d, output %q", code, stdout)
	}

	for _, name := range names {
		stdout, stderr, code := e.run(t, false, "node", "remove", name)
		if code != 0 || stdout != "Node "+name+" removed.\n" {
			t.Fatalf("walt node remove %s: exit %d, stdout %q, stderr %q", name, code, stdout, stderr)
		}
	}
	if left := vnodesByName(t, e); len(left) != 0 {
		t.Errorf("vnodes left after removal: %v", left)
	}
	if nl, err := e.c.Nodes(t.Context(), nil); err != nil || nl.NumNodes != 0 {
		t.Errorf("nodes left after removal: %d, %v", nl.NumNodes, err)
	}
	for name, v := range gen3 {
		if vmtest.Alive(v.PID) {
			t.Errorf("%s: machine pid %d alive after removal", name, v.PID)
		}
	}
}

// follow runs walt node console --follow in the background; the returned
// channel yields its exit status.
func follow(ctx context.Context, t *testing.T, e *env, name string, out *testutil.Buffer) <-chan int {
	token := e.token(t, "alice")
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, cli.Options{
			Args: []string{"node", "console", "--follow", name}, Stdin: strings.NewReader(""), Stdout: out, Stderr: out,
			Getenv: func(k string) string {
				return map[string]string{"WALT_SERVER": e.url, "WALT_USER": "alice", "WALT_TOKEN": token}[k]
			},
		})
	}()
	return done
}

func TestVNodeConsoleFollow(t *testing.T) {
	e := processVNodes(t, "127.53.0.0/16")
	if _, stderr, code := e.run(t, false, "node", "create", "cf1", "boot.delay=0"); code != 0 {
		t.Fatalf("walt node create: exit %d, %s", code, stderr)
	}
	var out testutil.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := follow(ctx, t, e, "cf1", &out)
	testutil.Eventually(t, time.Minute, "the console to show machine 1", func() bool { return strings.Contains(out.String(), "starting machine 1 ") })
	if _, stderr, code := e.run(t, false, "node", "reboot", "--hard", "cf1"); code != 0 {
		t.Fatalf("walt node reboot --hard: exit %d, %s", code, stderr)
	}
	testutil.Eventually(t, time.Minute, "the console to show machine 2", func() bool {
		return strings.Contains(out.String(), "machine 1 exited: killed by hard reboot") && strings.Contains(out.String(), "starting machine 2 ")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("walt node console --follow interrupted: exit %d, output %q", code, out.String())
	}

	// Removing the node ends the stream.
	var out2 testutil.Buffer
	done = follow(t.Context(), t, e, "cf1", &out2)
	testutil.Eventually(t, time.Minute, "the second follower to start", func() bool { return strings.Contains(out2.String(), "starting machine 2 ") })
	if _, stderr, code := e.run(t, false, "node", "remove", "cf1"); code != 0 {
		t.Fatalf("walt node remove: exit %d, %s", code, stderr)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("walt node console --follow of a removed node: exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("walt node console --follow still running 30 s after the node was removed")
	}
}

// TestVNodeBadInput checks that every refused create, remove, config and
// console says what was wrong and changes nothing.
func TestVNodeBadInput(t *testing.T) {
	e := processVNodes(t, "127.52.0.0/16")
	if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:aa:00:01", IP: "127.52.255.1", Name: "rpi1", Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run(t, false, "node", "create", "vn1", "boot.delay=0"); code != 0 {
		t.Fatalf("walt node create vn1: exit %d, %s", code, stderr)
	}
	vn1 := vnodesByName(t, e)["vn1"]
	if _, err := e.c.CreateVNode(t.Context(), api.CreateVNode{Name: "bobs", Settings: []string{"boot.delay=0"}, Requester: "bob"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args string
		code int
		want string // the start of stderr
	}{
		{"node create a/b", 2, `Error: invalid vnode name "a/b": use 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or a digit`},
		{"node create -- -x", 2, `Error: invalid vnode name "-x"`},
		{"node create all-nodes", 2, "Error: 'all-nodes' is a keyword of node sets, not a valid device name"},
		{"node create vn1", 1, "Error: Device name 'vn1' is already used (node, mac " + vn1.MAC + ")."},
		{"node create rpi1", 1, "Error: Device name 'rpi1' is already used (node, mac 52:54:00:aa:00:01)."},
		{"node create vn2 ram=12", 2, "Error: '12' is not a valid value for ram (expecting for instance 512M or 1G).\n"},
		{"node create vn2 cpu.cores=0", 2, "Error: '0' is not a valid value for cpu.cores (expecting for instance 4).\n"},
		{"node create vn2 boot.delay=soon", 2, "Error: 'soon' is not a valid value for option 'boot.delay'.\n        Use for example '2' for 2s, '0' to disable, 'random' for a random delay between 1 and 10s.\n"},
		{"node create vn2 color=red", 2, "Error: Unknown setting 'color'. See: 'walt help show device-config'\n"},
		{"node create vn2 ram", 2, "Error: Please provide settings as `<setting name>=<setting value>` arguments"},
		{"node create vn2 type=switch", 2, "Error: setting 'type' can only be applied to unknown devices"},
		{"node create", 2, "Error: missing argument node_name\n"},
		{"node remove nope", 1, "Error: No device with name 'nope' found.\n"},
		{"node remove rpi1", 2, "Error: rpi1 is a real node (not virtual).\n"},
		{"node remove bobs", 1, "Warning: node bobs seems to be used by another user.\nError: not confirmed (no terminal to ask on).\nTry: add --force"},
		{"node config rpi1 ram=1G", 2, "Error: node rpi1 is not virtual, so 'ram' setting is not supported.\n"},
		{"node config vn1,rpi1 cpu.cores=2", 2, "Error: node rpi1 is not virtual, so 'cpu.cores' setting is not supported.\n"},
		{"node config vn1 ram=1T", 2, "Error: '1T' is not a valid value for ram (expecting for instance 512M or 1G).\n"},
		{"node console rpi1", 2, "Error: rpi1 is not a virtual node: only virtual nodes have a console here.\n"},
		{"node console nope", 1, "Error: No device with name 'nope' found.\n"},
	} {
		stdout, stderr, code := e.run(t, false, strings.Fields(tc.args)...)
		if code != tc.code || stdout != "" || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("walt %s: exit %d, stdout %q, stderr %q; want exit %d, stderr starting %q", tc.args, code, stdout, stderr, tc.code, tc.want)
		}
	}

	// Nothing changed.
	got := vnodesByName(t, e)
	if len(got) != 2 || got["vn1"].Settings["ram"] != "512M" || got["vn1"].Settings["cpu.cores"] != "4" {
		t.Errorf("vnodes after refused commands: %+v", got)
	}
	if nl, err := e.c.Nodes(t.Context(), nil); err != nil || nl.NumNodes != 3 {
		t.Errorf("nodes after refused commands: %d, %v; want rpi1, vn1, bobs", nl.NumNodes, err)
	}
	stdout, _, _ := e.run(t, false, "node", "config", "rpi1")
	if strings.Contains(stdout, "ram=") || strings.Contains(stdout, "cpu.cores=") || strings.Contains(stdout, "boot.delay=") {
		t.Errorf("walt node config rpi1 shows vnode settings: %q", stdout)
	}

	// With --force, another user's vnode goes.
	if stdout, stderr, code := e.run(t, false, "node", "remove", "--force", "bobs"); code != 0 || stdout != "Node bobs removed.\n" {
		t.Errorf("walt node remove --force bobs: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestVNodesDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, stderr, code := e.run(t, false, "node", "create", "vn1")
	if code != 1 || stderr != "Error: this server runs no virtual nodes (see walt-server --vnode-backend and docs/vnodes.md)\n" {
		t.Errorf("walt node create on a server without vnodes: exit %d, stderr %q", code, stderr)
	}
	if nl, err := e.c.Nodes(t.Context(), nil); err != nil || nl.NumNodes != 0 {
		t.Errorf("nodes: %d, %v; want none", nl.NumNodes, err)
	}
}
