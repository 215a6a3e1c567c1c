// Command walt-lab runs a simulated WalT testbed on this machine and
// registers it with a walt server: nodes whose agents speak the real node
// protocol on loopback addresses of their own (127.<octet>.x.y:12346), behind
// simulated PoE switches speaking real SNMP (127.<octet>.255.k, UDP port 161,
// or 1161 without the privilege). Nodes reboot by going away and coming back
// after their boot time; switch ports power them. See docs/lab.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, os.Getenv, stdout, stderr)
}

// runEnv is run with getenv giving WALT_TOKEN: the token of an admin
// (walt-server user add NAME --admin), which registering the switches
// needs; node reports need none.
func runEnv(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("walt-lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("WALT_SERVER", "http://127.0.0.1:12345"), "walt server URL (WALT_SERVER)")
	nodes := fs.Int("nodes", 12, "number of simulated nodes")
	switches := fs.Int("switches", 0, "number of 48-port PoE switches (default: as many as the nodes need)")
	octet := fs.Int("octet", 100, "second byte of the lab's loopback addresses, 1 to 254")
	bootTime := fs.String("boot-time", "500ms-1500ms", "boot duration of a node: a duration, a uniform range such as 1s-3s, normal:MEAN,SD or lognormal:MEDIAN,SIGMA")
	bootTimes := map[string]lab.BootTime{}
	fs.Func("boot-time-dist", "`NODE=DISTRIBUTION`: a node's own boot time distribution, as --boot-time takes it (repeatable), e.g. node03=normal:600ms,80ms", func(v string) error {
		if len(bootTimes) == maxBootTimeDists {
			return fmt.Errorf("more than %d nodes with a boot time distribution", maxBootTimeDists)
		}
		name, bt, err := lab.ParseNodeBootTime(v)
		if err == nil {
			bootTimes[name] = bt
		}
		return err
	})
	seed := fs.Uint64("seed", 0, "seed of the boot times drawn, to run the same lab again (0: a random one, printed at start)")
	experimentSpec := fs.String("experiment", "", "simulated experiment: `DELAY[:STATUS[:KEY=VALUE...]]`, each node reports done DELAY after each boot, with the exit status and metrics (as walt-node done)")
	faults := fs.String("faults", "", "faults, e.g. node03=refused,node04=hung,node05=ko,node06=slow-boot,node07=never-boots,node08=not-poe,node09=flaky:3,node10=crash-loop,switch2=unreachable")
	variant := fs.String("variant", "standard", "PoE MIB of the switches: standard, netgear or tplink")
	community := fs.String("community", "private", "SNMP read-write community of the switches")
	poeDelay := fs.String("poe-delay", "", "poe.delay setting given to the switches (default: the server's, 2s)")
	register := fs.Bool("register", true, "register switches, settings, nodes and topology with the server")
	snmpPortFlag := fs.Int("snmp-port", 0, "UDP `port` of the switches' SNMP agents (default: 161 if allowed, else 1161)")
	verbose := fs.Bool("v", false, "log every boot")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		version.Print(stdout, "walt-lab")
		return 0
	}
	bt, err := lab.ParseBootTime(*bootTime)
	if err != nil {
		return usage(stderr, err)
	}
	nodeFaults, switchFaults, err := lab.ParseFaults(*faults)
	if err != nil {
		return usage(stderr, err)
	}
	var exp *lab.Experiment
	if *experimentSpec != "" {
		e, err := lab.ParseExperiment(*experimentSpec)
		if err != nil {
			return usage(stderr, err)
		}
		exp = &e
	}
	v, err := parseVariant(*variant)
	if err != nil {
		return usage(stderr, err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c, err := client.New(*server, nil)
	if err != nil {
		return usage(stderr, err)
	}
	c = c.WithToken(getenv("WALT_TOKEN"))

	rep, err := client.NewReporter(*server)
	if err != nil {
		return usage(stderr, err)
	}
	go rep.Run(ctx)
	reg := &registrar{ctx: ctx, c: c, rep: rep, log: log, enabled: *register, exp: exp}
	l, err := startLab(lab.Config{
		Nodes: *nodes, Switches: *switches, Octet: *octet, SNMPPort: *snmpPortFlag, Community: *community, Variant: v,
		BootTime: bt, BootTimes: bootTimes, Seed: *seed, Faults: nodeFaults, SwitchFaults: switchFaults, OnBoot: reg.boot, Logger: log,
	}, log)
	if err != nil {
		fmt.Fprintf(stderr, "walt-lab: %v\n", err)
		return 1
	}
	defer l.Close()
	reg.lab = l
	if *register {
		if err := reg.waitServer(); err != nil {
			fmt.Fprintf(stderr, "walt-lab: %v\n", err)
			return 1
		}
		if err := reg.switches(*community, *poeDelay); err != nil {
			fmt.Fprintf(stderr, "walt-lab: register switches with %s: %v\n", *server, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "walt-lab: %d nodes on %d switches (127.%d.0.0/16), boot time %s, seed %d; Ctrl-C stops\n",
		len(l.Nodes), len(l.Switches), *octet, bt, l.Seed)
	<-ctx.Done()
	return 0
}

// registrar tells the server about the lab: switches and their settings
// once, then asks for a rescan (the switches' LLDP tables give each node's
// port), then reports each node at each boot (as walt-node --server does).
type registrar struct {
	ctx     context.Context
	c       *client.Client
	rep     *client.Reporter // boot reports and heartbeats
	log     *slog.Logger
	lab     *lab.Lab
	enabled bool
	exp     *lab.Experiment // nil: none

	mu    sync.Mutex
	ready bool       // switches registered; +checklocks:mu
	early []lab.Boot // boots before the switches were registered; +checklocks:mu
}

// waitServer waits until the server answers, as it may be starting too.
func (r *registrar) waitServer() error {
	for warned := false; ; {
		_, err := r.c.Devices(r.ctx)
		if err == nil {
			return nil
		}
		var ae *api.Error
		if errors.As(err, &ae) {
			return err // the server answered: an error to report, not to wait out
		}
		if !warned {
			r.log.Warn("waiting for the walt server", "err", err)
			warned = true
		}
		select {
		case <-r.ctx.Done():
			return fmt.Errorf("walt server never answered: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *registrar) switches(community, delay string) error {
	var names []string
	for _, sw := range r.lab.Switches {
		_, err := r.c.AddDevice(r.ctx, api.AddDevice{Name: sw.Name(), IP: sw.IP, MAC: sw.MAC, Type: "switch"})
		var ae *api.Error
		if err != nil && !(errors.As(err, &ae) && ae.Code == api.CodeConflict) {
			return err
		}
		names = append(names, sw.Name())
	}
	settings := []string{"snmp.version=2", "snmp.community=" + community, "snmp.port=" + snmpPort(r.lab), "lldp.explore=true", "poe.reboots=true"}
	if delay != "" {
		settings = append(settings, "poe.delay="+delay)
	}
	if _, err := r.c.SetConfig(r.ctx, api.ConfigRequest{Set: strings.Join(names, ","), Settings: settings}); err != nil {
		return err
	}
	if err := r.rescan(); err != nil {
		return err
	}
	r.mu.Lock()
	r.ready = true
	early := r.early
	r.early = nil
	r.mu.Unlock()
	for _, b := range early {
		r.boot(b)
	}
	return nil
}

// maxBootTimeDists bounds the --boot-time-dist flags, one per node at most.
const maxBootTimeDists = 20000

// reporting bounds the reports in flight, so that 10000 nodes booting
// at once do not open 10000 connections to the server.
var reporting = make(chan struct{}, 64)

func (r *registrar) boot(b lab.Boot) {
	if !r.enabled {
		return
	}
	r.mu.Lock()
	if !r.ready {
		r.early = append(r.early, b)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	// Heartbeats go on while the node is up in this boot.
	if !r.report(b, b.Current) || r.exp == nil {
		return
	}
	go r.experiment(b) // not holding up the early boots' reports
}

// report reports a boot; false if it failed.
func (r *registrar) report(b lab.Boot, alive func() bool) bool {
	reporting <- struct{}{}
	defer func() { <-reporting }()
	n := b.Node
	host, _, _ := net.SplitHostPort(n.Addr())
	report := api.NodeReport{MAC: n.MAC(), IP: host, Name: n.Name(), Model: n.Model(), BootMode: "network", BootID: b.BootID}
	if err := r.rep.Report(r.ctx, report, alive); err != nil {
		switch {
		case errors.Is(err, client.ErrBootEnded):
			r.log.Debug("boot over before its report was taken", "node", n.Name(), "err", err)
		case r.ctx.Err() == nil:
			r.log.Warn("boot report failed", "node", n.Name(), "err", err)
		}
		return false
	}
	r.log.Debug("booted", "node", n.Name(), "boot_id", b.BootID)
	return true
}

// experiment runs the simulated experiment of a boot: the node reports
// done, as walt-node done does, unless it left that boot meanwhile.
func (r *registrar) experiment(b lab.Boot) {
	err := r.exp.Run(r.ctx, b, func(ctx context.Context, rep api.DoneReport) error {
		reporting <- struct{}{}
		defer func() { <-reporting }()
		_, err := r.rep.Client().ReportDone(ctx, rep)
		return err
	})
	switch {
	case err == nil:
		r.log.Debug("experiment done", "node", b.Node.Name(), "boot_id", b.BootID)
	case errors.Is(err, lab.ErrBootLeft):
		r.log.Debug("experiment not done: the node left the boot", "node", b.Node.Name(), "boot_id", b.BootID)
	case r.ctx.Err() == nil:
		r.log.Warn("experiment's done report failed", "node", b.Node.Name(), "boot_id", b.BootID, "err", err)
	}
}

func parseVariant(s string) (snmpswitch.Variant, error) {
	for _, v := range []snmpswitch.Variant{snmpswitch.Standard, snmpswitch.Netgear, snmpswitch.TPLink} {
		if strings.EqualFold(v.String(), s) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown PoE variant %q: want standard, netgear or tplink", s)
}

func usage(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "walt-lab: %v\n", err)
	return 2
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
