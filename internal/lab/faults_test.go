package lab

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/testutil"
)

const (
	octetFlaky      = 204
	octetCrash      = 205
	octetExperiment = 206
)

// stillDark checks that a node that went down stays so: no boot report
// comes, nothing listens, for many boot times (10-30 ms in these tests).
func stillDark(t *testing.T, n *Node, boots int) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // an absence can only be awaited this way
	if n.State() != Booting || n.Boots() != boots {
		t.Fatalf("%s: %s after %d boots, want dark (booting) after %d", n.Name(), n.State(), n.Boots(), boots)
	}
	if _, err := request(t.Context(), n, netservice.VerbPing); !errors.Is(err, netservice.ErrRefused) {
		t.Fatalf("PING dark %s = %v, want connection refused", n.Name(), err)
	}
}

func reboot(t *testing.T, n *Node) {
	t.Helper()
	if line, err := request(t.Context(), n, netservice.VerbReboot); err != nil || line != "OK" {
		t.Fatalf("REBOOT %s = %q, %v", n.Name(), line, err)
	}
}

// TestFlakyNode: flaky:3 boots twice, then its third boot never comes back
// until a power cycle, which revives it (that boot is not counted); the
// next two reboots come back, the third does not again.
func TestFlakyNode(t *testing.T) {
	t.Parallel()
	l, boots := startLab(t, Config{Nodes: 1, Octet: octetFlaky, Faults: map[string]Fault{"node01": Flaky(3)}, Seed: 42})
	if l.Seed != 42 {
		t.Errorf("lab seed %d, want 42 as configured", l.Seed)
	}
	n := l.Node("node01")
	boots.await(t, "node01", 1) // counted boot 1: power on
	reboot(t, n)
	boots.await(t, "node01", 2) // counted boot 2
	reboot(t, n)                // counted boot 3: never comes back
	stillDark(t, n, 2)
	n.PowerOff()
	n.PowerOn()
	boots.await(t, "node01", 3) // the revival, not counted
	for i := 4; i <= 5; i++ {   // counted boots 4 and 5
		reboot(t, n)
		boots.await(t, "node01", i)
	}
	reboot(t, n) // counted boot 6
	stillDark(t, n, 5)
}

// TestCrashLoopNode: each boot of a crash-loop node is reported, then the
// agent dies; a power cycle boots it again, to die again.
func TestCrashLoopNode(t *testing.T) {
	t.Parallel()
	l, boots := startLab(t, Config{Nodes: 2, Octet: octetCrash, Faults: map[string]Fault{"node01": CrashLoop}, CrashAfter: 50 * time.Millisecond})
	if l.Seed == 0 {
		t.Error("no seed chosen for a lab configured without one")
	}
	n := l.Node("node01")
	first := boots.await(t, "node01", 1)
	testutil.Eventually(t, 10*time.Second, "node01 to crash", func() bool { return n.State() == Booting })
	stillDark(t, n, 1)
	n.PowerOff()
	n.PowerOn()
	second := boots.await(t, "node01", 2)
	if second.BootID == first.BootID {
		t.Errorf("crash-loop node kept boot id %s across a power cycle", first.BootID)
	}
	testutil.Eventually(t, 10*time.Second, "node01 to crash again", func() bool { return n.State() == Booting })
	if h := l.Node("node02"); h.State() != Up || h.Boots() != 1 {
		t.Errorf("healthy node02: %s, %d boots", h.State(), h.Boots())
	}
}

// TestBootTimeDistributions parses each form, draws reproducibly from a
// seed, and draws what each distribution says.
func TestBootTimeDistributions(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]BootTime{
		"2s":                    {Min: 2 * time.Second, Max: 2 * time.Second},
		"uniform:300ms-800ms":   {Min: 300 * time.Millisecond, Max: 800 * time.Millisecond},
		"normal:600ms,80ms":     {Dist: Normal, Mean: 600 * time.Millisecond, SD: 80 * time.Millisecond},
		"lognormal:500ms,0.25":  {Dist: LogNormal, Mean: 500 * time.Millisecond, Sigma: 0.25},
		"lognormal:1h,3":        {Dist: LogNormal, Mean: time.Hour, Sigma: 3},
		"uniform:0s-1h0m0s":     {Max: time.Hour},
		"normal:1s,0s":          {Dist: Normal, Mean: time.Second},
		"lognormal:500ms,0.000": {Dist: LogNormal, Mean: 500 * time.Millisecond},
	} {
		got, err := ParseBootTime(in)
		if err != nil || got != want {
			t.Errorf("ParseBootTime(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if back, err := ParseBootTime(got.String()); err != nil || back != got {
			t.Errorf("ParseBootTime(%q.String() = %q) = %+v, %v", in, got.String(), back, err)
		}
	}
	for in, want := range map[string]string{
		"normal:600ms":           "want normal:MEAN,SD",
		"normal:-1s,1s":          "mean -1s out of range",
		"normal:1s,2h":           "standard deviation 2h0m0s out of range",
		"lognormal:1s,3.5":       "sigma 3.5 out of range",
		"lognormal:1s,NaN":       "sigma NaN out of range",
		"poisson:1s":             `unknown distribution "poisson"`,
		"uniform:2h-3h":          "out of range",
		"uniform:3s-1s":          "smallest first",
		strings.Repeat("1", 200): "200 bytes, at most 128",
	} {
		if _, err := ParseBootTime(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBootTime(%.40q) = %v, want an error with %q", in, err, want)
		}
	}
	bt, _ := ParseBootTime("normal:600ms,80ms")
	a, b, other := bt.Drawer(7, 3), bt.Drawer(7, 3), bt.Drawer(7, 4)
	var sum, sq float64
	const n = 4000
	differ := false
	for range n {
		x := a()
		if x != b() {
			t.Fatal("two drawers of one seed and stream disagree")
		}
		differ = differ || x != other()
		s := x.Seconds()
		sum, sq = sum+s, sq+s*s
	}
	mean := sum / n
	sd := math.Sqrt(sq/n - mean*mean)
	if !differ || math.Abs(mean-0.6) > 0.01 || math.Abs(sd-0.08) > 0.01 {
		t.Errorf("normal:600ms,80ms drew mean %.4f s, sd %.4f s (streams differ: %v)", mean, sd, differ)
	}
	ln, _ := ParseBootTime("lognormal:500ms,0.5")
	draw := ln.Drawer(1, 1)
	below := 0
	for range n {
		if d := draw(); d < 500*time.Millisecond {
			below++
		} else if d <= 0 {
			t.Fatal("log-normal drew a non-positive duration")
		}
	}
	if below < n*45/100 || below > n*55/100 {
		t.Errorf("lognormal:500ms,0.5: %d of %d draws below the median", below, n)
	}
	wide := BootTime{Dist: Normal, Mean: time.Millisecond, SD: time.Hour}.Drawer(1, 1)
	for range 100 {
		if d := wide(); d < 0 || d > MaxBootTime {
			t.Fatalf("normal draw %v outside 0 to %v", d, MaxBootTime)
		}
	}
}

// TestLabBootTimesAndSeed: per-node distributions and the seed reach the
// nodes; bounds and unknown names are refused before anything starts.
func TestLabBootTimesAndSeed(t *testing.T) {
	t.Parallel()
	if _, err := Start(Config{Nodes: 2, BootTimes: map[string]BootTime{"node09": {Min: time.Second, Max: time.Second}}}); err == nil || !strings.Contains(err.Error(), `boot time for unknown node "node09"`) {
		t.Errorf("Start with a boot time for an unknown node = %v", err)
	}
	if _, err := Start(Config{Nodes: 2, BootTimes: map[string]BootTime{"node01": {Dist: Normal, Mean: -time.Second}}}); err == nil || !strings.Contains(err.Error(), "boot time of node01: mean -1s out of range") {
		t.Errorf("Start with a negative mean = %v", err)
	}
	name, bt, err := ParseNodeBootTime("node02=normal:20ms,1ms")
	if err != nil || name != "node02" || bt.Dist != Normal {
		t.Fatalf("ParseNodeBootTime = %q, %+v, %v", name, bt, err)
	}
	for _, bad := range []string{"node02", "=1s", "node02=fast", strings.Repeat("n", 65) + "=1s"} {
		if _, _, err := ParseNodeBootTime(bad); err == nil {
			t.Errorf("ParseNodeBootTime(%.40q) accepted", bad)
		}
	}
}

func TestParseNewFaults(t *testing.T) {
	t.Parallel()
	nodes, _, err := ParseFaults("node01=flaky:2,node02=crash-loop,node03=flaky:1000")
	if err != nil || nodes["node01"] != Flaky(2) || nodes["node01"].FlakyEvery() != 2 || nodes["node02"] != CrashLoop || nodes["node03"].FlakyEvery() != 1000 {
		t.Errorf("ParseFaults = %v, %v", nodes, err)
	}
	for in, want := range map[string]string{
		"node01=flaky:1":     "K is 1, want 2 to 1000",
		"node01=flaky:1001":  "K is 1001",
		"node01=flaky:":      "want flaky:K",
		"node01=flaky:+3":    "want flaky:K",
		"node01=flaky:99999": "want flaky:K",
		"node01=flaky:x":     "want flaky:K",
		"node01=":            "no fault given",
		"node01=crash":       `unknown node fault "crash"`,
	} {
		if _, _, err := ParseFaults(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFaults(%q) = %v, want %q", in, err, want)
		}
	}
	if _, _, err := ParseFaults(strings.Repeat("x", maxFaultsSpec+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("ParseFaults of %d bytes = %v", maxFaultsSpec+1, err)
	}
	if Fault("flaky:1").FlakyEvery() != 0 || Hung.FlakyEvery() != 0 {
		t.Error("FlakyEvery of an invalid flaky fault or another fault is not 0")
	}
}

func TestParseExperiment(t *testing.T) {
	t.Parallel()
	e, err := ParseExperiment("2s:3:runs=3:score=-0.5")
	if err != nil || e.Delay != 2*time.Second || e.Status != 3 || len(e.Metrics) != 2 || e.Metrics["score"] != -0.5 {
		t.Fatalf("ParseExperiment = %+v, %v", e, err)
	}
	if e, err := ParseExperiment("0s"); err != nil || e.Delay != 0 || e.Status != 0 || e.Metrics != nil {
		t.Errorf("ParseExperiment(0s) = %+v, %v", e, err)
	}
	if r := e.Report("02:00:00:00:00:01", "b1"); r.MAC != "02:00:00:00:00:01" || r.BootID != "b1" || r.Status != 3 {
		t.Errorf("Report = %+v", r)
	}
	for in, want := range map[string]string{
		"":                                     "delay",
		"-1s":                                  "delay",
		"2h":                                   "want a duration of 0 to 1h0m0s",
		"1s:256":                               "256 is out of range",
		"1s:-1":                                "status",
		"1s:":                                  "status",
		"1s:0:a/b=1":                           "not allowed",
		"1s:0:a=1:a=2":                         "given twice",
		"1s:0:a":                               "want KEY=VALUE",
		"1s:0:" + strings.Repeat("m=1:", 1100): "bytes, at most 4096",
	} {
		if _, err := ParseExperiment(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseExperiment(%.40q) = %v, want %q", in, err, want)
		}
	}
}

// TestExperimentRun runs a simulated experiment on a real lab node: done
// hears the boot's report after the delay; a node that rebooted meanwhile
// reports nothing for the boot it left; an ended context stops it.
func TestExperimentRun(t *testing.T) {
	t.Parallel()
	l, boots := startLab(t, Config{Nodes: 1, Octet: octetExperiment})
	n := l.Node("node01")
	b := boots.await(t, "node01", 1)
	e := Experiment{Delay: 20 * time.Millisecond, Status: 9, Metrics: map[string]float64{"x": 1}}
	var got []api.DoneReport
	record := func(_ context.Context, r api.DoneReport) error {
		got = append(got, r)
		return nil
	}
	start := time.Now()
	if err := e.Run(t.Context(), b, record); err != nil || len(got) != 1 || got[0].BootID != b.BootID || got[0].MAC != n.MAC() || got[0].Status != 9 || got[0].Metrics["x"] != 1 {
		t.Fatalf("Run = %v, reported %+v", err, got)
	}
	if time.Since(start) < e.Delay {
		t.Errorf("reported after %v, before the delay %v", time.Since(start), e.Delay)
	}
	reboot(t, n)
	if err := e.Run(t.Context(), b, record); !errors.Is(err, ErrBootLeft) || len(got) != 1 {
		t.Errorf("Run for a boot the node left = %v, %d reports", err, len(got))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := (Experiment{Delay: time.Hour}).Run(ctx, boots.await(t, "node01", 2), record); !errors.Is(err, context.Canceled) || len(got) != 1 {
		t.Errorf("Run with an ended context = %v, %d reports", err, len(got))
	}
}
