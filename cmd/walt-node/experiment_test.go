package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/experiment"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vocab"
)

// walt runs walt-node in process with no environment, and returns its
// exit status, stdout and stderr.
func walt(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestContextAndDone runs walt-node against a real server: once its boot
// report is accepted, the boot context is in the context directory and
// "walt-node context" prints it, as JSON and as shell assignments that sh
// sources; "walt-node done" reports this boot done with its status and
// metrics, prints the server's answer, and a stale boot is refused with a
// non-zero exit.
func TestContextAndDone(t *testing.T) {
	env := servertest.New(t, nil, nil)
	var mu sync.Mutex
	var heard []boot.Done
	env.Server.SetDoneReplier(func(_ context.Context, mac string, d boot.Done) (api.DoneReply, error) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, d)
		return api.DoneReply{Campaign: "c7", Iteration: 3}, nil
	})
	dir := filepath.Join(t.TempDir(), "run", "walt")
	const mac = "52:54:00:99:00:01"
	common := []string{"--server", env.URL, "--mac", mac, "--context-dir", dir, "--reboot-action", "exit"}

	if code, _, errOut := walt(t, append([]string{"context"}, common...)...); code != exitError || !strings.Contains(errOut, "no boot context yet in "+filepath.Join(dir, experiment.ContextJSON)) {
		t.Errorf("context before any report: exit %d, %q", code, errOut)
	}
	if code, _, errOut := walt(t, append([]string{"done"}, common...)...); code != exitError || !strings.Contains(errOut, "find this boot's id") {
		t.Errorf("done before any report: exit %d, %q", code, errOut)
	}

	// An earlier boot's context is not this boot's.
	if err := experiment.WriteContext(dir, api.BootContext{BootID: "earlier-boot", Cause: api.BootCauseUser}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	agentDone := make(chan int)
	var agentLog testutil.Buffer
	go func() {
		agentDone <- run(ctx, append([]string{"--listen", "127.0.0.1:0", "--root", t.TempDir(), "--boot-mode", "network", "--virtual", "false", "--name", "exp1"}, common...),
			func(string) string { return "" }, &agentLog, &agentLog)
	}()
	t.Cleanup(func() {
		cancel()
		<-agentDone
	})
	var bc api.BootContext
	testutil.EventuallyNil(t, 20*time.Second, "this boot's context file", func() error {
		var err error
		if bc, err = experiment.ReadContext(dir); err == nil && bc.BootID == "earlier-boot" {
			err = errors.New("still the earlier boot's context")
		}
		return err
	})
	if bc.BootID == "" || bc.Cause != api.BootCauseUnknown {
		t.Fatalf("boot context = %+v; want the first boot's, cause unknown", bc)
	}

	code, out, errOut := walt(t, append([]string{"context", "--json"}, common...)...)
	var printed api.BootContext
	if code != exitOK || json.Unmarshal([]byte(out), &printed) != nil || printed.BootID != bc.BootID {
		t.Fatalf("context --json: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = walt(t, append([]string{"context", "--shell"}, common...)...)
	sourced, err := exec.Command("sh", "-c", "set -eu; eval \"$1\"; printf '%s|%s' \"$WALT_BOOT_ID\" \"$WALT_BOOT_CAUSE\"", "sh", out).CombinedOutput()
	if code != exitOK || err != nil || string(sourced) != bc.BootID+"|"+api.BootCauseUnknown {
		t.Fatalf("context --shell: exit %d, %q; sourced %q, %v", code, out, sourced, err)
	}
	if code, _, errOut := walt(t, append([]string{"context", "--json", "--shell"}, common...)...); code != exitUsage || !strings.Contains(errOut, "not both") {
		t.Errorf("context --json --shell: exit %d, %q", code, errOut)
	}

	code, out, errOut = walt(t, append([]string{"done", "--status", "7", "--metric", "boot_s=12.5", "--metric", "runs=3"}, common...)...)
	if code != exitOK || !strings.Contains(out, "boot "+bc.BootID+" done, status 7, 2 metrics") || !strings.Contains(out, "campaign c7 iteration 3 ended") {
		t.Fatalf("done: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	mu.Lock()
	got := heard
	mu.Unlock()
	if len(got) != 1 || got[0].BootID != bc.BootID || got[0].Status != 7 || got[0].Metrics["boot_s"] != 12.5 || got[0].Metrics["runs"] != 3 {
		t.Fatalf("server heard %+v", got)
	}

	// A context left by another boot: the server refuses, walt-node says so.
	stale := bc
	stale.BootID = "0f0f0f0f-0000-4000-8000-000000000000"
	if err := experiment.WriteContext(dir, stale); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = walt(t, append([]string{"done"}, common...)...)
	if code != exitError || !strings.Contains(errOut, "the server refused the done report of boot "+stale.BootID) || !strings.Contains(errOut, "is not its current boot "+bc.BootID) {
		t.Errorf("done for a stale boot: exit %d, %q", code, errOut)
	}
}

// TestDoneRefusedLocally: walt-node done checks its arguments as the
// server would before sending anything (the server here does not exist).
func TestDoneRefusedLocally(t *testing.T) {
	dir := t.TempDir()
	if err := experiment.WriteContext(dir, api.BootContext{BootID: "b1", Cause: api.BootCauseUnknown}); err != nil {
		t.Fatal(err)
	}
	common := []string{"--server", "http://127.0.0.1:1", "--mac", "52:54:00:99:00:02", "--context-dir", dir}
	many := []string{"done"}
	for i := range api.MaxDoneMetrics + 1 {
		many = append(many, "--metric", "m"+strings.Repeat("x", i)+"=1")
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"done", "--status", "256"}, exitUsage, "status: 256 is out of range (0 to 255"},
		{[]string{"done", "--status", "-1"}, exitUsage, "status: -1 is out of range"},
		{[]string{"done", "--metric", "a/b=1"}, exitUsage, `key "a/b": byte '/' at 1 not allowed`},
		{[]string{"done", "--metric", "a=1", "--metric", "a=2"}, exitUsage, "metric a given twice"},
		{[]string{"done", "--metric", "a=NaN"}, exitUsage, "not a finite number"},
		{[]string{"done", "--metric", "a"}, exitUsage, "want KEY=VALUE"},
		{many, exitUsage, "more than 32 metrics"},
		{[]string{"done", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"done", "--retry-for", "-1s"}, exitUsage, "--retry-for: must be 0 or more (got -1s)"},
		{[]string{"done", "--retry-for", "0"}, exitError, "tell http://127.0.0.1:1 that boot b1 is done"},
	} {
		code, _, errOut := walt(t, append(tt.args, common...)...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("walt-node %q: exit %d, %q; want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	if code, _, errOut := walt(t, "done", "--context-dir", dir, "--mac", "52:54:00:99:00:02"); code != exitUsage || !strings.Contains(errOut, "no server to tell") {
		t.Errorf("done without a server: exit %d, %q", code, errOut)
	}
	// A done report's arguments are no settings.
	conf := filepath.Join(t.TempDir(), "node.conf")
	os.WriteFile(conf, []byte("status = 3\n"), 0o644)
	if code, _, errOut := walt(t, append([]string{"done", "--config", conf}, common...)...); code != exitUsage || !strings.Contains(errOut, `unknown setting "status"`) {
		t.Errorf("status in the settings file: exit %d, %q", code, errOut)
	}
}

// TestDoneRetries runs walt-node done against a server that is down at
// first, then up but unable to store the report for a moment (503), then
// able: walt-node tries again until the report is accepted, and exits 0
// with the server's answer. A refusal (409, a boot that is no longer the
// node's) is not tried again: one request, exit 1.
func TestDoneRetries(t *testing.T) {
	env := servertest.New(t, nil, nil)
	var mu sync.Mutex
	requests, unavailable := 0, 1
	env.Server.SetDoneReplier(func(_ context.Context, mac string, d boot.Done) (api.DoneReply, error) {
		mu.Lock()
		defer mu.Unlock()
		if unavailable > 0 {
			unavailable--
			return api.DoneReply{}, fmt.Errorf("%w: the row is not stored yet", vocab.ErrUnavailable)
		}
		return api.DoneReply{Campaign: "c9", Iteration: 2}, nil
	})
	const mac = "52:54:00:99:00:04"
	if _, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: "127.0.0.1", Name: "retry1", Model: "pc", BootMode: "network", BootID: "boot-r1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := experiment.WriteContext(dir, api.BootContext{BootID: "boot-r1", Cause: api.BootCauseUnknown}); err != nil {
		t.Fatal(err)
	}
	// The address walt-node is told of, where nothing listens yet: on
	// an IP of its own, so that no other test's connection to
	// 127.0.0.1 can take its port as a source port meanwhile.
	ln, err := net.Listen("tcp", "127.0.94.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/node-done") {
			mu.Lock()
			requests++
			mu.Unlock()
		}
		env.Server.Handler().ServeHTTP(w, r)
	})
	common := []string{"--server", "http://" + addr, "--mac", mac, "--context-dir", dir, "--reboot-action", "exit"}

	var stdout, stderr testutil.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(t.Context(), append([]string{"done", "--status", "5", "--retry-for", "1m"}, common...), func(string) string { return "" }, &stdout, &stderr)
	}()
	testutil.Eventually(t, 20*time.Second, "a first try that cannot reach the server", func() bool {
		return strings.Contains(stderr.String(), "try 1: ")
	})
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	hs := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	var code int
	select {
	case code = <-exited:
	case <-time.After(time.Minute):
		t.Fatalf("walt-node done still running after a minute:\n%s", stderr.String())
	}
	mu.Lock()
	n := requests
	mu.Unlock()
	if code != exitOK || !strings.Contains(stdout.String(), "boot boot-r1 done, status 5") || !strings.Contains(stdout.String(), "campaign c9 iteration 2 ended") {
		t.Fatalf("done while the server restarts: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "cannot reach walt server") || !strings.Contains(stderr.String(), "the row is not stored yet; trying again") || n != 2 {
		t.Errorf("stderr %q after %d requests; want a connection failure, then one unavailable answer, then the accepted one", stderr.String(), n)
	}

	// A refusal ends it at once.
	if err := experiment.WriteContext(dir, api.BootContext{BootID: "boot-r0", Cause: api.BootCauseUnknown}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := walt(t, append([]string{"done", "--retry-for", "1m"}, common...)...)
	mu.Lock()
	n = requests - n
	mu.Unlock()
	if code != exitError || !strings.Contains(errOut, "the server refused the done report of boot boot-r0") || strings.Contains(errOut, "trying again") || n != 1 {
		t.Errorf("done for a stale boot: exit %d after %d requests, %q; want exit 1 after one request, no retry", code, n, errOut)
	}
}

// TestRealNodeBootReport: on a real node, the report and walt-node done
// take the kernel's boot id, and the report says node method kexec when
// the kernel command line holds the kexec hook's mark.
func TestRealNodeBootReport(t *testing.T) {
	dir := t.TempDir()
	oldID, oldCmdline := kernelBootIDFile, cmdlineFile
	t.Cleanup(func() { kernelBootIDFile, cmdlineFile = oldID, oldCmdline })
	kernelBootIDFile, cmdlineFile = filepath.Join(dir, "boot_id"), filepath.Join(dir, "cmdline")
	os.WriteFile(kernelBootIDFile, []byte("6a1d2b3c-0000-4000-8000-000000000001\n"), 0o644)
	o := options{name: "n1"}
	for cmdline, want := range map[string]string{"root=/dev/nfs ro\n": "", "root=/dev/nfs ro walt.boot=kexec\n": "kexec"} {
		os.WriteFile(cmdlineFile, []byte(cmdline), 0o644)
		rep, err := o.bootReport("10.0.0.5", "52:54:00:99:00:03", "network", false, true)
		if err != nil || rep.BootID != "6a1d2b3c-0000-4000-8000-000000000001" || rep.NodeMethod != want {
			t.Errorf("cmdline %q: report %+v, %v; want node method %q", cmdline, rep, err, want)
		}
		// A simulated agent (not rebooting the machine) says nothing of it.
		if rep, _ := o.bootReport("10.0.0.5", "52:54:00:99:00:03", "network", false, false); rep.NodeMethod != "" || rep.BootID == "6a1d2b3c-0000-4000-8000-000000000001" {
			t.Errorf("simulated agent's report %+v", rep)
		}
	}
	if id, err := currentBootID(true, filepath.Join(dir, "absent")); err != nil || id != "6a1d2b3c-0000-4000-8000-000000000001" {
		t.Errorf("done's boot id on a real node = %q, %v", id, err)
	}
}

// FuzzMetricFlag: what walt-node done --metric accepts, the server's rules
// accept too.
func FuzzMetricFlag(f *testing.F) {
	for _, s := range []string{"boot_s=12.5", "a=1e308", "a=-0", "k=0x10", "a b=1", "=", "k=1=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := experiment.ParseMetrics([]string{s})
		if err != nil {
			return
		}
		if err := experiment.CheckDone(api.DoneReport{BootID: "b", Metrics: m}); err != nil {
			t.Fatalf("--metric %q parsed as %v, which the server refuses: %v", s, m, err)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("--metric %q parsed as %v, which cannot be sent: %v", s, m, err)
		}
	})
}
