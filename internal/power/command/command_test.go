package command_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power/command"
	"github.com/walt-testbed/walt/internal/testutil"
)

func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func parse(t *testing.T, v string) command.Template {
	t.Helper()
	tpl, err := command.Parse(v)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// calls reads record.sh's log: one []string of arguments per call, and
// the time of each.
func calls(t *testing.T, log string) ([][]string, []time.Time) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var args [][]string
	var at []time.Time
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ns, rest, _ := strings.Cut(line, " ")
		n, _ := strconv.ParseInt(ns, 10, 64)
		at = append(at, time.Unix(0, n))
		args = append(args, strings.Split(strings.TrimSuffix(strings.TrimPrefix(rest, "<"), ">"), "> <"))
	}
	return args, at
}

// TestCycle: off, the off time, on; the placeholders become the node's
// values, a word with spaces stays one argument, shell syntax in a value
// is an argument like any other; the output is logged.
func TestCycle(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "calls")
	tpl := parse(t, script(t, "record.sh")+` `+log+` --outlet={name} {action} {mac} "ip is {ip}"`)
	logs := &testutil.Buffer{}
	d := command.New(slog.New(slog.NewTextHandler(logs, nil)))
	n := command.Node{Name: "pc1", MAC: "52:54:00:00:00:01", IP: "$(touch /tmp/pwned); 10.0.0.1"}
	cut, err := d.Cycle(t.Context(), command.Target{Node: n, Template: tpl, Timeout: 5 * time.Second, OffTime: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if cut.Verified || cut.Detail == "" {
		t.Errorf("cut = %+v, want not verified, with the reason", cut)
	}
	args, at := calls(t, log)
	want := [][]string{
		{"--outlet=pc1", "off", "52:54:00:00:00:01", "ip is $(touch /tmp/pwned); 10.0.0.1"},
		{"--outlet=pc1", "on", "52:54:00:00:00:01", "ip is $(touch /tmp/pwned); 10.0.0.1"},
	}
	if len(args) != 2 || strings.Join(args[0], "|") != strings.Join(want[0], "|") || strings.Join(args[1], "|") != strings.Join(want[1], "|") {
		t.Fatalf("calls = %q, want %q", args, want)
	}
	if gap := at[1].Sub(at[0]); gap < 300*time.Millisecond {
		t.Errorf("on %s after off, want at least the off time 300ms", gap)
	}
	if !strings.Contains(logs.String(), "switched outlet: --outlet=pc1 off") {
		t.Errorf("output not logged:\n%s", logs)
	}
}

// TestFailure: a non-zero exit fails the cycle, naming the command, the
// node, the exit status and the command's last line; on is not run.
func TestFailure(t *testing.T) {
	t.Parallel()
	tpl := parse(t, script(t, "fail.sh")+" {action}")
	_, err := command.New(nil).Cycle(t.Context(), command.Target{Node: command.Node{Name: "pc2"}, Template: tpl, Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("a failing command succeeded")
	}
	for _, want := range []string{"fail.sh", "pc2", "action off", "exit status 3", "outlet 7 unknown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to hold %q", err, want)
		}
	}
}

// TestTimeout: a command still running after power.timeout is killed
// with the processes it started, and the error says so.
func TestTimeout(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child")
	tpl := parse(t, script(t, "hang.sh")+" "+pidFile)
	start := time.Now()
	err := command.New(nil).Run(t.Context(), command.Target{Node: command.Node{Name: "pc3"}, Template: tpl, Timeout: 300 * time.Millisecond}, command.ActionOff)
	if err == nil || !strings.Contains(err.Error(), "killed after power.timeout 300ms") {
		t.Fatalf("err = %v, want killed after power.timeout", err)
	}
	if e := time.Since(start); e > 3*time.Second {
		t.Errorf("returned after %s, want soon after the timeout", e)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	testutil.Eventually(t, 5*time.Second, "the command's child killed", func() bool {
		// PID 1 here may not reap: a zombie counts as dead.
		st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		return err != nil || strings.Contains(string(st), ") Z ") || errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}

// TestParse: what Parse refuses, with the culprit named.
func TestParse(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"":                                     "1 to 1024 bytes",
		"relay.sh on":                          "absolute path",
		"/bin/{name}":                          "absolute path",
		`/bin/pdu "outlet`:                     "unterminated",
		"/bin/pdu {host}":                      "unknown placeholder",
		"/bin/pdu\t{name}":                     "control character",
		"/bin/pdu " + strings.Repeat("a ", 64): "words",
	} {
		_, err := command.Parse(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", v, err, want)
		}
	}
	tpl := parse(t, `/usr/bin/pdu  -o "a \"b\" \\c"  {name}`)
	if got := tpl.Argv(command.Node{Name: "n"}, "on"); strings.Join(got, "|") != `/usr/bin/pdu|-o|a "b" \c|n` {
		t.Errorf("Argv = %q", got)
	}
}
