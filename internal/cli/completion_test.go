package cli_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// TestMain lets the test binary be walt: the completion scripts call
// "walt completion words" through $PATH, where waltDir puts a link to it.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "walt" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// waltDir returns a directory holding "walt", this test binary.
func waltDir(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "walt")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Drivers of the shells' completion: each sources the script printed by
// "walt completion SHELL", completes the line $1 as the shell would on a
// TAB at its end, and prints the candidates one per line.
var shellDrivers = map[string][]string{
	// bash sets COMP_LINE, COMP_POINT, COMP_WORDS and COMP_CWORD, then
	// calls the function registered with complete -F.
	"bash": {"bash", "--norc", "--noprofile", "-c", `
source <(walt completion bash) || exit 1
fn=$(complete -p walt) && [[ $fn == *"-F _walt walt"* ]] || { echo "not registered: $fn"; exit 1; }
COMP_LINE=$1; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_walt
(( ${#COMPREPLY[@]} )) && printf '%s\n' "${COMPREPLY[@]}"
exit 0`, "bash"},
	// zsh: compadd and compdef exist only under compinit, inside a
	// completion widget; stand-ins print what the script adds.
	"zsh": {"zsh", "-f", "-c", `
compdef() { [[ $1 == _walt && $2 == walt ]] || print "compdef $*"; }
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
source <(walt completion zsh) || exit 1
words=(${(z)1}); [[ $1 == *' ' ]] && words+=("")
CURRENT=${#words}
_walt
exit 0`, "zsh"},
	// fish completes a command line itself with complete -C.
	"fish": {"fish", "--no-config", "-c", `
walt completion fish | source; or exit 1
for c in (complete -C"$argv[1]"); string replace -r '\t.*' '' -- $c; end; true`},
}

func completeWith(t *testing.T, shell, dir, server, token, line string) []string {
	t.Helper()
	driver := shellDrivers[shell]
	cmd := exec.CommandContext(t.Context(), driver[0], append(driver[1:], line)...)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"WALT_SERVER="+server, "WALT_USER=alice", "WALT_TOKEN="+token, "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s completing %q: %v\n%s", shell, line, err, out)
	}
	var got []string
	for _, w := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if w != "" {
			got = append(got, w)
		}
	}
	slices.Sort(got)
	return got
}

// TestCompletionShells completes categories, commands, switches and the
// node names of a real server in real shells.
func TestCompletionShells(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "rpi1", "rpi2")
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	dir := waltDir(t)
	const unreachable = "http://127.0.0.1:1"
	cases := []struct {
		server, line string
		want         []string
	}{
		{e.url, "walt no", []string{"node"}},
		{e.url, "walt ", []string{"campaign", "completion", "device", "help", "log", "node", "server"}},
		{e.url, "walt node reb", []string{"reboot"}},
		{e.url, "walt node re", []string{"reboot", "release", "remove"}},
		{e.url, "walt node reboot --ha", []string{"--hard"}},
		{e.url, "walt node reboot rpi1 --w", []string{"--wait"}},
		{e.url, "walt node reboot rp", []string{"rpi1", "rpi2"}},
		{e.url, "walt node reboot rpi1,r", []string{"rpi1,rpi1", "rpi1,rpi2"}},
		{e.url, "walt node reboot my", []string{"my-nodes"}},
		{e.url, "walt device port-config ", []string{"sw1"}},
		{e.url, "walt help show node-", []string{"node-ownership", "node-reboot"}},
		{e.url, "walt completion ", []string{"bash", "fish", "zsh"}},
		// --server on the line wins over WALT_SERVER, as when running.
		{unreachable, "walt --server " + e.url + " node wait rpi", []string{"rpi1", "rpi2"}},
		// No server: names are missing, the rest still completes.
		{unreachable, "walt node reboot rp", nil},
		{unreachable, "walt node reboot --fo", []string{"--force"}},
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(shell); err != nil {
				t.Skipf("%s not installed", shell)
			}
			for _, tc := range cases {
				got := completeWith(t, shell, dir, tc.server, e.token(t, "alice"), tc.line)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s completes %q (server %s): (-want +got)\n%s", shell, tc.line, tc.server, diff)
				}
			}
		})
	}
}

// TestCompletionNames: the hidden command the scripts could call prints the
// names of the server's nodes or devices, and only names with the syntax of
// device names: a hostile server cannot hand a shell "$(...)" or blanks.
func TestCompletionNames(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/nodes":
			w.Write([]byte(`{"num_nodes":4,"nodes":[{"name":"ok1"},{"name":"$(touch pwned)"},{"name":"a b"},{"name":"x\n-rf"}]}`))
		case "/api/v1/devices":
			w.Write([]byte(`{"num_devices":2,"devices":[{"name":"sw1","type":"switch"},{"name":"` + "`id`" + `","type":"switch"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	e := &env{url: srv.URL}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"completion", "names"}, "ok1\n"},
		{[]string{"completion", "names", "--nodes"}, "ok1\n"},
		{[]string{"completion", "names", "--devices"}, "sw1\n"},
		{[]string{"completion", "words", "--", "walt node reboot "}, "all-nodes\nfree-nodes\nmy-nodes\nok1\n"},
	} {
		stdout, stderr, code := e.run(t, false, tc.args...)
		if code != 0 || stdout != tc.want || stderr != "" {
			t.Errorf("walt %v: exit %d, stdout %q, stderr %q; want exit 0, %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

// TestCompletionNamesServerSilent: a server that accepts connections but
// never answers costs a TAB about a second, then no names, exit 0.
func TestCompletionNamesServerSilent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	e := &env{url: "http://" + ln.Addr().String()}
	start := time.Now()
	stdout, stderr, code := e.run(t, false, "completion", "names", "--nodes")
	if elapsed := time.Since(start); code != 0 || stdout != "" || stderr != "" || elapsed > 3*time.Second {
		t.Errorf("walt completion names, silent server: exit %d, stdout %q, stderr %q after %s; want exit 0, nothing, about 1s",
			code, stdout, stderr, elapsed)
	}
}

// TestCompletionScripts: each script is valid for its shell (checked with
// the shell's own syntax check when installed) and calls walt back.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	syntax := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}
	for shell, check := range syntax {
		stdout, _, code := runOffline(t, "completion", shell)
		if code != 0 || !strings.Contains(stdout, "walt completion words -- ") {
			t.Errorf("walt completion %s: exit %d, script:\n%s", shell, code, stdout)
			continue
		}
		if _, err := exec.LookPath(check[0]); err != nil {
			t.Logf("%s not installed: syntax not checked", shell)
			continue
		}
		path := filepath.Join(t.TempDir(), "walt."+shell)
		if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.CommandContext(t.Context(), check[0], append(check[1:], path)...).CombinedOutput(); err != nil {
			t.Errorf("%s syntax check of walt completion %s: %v\n%s", shell, shell, err, out)
		}
	}
	if _, stderr, code := runOffline(t, "completion", "tcsh"); code != cli.ExitUsage || !strings.Contains(stderr, `unknown command "tcsh"`) {
		t.Errorf("walt completion tcsh: exit %d, stderr %q; want exit 2", code, stderr)
	}
}
