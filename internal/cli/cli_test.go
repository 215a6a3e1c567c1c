package cli_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Package tests use 127.30.0.0/16 for agents.
var addrs = reboottest.NewAddrs(30)

type env struct {
	*servertest.Env
	url    string
	c      *client.Client
	tokens *accountstest.Tokens
}

func newEnv(t *testing.T) *env {
	e := servertest.New(t, addrs, nil)
	return &env{Env: e, url: e.URL, c: e.Client, tokens: e.Tokens}
}

// token returns the token of user ("" if e has no accounts).
func (e *env) token(t *testing.T, user string) string {
	if e.tokens == nil {
		return ""
	}
	return e.tokens.Of(t, user)
}

func (e *env) addNodes(t *testing.T, b reboottest.Behaviour, names ...string) {
	t.Helper()
	for _, name := range names {
		e.AddNode(t, name, b)
	}
}

// run runs walt once as alice.
func (e *env) run(t *testing.T, terminal bool, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = cli.Run(t.Context(), cli.Options{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			return map[string]string{"WALT_SERVER": e.url, "WALT_USER": "alice", "WALT_TOKEN": e.token(t, "alice")}[k]
		},
		IsTerminal: func(any) bool { return terminal },
	})
	return out.String(), errOut.String(), code
}

// step is one walt run of a golden scenario.
type step struct {
	args     string
	stdin    string
	terminal bool
	user     string
}

// run runs the steps and compares the transcript with testdata/<name>.golden.
func (e *env) golden(t *testing.T, name string, steps ...step) {
	t.Helper()
	var transcript strings.Builder
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		user := s.user
		if user == "" {
			user = "alice"
		}
		getenv := func(k string) string {
			return map[string]string{"WALT_SERVER": e.url, "WALT_USER": user, "WALT_TOKEN": e.token(t, user)}[k]
		}
		term := s.terminal
		code := cli.Run(t.Context(), cli.Options{
			Args: strings.Fields(s.args), Stdin: strings.NewReader(s.stdin), Stdout: &stdout, Stderr: &stderr,
			Getenv: getenv, IsTerminal: func(any) bool { return term },
		})
		fmt.Fprintf(&transcript, "$ %s walt %s\n", user, s.args)
		if stdout.Len() > 0 {
			fmt.Fprintf(&transcript, "--- stdout\n%s", stdout.String())
		}
		if stderr.Len() > 0 {
			fmt.Fprintf(&transcript, "--- stderr\n%s", stderr.String())
		}
		fmt.Fprintf(&transcript, "--- exit %d\n\n", code)
	}
	got := strings.ReplaceAll(transcript.String(), e.url, "SERVER")
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s transcript (-want +got):\n%s", path, diff)
	}
}

func TestRebootOK(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "rpi1", "rpi2", "rpi3", "n1", "n2", "n3", "n4")
	e.golden(t, "reboot_ok",
		step{args: "node reboot rpi3"},
		step{args: "node reboot rpi1,rpi3,rpi2"},
		step{args: "node reboot rpi[1-3],n[1-4]"},
		step{args: "node reboot --hard rpi1"},
	)
}

func TestRebootFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "ok1")
	e.addNodes(t, reboottest.Refused, "dead1", "dead2")
	e.addNodes(t, reboottest.BlackHole, "hole")
	e.addNodes(t, reboottest.KO, "ko")
	e.addNodes(t, reboottest.Garbage, "junk")
	e.golden(t, "reboot_failures",
		step{args: "node reboot all-nodes"},
		step{args: "node reboot ok1,nope"},
		step{args: "node reboot rpi[1-"},
		step{args: "node reboot ok1 extra"},
		step{args: "node reboot --bogus ok1"},
		step{args: "node frobnicate ok1"},
	)
}

func TestRebootOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "a1", "a2", "b1")
	e.golden(t, "ownership",
		step{args: "node acquire a1,a2"},
		step{args: "node acquire a1"},
		step{args: "node show", user: "bob"},
		step{args: "node reboot a1,b1", user: "bob"},
		step{args: "node reboot a[1-2]", user: "bob", terminal: true, stdin: "maybe\nn\n"},
		step{args: "node reboot a1", user: "bob", terminal: true, stdin: "y\n"},
		step{args: "node reboot a2 --force", user: "bob"},
		step{args: "node release a1", user: "bob"},
		step{args: "node release my-nodes"},
	)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i, name := range []string{"rpi1", "rpi2"} {
		// Fixed addresses: this transcript shows them, and nothing is rebooted.
		if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: fmt.Sprintf("52:54:00:00:00:%02x", i+1), IP: fmt.Sprintf("192.168.152.%d", 101+i), Name: name, Model: "rpi-b"}); err != nil {
			t.Fatal(err)
		}
	}
	e.golden(t, "config",
		step{args: "device add sw1 --ip 192.168.152.2 --type switch"},
		step{args: "device add unknown-3 --ip 192.168.152.3 --mac 00:11:22:33:44:55"},
		step{args: "device add sw1 --ip 192.168.152.4"},
		step{args: "device add sw9"},
		step{args: "device show"},
		step{args: "device config sw1"},
		step{args: "device config sw1 snmp.version=2 poe.reboots=true"},
		step{args: "device config sw1 snmp.version=2 snmp.community=private lldp.explore=true poe.reboots=true poe.delay=3"},
		step{args: "device config sw1,rpi1,rpi2"},
		step{args: "device config unknown-3 type=switch snmp.version=1"},
		step{args: "node config rpi1 kexec.allow=false boot.timeout=none"},
		step{args: "node config rpi1,sw1 kexec.allow=true"},
		step{args: "node config sw1"},
		step{args: "node config rpi1 boot.timeout=20"},
		step{args: "node config rpi[1-2]"},
		step{args: "device forget switch-3"},
		step{args: "device forget switch-3"},
	)
}

func TestHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.golden(t, "help",
		step{args: "node reboot --help"},
		step{args: "node --help"},
		step{args: "node"},
		step{args: "--help"},
		step{args: "help list"},
		step{args: "help show frobnicate"},
	)
}

func TestRebootJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "j1")
	e.addNodes(t, reboottest.Refused, "j2")
	stdout, _, code := e.run(t, false, "node", "reboot", "--json", "j1,j2")
	var out struct {
		Results []api.NodeResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	if code != cli.ExitFailure || len(out.Results) != 2 || !out.Results[0].OK || out.Results[1].OK ||
		out.Results[1].Attempts[0].Code != "refused" || out.Results[1].Attempts[1].Code != "no-method" {
		t.Errorf("--json: exit %d, results %+v; want exit 1, j1 OK, j2 refused then no-method", code, out.Results)
	}
}

// On a terminal, progress (done/total) goes to stderr and is erased.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "p1", "p2")
	stdout, stderr, code := e.run(t, true, "node", "reboot", "p1,p2")
	if code != 0 || !strings.Contains(stderr, "\rRebooting: 2/2 nodes done") || !strings.HasSuffix(stderr, "\r\033[K") {
		t.Errorf("exit %d, stderr %q; want progress up to 2/2, then erased", code, stderr)
	}
	if stdout != "Nodes p1 and p2: rebooted OK.\n" {
		t.Errorf("stdout %q", stdout)
	}
}

// TestConfigValueFromStdin: `snmp.community=-` reads the community from
// standard input, so it never is on a command line.
func TestConfigValueFromStdin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", MAC: "02:00:00:00:00:01", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := cli.Run(t.Context(), cli.Options{
			Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
			Getenv: func(k string) string {
				return map[string]string{"WALT_SERVER": e.url, "WALT_USER": "alice", "WALT_TOKEN": e.token(t, "alice")}[k]
			},
			IsTerminal: func(any) bool { return false },
		})
		return out.String() + errOut.String(), code
	}
	if out, code := run("s3cret-rw\n", "device", "config", "sw1", "snmp.version=2", "snmp.community=-"); code != 0 || strings.Contains(out, "s3cret") {
		t.Fatalf("config from stdin: exit %d, output:\n%s", code, out)
	}
	settings, err := e.Store.Settings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := settings["02:00:00:00:00:01"]["snmp.community"]; got != "s3cret-rw" {
		t.Errorf("community stored = %q, want the line read from stdin", got)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"snmp.community=-"}, "no value on standard input"},
		{"\n", []string{"snmp.community=-"}, "no value on standard input"},
		{"a\n", []string{"snmp.community=-", "snmp.version=-"}, "only one can"},
		{strings.Repeat("x", 5000), []string{"snmp.community=-"}, "longer than 4096 bytes"},
	} {
		out, code := run(tc.stdin, append([]string{"device", "config", "sw1"}, tc.args...)...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("config %v with stdin %.10q: exit %d, %q; want exit 2 and %q", tc.args, tc.stdin, code, out, tc.want)
		}
	}
}
