package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/experiment"
)

// FuzzParseFaults: an accepted spec gives only known faults (flaky:K
// within bounds), node names without '=' and switch names for switch
// faults; errors stay short whatever the input.
func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"node03=refused,switch2=unreachable", "node01=flaky:2", "node01=flaky:1000,node02=crash-loop", "node01=flaky:1", "n=flaky:0003", "=ko", "a=b=c", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nodes, switches, err := ParseFaults(s)
		if err != nil {
			if len(err.Error()) > 4096 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		for name, fault := range nodes {
			if again, err := ParseFault(string(fault)); err != nil || again != fault || fault == Healthy || strings.Contains(name, "=") {
				t.Fatalf("accepted node fault %q=%q", name, fault)
			}
			if strings.HasPrefix(string(fault), "flaky:") && (fault.FlakyEvery() < MinFlaky || fault.FlakyEvery() > MaxFlaky) {
				t.Fatalf("accepted %q with K %d", fault, fault.FlakyEvery())
			}
		}
		for name, fault := range switches {
			if _, err := ParseSwitchFault(string(fault)); err != nil || !strings.HasPrefix(name, "switch") {
				t.Fatalf("accepted switch fault %q=%q", name, fault)
			}
		}
	})
}

// FuzzParseBootTime: an accepted distribution is within bounds, reads back
// from its String, and draws within 0 to MaxBootTime.
func FuzzParseBootTime(f *testing.F) {
	for _, s := range []string{"2s", "1s-3s", "uniform:300ms-800ms", "normal:600ms,80ms", "lognormal:500ms,0.25", "lognormal:1s,1e309", "normal:1s", "uniform:", "x:1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bt, err := ParseBootTime(s)
		if err != nil {
			return
		}
		if bt.check() != nil {
			t.Fatalf("accepted %q as %+v, out of bounds", s, bt)
		}
		if back, err := ParseBootTime(bt.String()); err != nil || back != bt {
			t.Fatalf("%q: String %q reads back as %+v, %v", s, bt.String(), back, err)
		}
		draw := bt.Drawer(1, 2)
		for range 8 {
			if d := draw(); d < 0 || d > MaxBootTime {
				t.Fatalf("%q drew %v", s, d)
			}
		}
	})
}

// FuzzParseExperiment: an accepted experiment makes done reports the
// server's rules accept.
func FuzzParseExperiment(f *testing.F) {
	for _, s := range []string{"2s", "2s:0", "1s:3:runs=3:score=0.5", "1s:256", "1s:0:a/b=1", "0s::", "1h0m1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExperiment(s)
		if err != nil {
			return
		}
		if e.Delay < 0 || e.Delay > MaxExperimentDelay || e.Delay > time.Hour {
			t.Fatalf("accepted delay %v", e.Delay)
		}
		if err := experiment.CheckDone(e.Report("02:00:00:00:00:01", "b1")); err != nil || len(e.Metrics) > api.MaxDoneMetrics {
			t.Fatalf("%q makes a done report the server refuses: %v", s, err)
		}
	})
}
