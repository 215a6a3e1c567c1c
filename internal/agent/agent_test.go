package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/testutil"
)

// image builds an image root holding the given files under bin/, each
// with its shell script body and mode.
type hookFile struct {
	path   string // inside the image, e.g. /bin/walt-reboot
	script string // body after the #! line
	mode   os.FileMode
}

func makeImage(t *testing.T, files ...hookFile) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+f.script+"\n"), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// startAgent serves an agent with cfg on a loopback port of its own and
// returns its address and journal file (log action).
func startAgent(t *testing.T, cfg Config) (addr, journal string) {
	t.Helper()
	if cfg.Action.Kind == ActionNone && cfg.Action.LogFile == "" {
		journal = filepath.Join(t.TempDir(), "journal")
		cfg.Action = Action{Kind: ActionLog, LogFile: journal}
	}
	return startAgentLogging(t, cfg, io.Discard), journal
}

// startAgentLogging serves an agent with cfg on a loopback port of its own,
// copying its log to logs, and returns its address.
func startAgentLogging(t *testing.T, cfg Config, logs io.Writer) string {
	t.Helper()
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), nil))
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

func reboot(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	rq := &netservice.Requester{ConnectTimeout: 5 * time.Second, ReplyTimeout: 5 * time.Second}
	return rq.Do(t.Context(), addr, netservice.Request{Verb: netservice.VerbReboot, Args: args})
}

// journalLines waits until the journal's last line is a plain procedure
// (force or orderly), which ends every reboot, and returns its lines.
func journalLines(t *testing.T, journal string) []string {
	t.Helper()
	var lines []string
	testutil.EventuallyNil(t, 20*time.Second, "the journal to end with force or orderly", func() error {
		b, _ := os.ReadFile(journal)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if last := lines[len(lines)-1]; last != "force" && last != "orderly" {
			return fmt.Errorf("journal %q", b)
		}
		return nil
	})
	return lines
}

const (
	hookOK      = "exit 0"
	hookDecline = "exit 3"
	hookFail    = "exit 1"
	hookSlow    = "sleep 30"
)

func TestRebootProcedures(t *testing.T) {
	t.Parallel()
	exe, noexe := os.FileMode(0o755), os.FileMode(0o644)
	tests := []struct {
		name    string
		mode    BootMode
		virtual bool
		files   []hookFile
		args    []string
		wantKO  string
		want    []string
	}{
		// Network boot mode.
		{name: "network, no hook", mode: Network, want: []string{"force"}},
		{name: "network, hook", mode: Network, files: []hookFile{{NetworkHook, hookOK, exe}},
			want: []string{"hook /bin/walt-network-reboot", "force"}},
		{name: "network, legacy hook", mode: Network, files: []hookFile{{LegacyNetworkHook, hookOK, exe}},
			want: []string{"hook /bin/walt-reboot", "force"}},
		{name: "network, new hook preferred", mode: Network, files: []hookFile{{NetworkHook, hookOK, exe}, {LegacyNetworkHook, hookOK, exe}},
			want: []string{"hook /bin/walt-network-reboot", "force"}},
		{name: "network, hook not executable", mode: Network, files: []hookFile{{NetworkHook, hookOK, noexe}, {LegacyNetworkHook, hookOK, exe}},
			wantKO: "/bin/walt-network-reboot is not executable on image"},
		{name: "network, legacy hook not executable", mode: Network, files: []hookFile{{LegacyNetworkHook, hookOK, noexe}},
			wantKO: "/bin/walt-reboot is not executable on image"},
		{name: "network, hybrid hook ignored", mode: Network, files: []hookFile{{HybridHook, hookOK, exe}}, want: []string{"force"}},
		{name: "network, declining hook", mode: Network, files: []hookFile{{NetworkHook, hookDecline, exe}},
			args: []string{"kexec.allow=false"}, want: []string{"hook /bin/walt-network-reboot kexec.allow=false", "force"}},
		{name: "network, failing hook", mode: Network, files: []hookFile{{NetworkHook, hookFail, exe}},
			want: []string{"hook /bin/walt-network-reboot", "force"}},
		{name: "network, hook over its deadline", mode: Network, files: []hookFile{{NetworkHook, hookSlow, exe}},
			want: []string{"hook /bin/walt-network-reboot", "force"}},
		{name: "network, virtual ignores hooks", mode: Network, virtual: true, files: []hookFile{{NetworkHook, hookOK, exe}},
			want: []string{"force"}},
		{name: "network, virtual ignores non-executable hook", mode: Network, virtual: true, files: []hookFile{{NetworkHook, hookOK, noexe}},
			want: []string{"force"}},
		// Hybrid boot modes.
		{name: "hybrid-volatile, no hook", mode: HybridVolatile, want: []string{"orderly"}},
		{name: "hybrid-persistent, no hook", mode: HybridPersistent, want: []string{"orderly"}},
		{name: "hybrid, network hooks ignored", mode: HybridVolatile, files: []hookFile{{NetworkHook, hookOK, exe}, {LegacyNetworkHook, hookOK, exe}},
			want: []string{"orderly"}},
		{name: "hybrid, hook returns", mode: HybridPersistent, files: []hookFile{{HybridHook, hookOK, exe}},
			want: []string{"hook /bin/walt-hybrid-reboot", "force"}},
		{name: "hybrid, hook not executable", mode: HybridVolatile, files: []hookFile{{HybridHook, hookOK, noexe}},
			wantKO: "/bin/walt-hybrid-reboot is not executable on image"},
		{name: "hybrid, declining hook", mode: HybridVolatile, files: []hookFile{{HybridHook, hookDecline, exe}},
			args: []string{"kexec.allow=false"}, want: []string{"hook /bin/walt-hybrid-reboot kexec.allow=false", "orderly"}},
		{name: "hybrid, failing hook", mode: HybridPersistent, files: []hookFile{{HybridHook, hookFail, exe}},
			want: []string{"hook /bin/walt-hybrid-reboot", "force"}},
		{name: "hybrid, virtual ignores hooks", mode: HybridPersistent, virtual: true, files: []hookFile{{HybridHook, hookOK, exe}},
			want: []string{"orderly"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := makeImage(t, tt.files...)
			addr, journal := startAgent(t, Config{Root: root, BootMode: tt.mode, Virtual: tt.virtual, HookTimeout: 300 * time.Millisecond})
			line, err := reboot(t, addr, tt.args...)
			if tt.wantKO != "" {
				if !errors.Is(err, netservice.ErrKO) || err.Error() != tt.wantKO {
					t.Fatalf("REBOOT = %q, %v; want KO %q", line, err, tt.wantKO)
				}
				if _, err := os.Stat(journal); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused REBOOT started a procedure (journal exists: %v)", err)
				}
				return
			}
			if err != nil || line != "OK" {
				t.Fatalf("REBOOT = %q, %v; want OK", line, err)
			}
			if diff := cmp.Diff(tt.want, journalLines(t, journal)); diff != "" {
				t.Errorf("procedure (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHookEnvironment sends, to an agent under the exit action, the REBOOT
// that used to reach a hook's environment verbatim: PATH, LD_PRELOAD, the
// agent's own walt_reboot_action and walt_root. The hook must see none of
// them, only kexec.allow under its own name.
func TestHookEnvironment(t *testing.T) {
	t.Parallel()
	cat, err1 := exec.LookPath("cat")
	mv, err2 := exec.LookPath("mv")
	if err1 != nil || err2 != nil {
		t.Skip(err1, err2)
	}
	out := filepath.Join(t.TempDir(), "env")
	// Absolute paths: the hook must work even if its PATH were taken over.
	// The shell drops variables whose names hold a dot from what it
	// exports, so the hook copies what it was given from /proc.
	root := makeImage(t, hookFile{NetworkHook, cat + ` /proc/$$/environ > "` + out + `.tmp"; ` + mv + ` "` + out + `.tmp" "` + out + `"; exit 3`, 0o755})
	var logs testutil.Buffer
	addr := startAgentLogging(t, Config{Root: root, BootMode: Network, Action: Action{Kind: ActionExit}}, &logs)
	attack := []string{"walt_reboot_action=system", "PATH=/tmp/evil", "walt_root=/tmp/evilroot", "LD_PRELOAD=/x.so", "kexec.allow=false"}
	if line, err := reboot(t, addr, attack...); err != nil || line != "OK" {
		t.Fatalf("REBOOT = %q, %v; want OK", line, err)
	}
	env := waitEnvFile(t, out)
	want := map[string]string{
		"PATH":                 os.Getenv("PATH"),
		"walt_reboot_action":   "exit",
		"walt_root":            root,
		"walt_boot_mode":       "network",
		"vnode_mode":           "0",
		"WALT_ARG_KEXEC_ALLOW": "false",
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("hook environment: %s = %q (set: %v), want %q", k, got, ok, v)
		}
	}
	for _, k := range []string{"LD_PRELOAD", "kexec.allow", "kexec_allow"} {
		if v, ok := env[k]; ok {
			t.Errorf("hook environment holds %s=%q, sent by a peer", k, v)
		}
	}
	if !strings.Contains(logs.String(), "ignored REBOOT arguments") || !strings.Contains(logs.String(), "LD_PRELOAD=/x.so") {
		t.Errorf("agent did not log the ignored arguments:\n%s", logs.String())
	}
}

// TestRebootArgValues checks that a known key with a bad value is ignored
// and logged, and that the last valid value of a repeated key wins.
func TestRebootArgValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		want    string // WALT_ARG_KEXEC_ALLOW, "" for unset
		ignored string
	}{
		{[]string{"kexec.allow=maybe"}, "", "kexec.allow=maybe"},
		{[]string{"kexec.allow=False"}, "", "kexec.allow=False"},
		{[]string{"kexec.allow=true", "kexec.allow=yes"}, "true", "kexec.allow=yes"},
		{[]string{"kexec.allow=false", "kexec.allow=true"}, "true", ""},
		{[]string{"kexec_allow=false"}, "", "kexec_allow=false"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "env")
			root := makeImage(t, hookFile{NetworkHook, `echo "${` + KexecAllowEnv + `-unset}" > "` + out + `.tmp"; mv "` + out + `.tmp" "` + out + `"; exit 3`, 0o755})
			var logs testutil.Buffer
			addr := startAgentLogging(t, Config{Root: root, BootMode: Network, Action: Action{Kind: ActionLog, LogFile: filepath.Join(t.TempDir(), "journal")}}, &logs)
			if line, err := reboot(t, addr, tt.args...); err != nil || line != "OK" {
				t.Fatalf("REBOOT = %q, %v; want OK", line, err)
			}
			got := strings.TrimSpace(string(waitFile(t, out)))
			want := tt.want
			if want == "" {
				want = "unset"
			}
			if got != want {
				t.Errorf("%s = %q, want %q", KexecAllowEnv, got, want)
			}
			if tt.ignored != "" && !strings.Contains(logs.String(), tt.ignored) {
				t.Errorf("agent log does not name the ignored %q:\n%s", tt.ignored, logs.String())
			}
		})
	}
}

func TestFilterRebootArgs(t *testing.T) {
	accepted, ignored, err := FilterRebootArgs([]string{"PATH=/x", "kexec.allow=true", "kexec.allow=maybe", "walt_root=/y"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"kexec.allow=true"}, accepted); diff != "" {
		t.Errorf("accepted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PATH=/x", "kexec.allow=maybe", "walt_root=/y"}, ignored); diff != "" {
		t.Errorf("ignored (-want +got):\n%s", diff)
	}
	got := buildHookEnv([]string{"PATH=/bin", "WALT_ARG_KEXEC_ALLOW=stale", "walt_root=/inherited", "HOME=/root"},
		accepted, []string{"walt_root=/img"})
	if diff := cmp.Diff([]string{"PATH=/bin", "HOME=/root", "WALT_ARG_KEXEC_ALLOW=true", "walt_root=/img"}, got); diff != "" {
		t.Errorf("buildHookEnv (-want +got):\n%s", diff)
	}
}

// waitFile waits for a file a hook writes (renamed into place whole).
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	var b []byte
	testutil.Eventually(t, 20*time.Second, "the hook to write "+path, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	})
	return b
}

// waitEnvFile reads a NUL-separated environment a hook copied from /proc.
func waitEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range strings.Split(string(waitFile(t, path)), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := env[k]; dup {
				t.Errorf("hook environment sets %s twice", k)
			}
			env[k] = v
		}
	}
	return env
}

// TestSecondRebootWhileUnderWay checks that a REBOOT received while a
// reboot is under way is acknowledged and starts nothing.
func TestSecondRebootWhileUnderWay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	root := makeImage(t, hookFile{NetworkHook, `touch "` + started + `"; while [ ! -e "` + release + `" ]; do sleep 0.01; done; exit 3`, 0o755})
	addr, journal := startAgent(t, Config{Root: root, BootMode: Network, HookTimeout: time.Minute})
	if line, err := reboot(t, addr); err != nil || line != "OK" {
		t.Fatalf("first REBOOT = %q, %v", line, err)
	}
	waitFile(t, started)
	if line, err := reboot(t, addr); err != nil || line != "OK" {
		t.Fatalf("second REBOOT = %q, %v; want OK", line, err)
	}
	os.WriteFile(release, nil, 0o644)
	if diff := cmp.Diff([]string{"hook /bin/walt-network-reboot", "force"}, journalLines(t, journal)); diff != "" {
		t.Errorf("procedure (-want +got):\n%s", diff)
	}
}

func TestRebootRefusals(t *testing.T) {
	t.Parallel()
	addr, _ := startAgent(t, Config{Root: makeImage(t), BootMode: Network, Action: Action{Kind: ActionNone, LogFile: "-"}})
	if _, err := reboot(t, addr); !errors.Is(err, netservice.ErrKO) || !strings.Contains(err.Error(), "no reboot action configured") {
		t.Errorf("REBOOT without an action = %v, want KO naming the missing action", err)
	}
	addr, journal := startAgent(t, Config{Root: makeImage(t), BootMode: Network})
	if _, err := reboot(t, addr, "notakeyvalue"); !errors.Is(err, netservice.ErrKO) || err.Error() != `invalid REBOOT argument "notakeyvalue": want key=value` {
		t.Errorf("REBOOT with a bad argument = %v", err)
	}
	if _, err := os.Stat(journal); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused REBOOT started a procedure")
	}
}

func TestExitAction(t *testing.T) {
	t.Parallel()
	a, err := New(Config{Root: makeImage(t), BootMode: Network, Action: Action{Kind: ActionExit}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(t.Context(), ln) }()
	if line, err := reboot(t, ln.Addr().String()); err != nil || line != "OK" {
		t.Fatalf("REBOOT = %q, %v", line, err)
	}
	if err := <-done; !errors.Is(err, ErrRebooted) {
		t.Fatalf("Serve() = %v, want ErrRebooted", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("agent still listening after its exit reboot")
	}
}

func TestBlink(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "blink")
	tests := []struct {
		name   string
		files  []hookFile
		wantKO string
	}{
		{name: "absent", wantKO: "/bin/blink unavailable or not executable on image"},
		{name: "not executable", files: []hookFile{{"/bin/blink", "exit 0", 0o644}}, wantKO: "/bin/blink unavailable or not executable on image"},
		{name: "fails", files: []hookFile{{"/bin/blink", "exit 1", 0o755}}, wantKO: "/bin/blink returned a non-zero error code"},
		{name: "works", files: []hookFile{{"/bin/blink", `echo "$1" > "` + out + `"`, 0o755}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := startAgent(t, Config{Root: makeImage(t, tt.files...), BootMode: Network})
			rq := &netservice.Requester{}
			_, err := rq.Do(t.Context(), addr, netservice.Request{Verb: netservice.VerbBlink, Args: []string{"1"}})
			if tt.wantKO != "" {
				if err == nil || err.Error() != tt.wantKO {
					t.Errorf("BLINK 1 = %v, want KO %q", err, tt.wantKO)
				}
				return
			}
			if err != nil {
				t.Fatalf("BLINK 1 = %v", err)
			}
			if b, _ := os.ReadFile(out); string(b) != "1\n" {
				t.Errorf("/bin/blink got argument %q, want 1", b)
			}
		})
	}
}

func TestParseAction(t *testing.T) {
	for in, want := range map[string]Action{
		"":             {Kind: ActionNone},
		"system":       {Kind: ActionSystem},
		"exit":         {Kind: ActionExit},
		"log:/tmp/x":   {Kind: ActionLog, LogFile: "/tmp/x"},
		"log:rel/path": {Kind: ActionLog, LogFile: "rel/path"},
	} {
		got, err := ParseAction(in)
		if err != nil || got != want {
			t.Errorf("ParseAction(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"log:", "reboot", "System", "log"} {
		if _, err := ParseAction(bad); err == nil || !strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("ParseAction(%q) = %v, want an error naming it", bad, err)
		}
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// TestFloodFromOnePeer holds more connections from 127.0.0.5 than the
// agent used to serve in all, each in an idle MODE multi session: another
// client and the server (127.0.0.1) must still get OK to PING and REBOOT.
func TestFloodFromOnePeer(t *testing.T) {
	t.Parallel()
	addr, journal := startAgent(t, Config{Root: makeImage(t), BootMode: Network, Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	const flood = 4200
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	for i := range flood {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		defer c.Close()
		io.WriteString(c, "MODE multi\n")
	}
	for _, local := range []string{"127.0.0.6", "127.0.0.1"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "MODE single\nPING\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); line != "OK\n" {
			t.Errorf("PING from %s during the flood = %q, %v; want OK", local, line, err)
		}
	}
	if line, err := reboot(t, addr); err != nil || line != "OK" {
		t.Fatalf("REBOOT from the server during the flood = %q, %v; want OK", line, err)
	}
	if diff := cmp.Diff([]string{"force"}, journalLines(t, journal)); diff != "" {
		t.Errorf("procedure (-want +got):\n%s", diff)
	}
}
