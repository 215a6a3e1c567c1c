// Command walt-bench measures walt end to end, through its real binaries:
// walt-server on SQLite in a temporary directory, walt-lab's simulated
// nodes and PoE switches registered with it, reboots through the server's
// API, and a walt-node agent. It prints one line per figure,
// `name key=value ...` (see Figure), and asserts no timings.
//
//	scripts/bench.sh [--quick] [--only soft,poe] [--runs 3] ...
//
// Figures: walt-lab (start-up to every agent answering, memory, files),
// server-rss, soft-reboot (healthy, and with 10% dead nodes), poe-reboot
// (hard reboot, SETs per switch), agent-rtt (PING round trip). It needs
// root: the simulated switches serve SNMP on port 161. --quick is a tiny
// run with short deadlines, for tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// groups are the subsets --only picks.
var groups = []string{"lab", "server", "soft", "dead", "poe", "rtt", "campaign"}

// options of a run.
type options struct {
	bin       string
	octet     int
	sizes     []int
	poeNodes  []int
	runs      int
	pings     int
	fanout    int
	reply     time.Duration
	bootTime  string
	poeDelay  time.Duration
	community string
	snmpPort  int
	only      map[string]bool
	// The campaign figure: nodes, rounds and their boot time.
	campaignNodes, campaignRounds int
	campaignBoot                  string
	keep                          bool
	version                       bool
	// cpuProfiles: directory where each walt-server writes its CPU
	// profile (--cpuprofile), empty for none.
	cpuProfiles string
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("walt-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	self, _ := os.Executable()
	fs.StringVar(&o.bin, "bin", filepath.Dir(self), "`directory` of walt-server, walt-lab and walt-node")
	fs.IntVar(&o.octet, "octet", 70, "loopback blocks used: 127.<octet> (healthy lab), <octet>+1 (lab with dead nodes), <octet>+2 (walt-node), <octet>+3 (campaign), <octet>+4 (boot floor)")
	fs.IntVar(&o.campaignNodes, "campaign-nodes", 1000, "nodes of the campaign figure")
	fs.IntVar(&o.campaignRounds, "campaign-rounds", 100, "rounds of the campaign figure")
	fs.StringVar(&o.campaignBoot, "campaign-boot-time", "300ms-800ms", "walt-lab --boot-time of the campaign figure's nodes")
	sizes := fs.String("sizes", "1000,10000", "numbers of nodes soft-rebooted at once; the labs have the largest")
	poeNodes := fs.String("poe-nodes", "1000", "numbers of nodes hard-rebooted by PoE at once (48 per switch), at most the largest of --sizes")
	fs.IntVar(&o.runs, "runs", 3, "runs of each reboot figure")
	fs.IntVar(&o.pings, "pings", 2000, "PING round trips to walt-node")
	fs.IntVar(&o.fanout, "fanout", 1024, "walt-server --fanout: most nodes rebooted at once")
	fs.DurationVar(&o.reply, "reply-timeout", netservice.DefaultReplyTimeout, "walt-server --reply-timeout: deadline of an agent's reply to REBOOT")
	fs.StringVar(&o.bootTime, "boot-time", "200ms-500ms", "walt-lab --boot-time of the nodes")
	fs.DurationVar(&o.poeDelay, "poe-delay", 2*time.Second, "poe.delay of the switches: time a port stays off")
	fs.IntVar(&o.snmpPort, "snmp-port", 161, "UDP port of the simulated switches (passed to walt-lab --snmp-port when not 161)")
	fs.StringVar(&o.community, "community", "private", "SNMP community of the simulated switches")
	only := fs.String("only", strings.Join(groups, ","), "figures to measure, among "+strings.Join(groups, ","))
	quick := fs.Bool("quick", false, "a tiny run (20 nodes, 1 run): checks that everything works, figures mean little")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, logs)")
	fs.StringVar(&o.cpuProfiles, "cpuprofile", "", "`directory` (created if missing) where each walt-server started writes a CPU profile of its run, walt-server-127.<octet>.prof (go tool pprof)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return o, nil // nothing else is checked or run
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (walt-bench takes flags only)", fs.Arg(0))
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"sizes": "10,20", "poe-nodes": "20", "runs": "1", "pings": "200",
			"poe-delay": "200ms", "reply-timeout": "500ms", "boot-time": "50ms-100ms",
			"campaign-nodes": "20", "campaign-rounds": "3", "campaign-boot-time": "50ms-100ms"} {
			if !set[name] {
				fs.Set(name, v)
			}
		}
	}
	var err error
	if o.sizes, err = parseSizes("--sizes", *sizes); err != nil {
		return nil, err
	}
	if o.poeNodes, err = parseSizes("--poe-nodes", *poeNodes); err != nil {
		return nil, err
	}
	o.only = map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		if !slices.Contains(groups, g) {
			return nil, fmt.Errorf("--only: unknown figure group %q: want some of %s", g, strings.Join(groups, ","))
		}
		o.only[g] = true
	}
	switch {
	case o.octet < 1 || o.octet > 250:
		return nil, fmt.Errorf("--octet: want 1 to 250 (5 blocks from it), got %d", o.octet)
	case o.campaignNodes < 1 || o.campaignRounds < 1:
		return nil, fmt.Errorf("--campaign-nodes and --campaign-rounds: want at least 1, got %d and %d", o.campaignNodes, o.campaignRounds)
	case slices.Max(o.poeNodes) > slices.Max(o.sizes):
		return nil, fmt.Errorf("--poe-nodes: want at most the largest of --sizes (%d), got %d", slices.Max(o.sizes), slices.Max(o.poeNodes))
	case o.runs < 1:
		return nil, fmt.Errorf("--runs: want at least 1, got %d", o.runs)
	case o.pings < 1:
		return nil, fmt.Errorf("--pings: want at least 1, got %d", o.pings)
	case o.fanout < 1:
		return nil, fmt.Errorf("--fanout: want at least 1, got %d", o.fanout)
	case o.reply <= 0:
		return nil, fmt.Errorf("--reply-timeout: want a duration > 0, got %s", o.reply)
	case o.snmpPort < 1 || o.snmpPort > 65535:
		return nil, fmt.Errorf("--snmp-port: want 1 to 65535, got %d", o.snmpPort)
	case o.poeDelay < 0:
		return nil, fmt.Errorf("--poe-delay: want a duration >= 0, got %s", o.poeDelay)
	}
	for _, b := range []string{"walt-server", "walt-lab", "walt-node"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return nil, fmt.Errorf("--bin: no %s in %s (scripts/bench.sh builds them): %w", b, o.bin, err)
		}
	}
	return o, nil
}

// parseSizes parses the comma-separated numbers of nodes of flag name.
func parseSizes(name, s string) ([]int, error) {
	var r []int
	for _, w := range strings.Split(s, ",") {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a number of nodes >= 1", name, w)
		}
		r = append(r, n)
	}
	return r, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "walt-bench: %v\n", err)
		return 2
	}
	if o.version {
		version.Print(stdout, "walt-bench")
		return 0
	}
	dir, err := os.MkdirTemp("", "walt-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "walt-bench: %v\n", err)
		return 1
	}
	out := func(f *Figure) { fmt.Fprintln(stdout, f) }
	if err := bench(ctx, o, dir, out, stderr); err != nil {
		fmt.Fprintf(stderr, "walt-bench: %v\nwalt-bench: logs and databases kept in %s\n", err, dir)
		return 1
	}
	if o.keep {
		fmt.Fprintf(stderr, "walt-bench: logs and databases in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	return 0
}

// bench measures the figures of the groups chosen.
func bench(ctx context.Context, o *options, dir string, out func(*Figure), logw io.Writer) error {
	nodes := slices.Max(o.sizes)
	if o.only["lab"] || o.only["server"] || o.only["soft"] || o.only["poe"] {
		if err := benchHealthy(ctx, o, filepath.Join(dir, "healthy"), nodes, out, logw); err != nil {
			return err
		}
	}
	if o.only["dead"] {
		dead := map[int]bool{}
		for i := 0; i < nodes; i += 10 {
			dead[i] = true
		}
		fmt.Fprintf(logw, "walt-bench: walt-server and walt-lab of %d nodes, %d of them dead (127.%d.0.0/16)\n", nodes, len(dead), o.octet+1)
		tb, err := startTestbed(ctx, o, mkdir(dir, "dead"), o.octet+1, nodes, dead)
		if err != nil {
			return err
		}
		defer tb.stop()
		if err := benchSoft(ctx, tb, o.sizes, 10, out, logw); err != nil {
			return err
		}
		tb.stop()
	}
	if o.only["rtt"] {
		if err := benchRTT(ctx, o, mkdir(dir, "rtt"), o.octet+2, out); err != nil {
			return err
		}
	}
	if o.only["campaign"] {
		if err := benchCampaign(ctx, o, mkdir(dir, "campaign"), o.octet+3, out, logw); err != nil {
			return err
		}
		if err := benchBootFloor(ctx, o, mkdir(dir, "floor"), o.octet+4, out, logw); err != nil {
			return err
		}
	}
	return nil
}

// benchHealthy measures on a lab of healthy nodes: the lab, soft reboots,
// PoE reboots, then the server's memory.
func benchHealthy(ctx context.Context, o *options, dir string, nodes int, out func(*Figure), logw io.Writer) error {
	fmt.Fprintf(logw, "walt-bench: walt-server and walt-lab of %d healthy nodes (127.%d.0.0/16)\n", nodes, o.octet)
	tb, err := startTestbed(ctx, o, mkdir(dir, ""), o.octet, nodes, nil)
	if err != nil {
		return err
	}
	defer tb.stop()
	idle, err := benchLab(tb, func(f *Figure) {
		if o.only["lab"] {
			out(f)
		}
	})
	if err != nil {
		return err
	}
	if o.only["soft"] {
		if err := benchSoft(ctx, tb, o.sizes, 0, out, logw); err != nil {
			return err
		}
	}
	if o.only["poe"] {
		for _, n := range o.poeNodes {
			if err := benchPoE(ctx, tb, n, out, logw); err != nil {
				return err
			}
		}
	}
	if o.only["server"] {
		return benchServer(tb, idle, out)
	}
	return nil
}

// mkdir creates dir/name (dir itself when name is empty) and returns it;
// a failure shows when a process cannot create its log there.
func mkdir(dir, name string) string {
	d := filepath.Join(dir, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}
