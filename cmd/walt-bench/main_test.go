package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Loopback blocks 127.75 to 127.77 (--octet 75).
const testOctet = "75"

func TestFigureFormatAndParse(t *testing.T) {
	t.Parallel()
	f := figure("soft-reboot").Int("nodes", 1000).Float("wall_ms", 95.20, 1).Float("x", 2, 2).Str("agent", "walt-node")
	const want = "soft-reboot nodes=1000 wall_ms=95.2 x=2 agent=walt-node"
	if got := f.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParseFigure(want)
	if err != nil || back.String() != want {
		t.Fatalf("ParseFigure(%q) = %q, %v", want, back, err)
	}
	if v, ok := back.Value("wall_ms"); !ok || v != "95.2" {
		t.Errorf("Value(wall_ms) = %q, %v, want 95.2", v, ok)
	}
	for _, bad := range []string{
		"", "soft-reboot", "Soft nodes=1", "soft- nodes=1", "soft--reboot nodes=1", "1soft nodes=1",
		"soft nodes", "soft nodes=", "soft Nodes=1", "soft nodes=1=2", "soft  nodes=1", "soft nodes=1 nodes=2", "soft nodes=1 ",
	} {
		if f, err := ParseFigure(bad); err == nil {
			t.Errorf("ParseFigure(%q) = %q, want an error", bad, f)
		}
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	for args, want := range map[string]string{
		"--only soft,nope":              `unknown figure group "nope"`,
		"--sizes 10,x":                  `--sizes: "x" is not a number`,
		"--sizes 10 --poe-nodes 11":     "--poe-nodes: want at most the largest of --sizes (10), got 11",
		"--runs 0":                      "--runs: want at least 1",
		"--octet 253":                   "--octet: want 1 to 250",
		"--quick":                       "--bin: no walt-server in " + bin,
		"--poe-nodes 0":                 `--poe-nodes: "0" is not a number of nodes >= 1`,
		"--snmp-port 0":                 "--snmp-port: want 1 to 65535",
		"extra":                         `unexpected argument "extra"`,
		"--reply-timeout 0s --quick":    "--reply-timeout: want a duration > 0",
		"--sizes 20 --quick --pings -1": "--pings: want at least 1",
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append(strings.Fields(args), "--bin", bin), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), want) || stdout.Len() > 0 {
			t.Errorf("walt-bench %s = exit %d, stdout %q, stderr %q; want exit 2 and an error saying %q", args, code, stdout.String(), stderr.String(), want)
		}
	}
}

// TestQuickRun runs walt-bench --quick on freshly built binaries and checks
// that every figure is there, in the format, with every node rebooted.
func TestQuickRun(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("the simulated switches serve SNMP on port 161: needs root")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "../walt-server", "../walt-lab", "../walt-node", "../walt")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	profiles := filepath.Join(t.TempDir(), "profiles")
	if code := run(t.Context(), []string{"--quick", "--bin", bin, "--octet", testOctet, "--cpuprofile", profiles}, &stdout, &stderr); code != 0 {
		t.Fatalf("walt-bench --quick = exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	type want struct{ name, key, value string }
	wants := []want{
		{"walt-lab", "nodes", "20"},
		{"soft-reboot", "nodes", "10"}, {"soft-reboot", "nodes", "20"},
		{"poe-reboot", "nodes", "20"},
		{"server-rss", "nodes", "20"},
		{"agent-rtt", "pings", "200"},
		{"campaign", "boots", "60"}, // 20 nodes, 3 rounds
		{"boot-floor", "rounds", "3"},
	}
	var figs []Figure
	for line := range strings.Lines(stdout.String()) {
		f, err := ParseFigure(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Errorf("output line: %v", err)
			continue
		}
		figs = append(figs, f)
		if _, ok := f.Value("cli_wall_ms"); f.Name == "soft-reboot" && !ok {
			t.Errorf("%s: no cli_wall_ms, want the walt CLI's runs", f)
		}
		if _, err := exec.LookPath("python3"); err == nil && f.Name == "soft-reboot" {
			if v, _ := f.Value("dead_pct"); v == "0" {
				if _, ok := f.Value("walt_fanout_wall_ms"); !ok {
					t.Errorf("%s: no walt_fanout_wall_ms, want the WalT stand-in's runs (python3 is here)", f)
				}
			}
		}
		if f.Name == "soft-reboot" || f.Name == "poe-reboot" || f.Name == "campaign" {
			if v, _ := f.Value("failed"); v != "0" {
				t.Errorf("%s: failed=%s, want 0\nstderr:\n%s", f, v, &stderr)
			}
		}
	}
	for _, w := range wants {
		found := false
		for _, f := range figs {
			if v, _ := f.Value(w.key); f.Name == w.name && v == w.value {
				found = true
			}
		}
		if !found {
			t.Errorf("no figure %s with %s=%s in:\n%s", w.name, w.key, w.value, &stdout)
		}
	}
	dead := 0
	for _, f := range figs {
		if v, _ := f.Value("dead_pct"); f.Name == "soft-reboot" && v == "10" {
			dead++
			if v, _ := f.Value("poe"); v == "0" {
				t.Errorf("%s: no node power-cycled, want the dead ones", f)
			}
		}
	}
	if dead != 2 {
		t.Errorf("%d soft-reboot figures with dead_pct=10, want 2:\n%s", dead, &stdout)
	}
	// A CPU profile from each server: the healthy lab's, the dead nodes'
	// and the campaign's.
	profs, _ := filepath.Glob(filepath.Join(profiles, "walt-server-127.*.prof"))
	if len(profs) != 3 {
		t.Errorf("CPU profiles %q, want 3", profs)
	}
	for _, p := range profs {
		if data, err := os.ReadFile(p); err != nil || !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: %d bytes, %v: want a gzipped profile", p, len(data), err)
		}
	}
	for _, f := range figs {
		// 20 ports of one switch power-cycled: 2 SETs (all off, all on)
		// when the driver gathers them, up to 2 per port when it cannot.
		if v, _ := f.Value("sets_per_switch"); f.Name == "poe-reboot" {
			if n, err := strconv.ParseFloat(v, 64); err != nil || n < 2 || n > 40 {
				t.Errorf("%s: sets_per_switch=%s, want 2 to 40", f, v)
			}
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, as the kernel allows.
	line := []byte("4242 (walt (x) srv) S 1 4242 4242 0 -1 4194560 1000 0 0 0 123 45 0 0 20 0 9 0 100 0 0\n")
	got, err := parseStatCPU(line)
	if err != nil || got != 168*clockTick {
		t.Errorf("parseStatCPU() = %v, %v; want %v", got, err, 168*clockTick)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13", "1 (x) S 1 2 3 4 5 6 7 8 9 10 a b"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) = nil error, want one", bad)
		}
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("4242 (walt-server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 123 45 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && d < 0 {
			t.Fatalf("parseStatCPU(%q) = %v, want >= 0", b, d)
		}
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"--version", "--bin", "/nonexistent"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "walt-bench ") {
		t.Errorf("walt-bench --version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
