package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/agent"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/testutil"
	"golang.org/x/sys/unix"
)

// binary is walt-node built as users get it: static, without cgo.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "walt-node-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "walt-node")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("walt-node has a dynamic loader (PT_INTERP): not a static binary")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("walt-node needs shared libraries %v", libs)
	}
}

// TestImportGraph keeps the node agent small: it must not pull in the
// server, the store or any SQL driver.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"database/sql", "/internal/store", "/internal/server", "/internal/reboot", "modernc.org/", "github.com/jackc/", "gosnmp"} {
			if strings.Contains(dep, banned) {
				t.Errorf("walt-node imports %s", dep)
			}
		}
	}
}

// TestExitRebootStatus runs the real binary under the exit action: after
// acknowledging REBOOT it exits with status 10 for its supervisor.
func TestExitRebootStatus(t *testing.T) {
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(binary, "--listen", addr, "--root", t.TempDir(), "--reboot-action", "exit", "--boot-mode", "network", "--virtual", "false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	rebootWhenUp(t, addr)
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != agent.ExitRebooted {
		t.Fatalf("walt-node ended with %v, want exit status %d; stderr:\n%s", err, agent.ExitRebooted, stderr.String())
	}
}

// rebootWhenUp sends REBOOT as soon as the agent at addr listens, and
// wants OK.
func rebootWhenUp(t *testing.T, addr string, args ...string) {
	t.Helper()
	rq := &netservice.Requester{}
	var line string
	var err error
	testutil.Eventually(t, 10*time.Second, "walt-node to listen on "+addr, func() bool {
		line, err = rq.Do(t.Context(), addr, netservice.Request{Verb: netservice.VerbReboot, Args: args})
		return !errors.Is(err, netservice.ErrRefused)
	})
	if err != nil || line != "OK" {
		t.Fatalf("REBOOT = %q, %v", line, err)
	}
}

func freeLoopbackAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runConfigured runs walt-node in process with an already ended context:
// it validates its settings, starts, logs them and stops at once.
func runConfigured(t *testing.T, args []string, env map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stderr testutil.Buffer // with --server, report may still log after run returns
	args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	code := run(ctx, args, func(k string) string { return env[k] }, io.Discard, &stderr)
	return code, stderr.String()
}

// --version prints the name and version on stdout and starts nothing; it
// is a command-line switch, not a setting of the file or the environment.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, func(string) string { return "" }, &stdout, &stderr); code != exitOK || !strings.HasPrefix(stdout.String(), "walt-node ") {
		t.Errorf("walt-node --version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	conf := filepath.Join(t.TempDir(), "node.conf")
	if err := os.WriteFile(conf, []byte("version = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, log := runConfigured(t, []string{"--config", conf}, nil); code != exitUsage || !strings.Contains(log, "unknown setting") {
		t.Errorf("version in the settings file: exit %d, log %q; want a usage error naming the unknown setting", code, log)
	}
}

func TestSettingsPrecedence(t *testing.T) {
	root := t.TempDir()
	conf := filepath.Join(t.TempDir(), "node.conf")
	os.WriteFile(conf, []byte("# a node image\nreboot-action = system\nboot-mode = hybrid-volatile\nvirtual = false\n"), 0o644)

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"file", []string{"--config", conf, "--root", root}, nil,
			[]string{"reboot_action=system", "boot_mode=hybrid-volatile", "virtual=false"}},
		{"env beats file", []string{"--root", root}, map[string]string{"WALT_CONFIG": conf, "WALT_REBOOT_ACTION": "exit", "WALT_BOOT_MODE": "network"},
			[]string{"reboot_action=exit", "boot_mode=network", "virtual=false"}},
		{"flag beats env", []string{"--root", root, "--reboot-action", "log:/dev/null", "--virtual", "true"}, map[string]string{"WALT_REBOOT_ACTION": "exit"},
			[]string{"reboot_action=log:/dev/null", "virtual=true"}},
		{"nothing says system", []string{"--root", root, "--boot-mode", "network"}, nil,
			[]string{"reboot_action=none"}},
	}
	for _, tt := range tests {
		code, out := runConfigured(t, tt.args, tt.env)
		if code != exitOK {
			t.Errorf("%s: exit status %d, output:\n%s", tt.name, code, out)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, out)
			}
		}
	}
}

func TestBadSettings(t *testing.T) {
	dir := t.TempDir()
	badConf := filepath.Join(dir, "bad.conf")
	os.WriteFile(badConf, []byte("reboot-action = exit\nreboot_speed = fast\n"), 0o644)
	hugeConf := filepath.Join(dir, "huge.conf")
	os.WriteFile(hugeConf, []byte(strings.Repeat("# padding\n", 7000)), 0o644)
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--boot-mode", "turbo"}, nil, `invalid boot mode "turbo"`},
		{[]string{"--virtual", "maybe"}, nil, `invalid value "maybe" for --virtual`},
		{[]string{"--reboot-action", "halt"}, nil, `invalid reboot action "halt"`},
		{[]string{"--root", filepath.Join(dir, "absent")}, nil, "not a directory"},
		{[]string{"--config", badConf}, nil, badConf + `:2: unknown setting "reboot_speed"`},
		{[]string{"--config", filepath.Join(dir, "absent.conf")}, nil, "absent.conf: no such file"},
		{nil, map[string]string{"WALT_HOOK_TIMEOUT": "soon"}, `WALT_HOOK_TIMEOUT="soon"`},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{[]string{"--hook-timeout", "-1s"}, nil, "must be positive"},
		{[]string{"--config", hugeConf}, nil, hugeConf + ": over 65536 bytes"},
		{[]string{"--server-ip", "10.0.0.1,server"}, nil, `invalid address "server" in --server-ip`},
		{[]string{"--ip", "10.0.2"}, nil, `invalid address "10.0.2" for --ip`},
		{nil, map[string]string{"WALT_LOG_FORMAT": "xml"}, `invalid log format "xml": want text or json`},
		{[]string{"--max-conns-per-peer", "0"}, nil, "--max-conns and --max-conns-per-peer must be positive (got 512 and 0)"},
	}
	for _, tt := range tests {
		code, out := runConfigured(t, tt.args, tt.env)
		if code != exitUsage || !strings.Contains(out, tt.want) {
			t.Errorf("walt-node %v (env %v) = status %d, output %q; want status 2 and %q", tt.args, tt.env, code, out, tt.want)
		}
	}
}

// --log-format json (also log-format = json in node.conf, or
// WALT_LOG_FORMAT) logs one JSON object a line; text stays the default.
func TestLogFormat(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "node.conf")
	if err := os.WriteFile(conf, []byte("log-format = json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--root", t.TempDir(), "--boot-mode", "network", "--virtual", "false"}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		json bool
	}{
		{"default", nil, nil, false},
		{"flag", []string{"--log-format", "json"}, nil, true},
		{"file", []string{"--config", conf}, nil, true},
		{"environment over file", []string{"--config", conf}, map[string]string{"WALT_LOG_FORMAT": "text"}, false},
	} {
		code, out := runConfigured(t, append(base, tt.args...), tt.env)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != exitOK || len(lines) == 0 || !strings.Contains(out, "walt-node serving") {
			t.Fatalf("%s: exit %d, output:\n%s", tt.name, code, out)
		}
		for _, l := range lines {
			var m map[string]any
			isJSON := json.Unmarshal([]byte(l), &m) == nil
			if isJSON != tt.json {
				t.Errorf("%s: line %q: JSON %v, want %v", tt.name, l, isJSON, tt.json)
			}
			if isJSON && (m["msg"] == nil || m["level"] == nil || m["time"] == nil) {
				t.Errorf("%s: JSON line without time, level or msg: %q", tt.name, l)
			}
		}
	}
}

// TestServerAddrs checks where the addresses that keep connection slots
// come from: --server-ip, the host of --server, the image's walt-env.
func TestServerAddrs(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "walt-env"), []byte("export walt_server_ip='192.168.152.1'\nexport walt_boot_mode=network\n"), 0o644)
	code, out := runConfigured(t, []string{"--root", root, "--server-ip", "10.0.0.1, 10.0.0.1", "--server", "http://127.0.0.9:1", "--virtual", "false"}, nil)
	if want := `servers="[10.0.0.1 127.0.0.9 192.168.152.1]"`; code != exitOK || !strings.Contains(out, want) {
		t.Errorf("walt-node = status %d, output:\n%s\nwant %s", code, out, want)
	}
}

// TestServesAfterFileLimit lowers a running walt-node's file limit until
// accept fails with EMFILE (too many open files), then ends the flood: the
// agent must have logged the failure, still run, and answer PING again.
func TestServesAfterFileLimit(t *testing.T) {
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(binary, "--listen", addr, "--root", t.TempDir(), "--boot-mode", "network", "--virtual", "false")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	ping := func(local string) (string, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "MODE single\nPING\n")
		return bufio.NewReader(c).ReadString('\n')
	}
	answers := func() error {
		select {
		case <-exited:
			t.Fatalf("walt-node exited (%v):\n%s", waitErr, &stderr)
		default:
		}
		if line, err := ping("127.0.0.1"); line != "OK\n" {
			return fmt.Errorf("PING = %q, %v; walt-node's stderr:\n%s", line, err, &stderr)
		}
		return nil
	}
	testutil.EventuallyNil(t, 10*time.Second, "walt-node to answer PING", answers)
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 24, Max: 24}, nil); err != nil {
		t.Skip("cannot lower the agent's file limit:", err)
	}
	// Ten peers of eight idle connections each: under the per-peer and
	// total bounds, over the file limit.
	var flood []net.Conn
	for i := range 80 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i/8))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "MODE multi\n")
		flood = append(flood, c)
	}
	// (walt-node used to exit on EMFILE once its idle connections timed out.)
	testutil.EventuallyNil(t, 30*time.Second, "accept to fail with EMFILE", func() error {
		select {
		case <-exited:
			t.Fatalf("walt-node exited (%v) on EMFILE:\n%s", waitErr, &stderr)
		default:
		}
		if !strings.Contains(stderr.String(), "accept failed") {
			return fmt.Errorf("walt-node's stderr:\n%s", &stderr)
		}
		return nil
	})
	if !strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("accept failed, but not with EMFILE:\n%s", &stderr)
	}
	for _, c := range flood {
		c.Close()
	}
	testutil.EventuallyNil(t, 20*time.Second, "walt-node to answer PING again after EMFILE", answers)
}

// TestIdentityIP: --ip replaces the address of the interface in the
// report (a node behind NAT), --mac the MAC.
func TestIdentityIP(t *testing.T) {
	o := &options{ip: "127.65.3.1", mac: "52:54:00:65:00:02", server: "http://127.0.0.1:1"}
	ip, mac, err := o.identity("0.0.0.0")
	if err != nil || ip != "127.65.3.1" || mac != "52:54:00:65:00:02" {
		t.Errorf("identity = %q, %q, %v; want the --ip and --mac given", ip, mac, err)
	}
}
