package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/netservice"
)

// rebootStats gathers the runs of one reboot figure.
type rebootStats struct {
	walls                       []time.Duration
	reboots, ok, soft, poe, bad int
	softAcks, poeAcks           []time.Duration // from the API request to each node's acknowledgement
	failures                    []string        // a few, for the log
	// walt-server's CPU time per rebooted node in each run: during the
	// request (request to last result), and to the lab settled again
	// (the boot reports and heartbeats that follow included).
	cpuRequest, cpuSettled []time.Duration
	// The runs of the walt CLI (benchSoftCLI): its wall time, and the
	// server's CPU per node meanwhile.
	cliWalls, cliCPU []time.Duration
	// The runs of the stand-in for WalT's own fan-out (benchWaltFanout):
	// its wall time and its CPU per node.
	waltWalls, waltCPU []time.Duration
}

// addCPU records the server's CPU time of one run of n nodes: before the
// request, after the last result and once the lab has settled.
func (s *rebootStats) addCPU(n int, before, answered, settled time.Duration) {
	s.cpuRequest = append(s.cpuRequest, (answered-before)/time.Duration(n))
	s.cpuSettled = append(s.cpuSettled, (settled-before)/time.Duration(n))
}

// add records a run that started at start (as the engine may queue nodes,
// acknowledgements count from there, not from each node's own start).
func (s *rebootStats) add(start time.Time, wall time.Duration, results []api.NodeResult) {
	s.walls = append(s.walls, wall)
	for _, r := range results {
		s.reboots++
		if !r.OK {
			s.bad++
			if len(s.failures) < 5 {
				s.failures = append(s.failures, fmt.Sprintf("%s: %+v", r.Node, r.Attempts))
			}
			continue
		}
		s.ok++
		var ack time.Duration
		if r.Ack != nil {
			ack = r.Ack.Sub(start)
		}
		switch r.Method {
		case api.MethodSoft:
			s.soft++
			s.softAcks = append(s.softAcks, ack)
		case api.MethodPoE:
			s.poe++
			s.poeAcks = append(s.poeAcks, ack)
		}
	}
}

// fill adds the runs' figures to f: wall time (median, min, max over runs),
// outcomes summed over runs, acknowledgement percentiles.
func (s *rebootStats) fill(f *Figure) {
	w := slices.Sorted(slices.Values(s.walls))
	f.Int("runs", len(w)).Ms("wall_ms", w[len(w)/2]).Ms("wall_min_ms", w[0]).Ms("wall_max_ms", w[len(w)-1])
	f.Int("reboots", s.reboots).Int("ok", s.ok).Int("soft", s.soft).Int("poe", s.poe).Int("failed", s.bad)
	if len(s.softAcks) > 0 {
		f.Ms("soft_ack_p50_ms", percentile(s.softAcks, 0.50)).Ms("soft_ack_p99_ms", percentile(s.softAcks, 0.99))
	}
	if len(s.poeAcks) > 0 {
		f.Ms("poe_ack_p50_ms", percentile(s.poeAcks, 0.50)).Ms("poe_ack_p99_ms", percentile(s.poeAcks, 0.99))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	if len(s.cpuRequest) > 0 {
		f.Float("server_cpu_us_per_node", us(percentile(s.cpuRequest, 0.5)), 0).
			Float("server_cpu_settled_us_per_node", us(percentile(s.cpuSettled, 0.5)), 0)
	}
	if len(s.cliWalls) > 0 {
		f.Ms("cli_wall_ms", percentile(s.cliWalls, 0.5)).Ms("cli_wall_min_ms", slices.Min(s.cliWalls)).
			Float("cli_server_cpu_us_per_node", us(percentile(s.cliCPU, 0.5)), 0)
	}
	if len(s.waltWalls) > 0 {
		f.Ms("walt_fanout_wall_ms", percentile(s.waltWalls, 0.5)).Ms("walt_fanout_wall_min_ms", slices.Min(s.waltWalls)).
			Float("walt_fanout_cpu_us_per_node", us(percentile(s.waltCPU, 0.5)), 0)
	}
}

// logFailures writes the first failures to w.
func (s *rebootStats) logFailures(w io.Writer, what string) {
	if s.bad > 0 {
		fmt.Fprintf(w, "walt-bench: %s: %d nodes not rebooted, first: %s\n", what, s.bad, strings.Join(s.failures, "; "))
	}
}

// percentile returns the p-quantile (0 < p <= 1) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// benchLab gives the figures of the lab itself and of the server holding
// its nodes, just registered.
func benchLab(tb *testbed, out func(*Figure)) (serverIdle usage, err error) {
	u, err := tb.lab.usage()
	if err != nil {
		return usage{}, err
	}
	f := figure("walt-lab").Int("nodes", tb.nodes).Int("switches", switchesFor(tb.nodes)).
		Ms("agents_up_ms", tb.agentsUp).Ms("registered_ms", tb.registered).
		Float("rss_mb", mb(u.RSS), 1).Float("peak_mb", mb(u.Peak), 1).Float("kib_per_node", float64(u.RSS)/1024/float64(tb.nodes), 1).
		Int("fds", u.Files).Int("threads", u.Threads)
	if u.FileLimitOK {
		f.Int("fd_limit", int(u.FileLimit))
	}
	out(f)
	return tb.server.usage()
}

// switchesFor is how many switches walt-lab gives n nodes.
func switchesFor(n int) int { return max((n+lab.PortsPerSwitch-1)/lab.PortsPerSwitch, 1) }

// benchServer gives the server's memory with the lab's nodes: idle just
// after registration, now, and at its peak.
func benchServer(tb *testbed, idle usage, out func(*Figure)) error {
	u, err := tb.server.usage()
	if err != nil {
		return err
	}
	out(figure("server-rss").Int("nodes", tb.nodes).Float("idle_mb", mb(idle.RSS), 1).
		Float("rss_mb", mb(u.RSS), 1).Float("peak_mb", mb(u.Peak), 1).Int("threads", u.Threads))
	return nil
}

// benchSoft reboots the first n nodes of the lab, runs times, and gives one
// figure per size.
func benchSoft(ctx context.Context, tb *testbed, sizes []int, deadPct int, out func(*Figure), logw io.Writer) error {
	for _, n := range sizes {
		var s rebootStats
		for range tb.o.runs {
			before, err := tb.quietCPU(ctx)
			if err != nil {
				return err
			}
			if err := tb.reboot(ctx, tb.set(n), false, &s); err != nil {
				return err
			}
			answered, err := tb.server.cpu()
			if err != nil {
				return err
			}
			settled, err := tb.quietCPU(ctx)
			if err != nil {
				return err
			}
			s.addCPU(n, before, answered, settled)
		}
		if err := benchSoftCLI(ctx, tb, n, &s); err != nil {
			return err
		}
		if deadPct == 0 {
			if err := benchWaltFanout(ctx, tb, n, &s); err != nil {
				return err
			}
		}
		s.logFailures(logw, fmt.Sprintf("soft reboot of %d nodes", n))
		f := figure("soft-reboot").Int("nodes", n).Int("lab_nodes", tb.nodes).Int("dead_pct", deadPct).Int("fanout", tb.o.fanout).Ms("reply_timeout_ms", tb.o.reply)
		s.fill(f)
		out(f)
	}
	return nil
}

// quietCPU waits until the testbed is quiet (settle) and returns the
// server's CPU time then.
func (tb *testbed) quietCPU(ctx context.Context) (time.Duration, error) {
	if err := tb.settle(ctx); err != nil {
		return 0, err
	}
	return tb.server.cpu()
}

// benchSoftCLI, when --bin has the walt CLI, reboots the first n nodes
// with it, runs times: walt node reboot end to end, process start,
// request, reading the NDJSON stream and printing every node's line.
func benchSoftCLI(ctx context.Context, tb *testbed, n int, s *rebootStats) error {
	cli := filepath.Join(tb.o.bin, "walt")
	if _, err := os.Stat(cli); err != nil {
		return nil
	}
	for range tb.o.runs {
		before, err := tb.quietCPU(ctx)
		if err != nil {
			return err
		}
		wall, err := tb.rebootCLI(ctx, cli, tb.set(n))
		if err != nil {
			return err
		}
		after, err := tb.server.cpu()
		if err != nil {
			return err
		}
		s.cliWalls = append(s.cliWalls, wall)
		s.cliCPU = append(s.cliCPU, (after-before)/time.Duration(n))
	}
	return nil
}

// snmpInSetRequests of RFC 1213, which walt-lab's switches answer.
const oidSnmpInSetRequests = ".1.3.6.1.2.1.11.17.0"

// benchPoE hard-reboots the first n nodes of the lab (on the first
// switches) and counts the SNMP SETs each switch received.
func benchPoE(ctx context.Context, tb *testbed, n int, out func(*Figure), logw io.Writer) error {
	switches := switchesFor(n)
	var s rebootStats
	sets := make([]uint64, switches)
	for range tb.o.runs {
		if err := tb.settle(ctx); err != nil {
			return err
		}
		before, err := tb.setCounters(switches)
		if err != nil {
			return err
		}
		if err := tb.reboot(ctx, tb.set(n), true, &s); err != nil {
			return err
		}
		after, err := tb.setCounters(switches)
		if err != nil {
			return err
		}
		for k := range sets {
			sets[k] += after[k] - before[k]
		}
	}
	s.logFailures(logw, fmt.Sprintf("PoE reboot of %d nodes", n))
	f := figure("poe-reboot").Int("nodes", n).Int("switches", switches).Ms("poe_delay_ms", tb.o.poeDelay)
	s.fill(f)
	var total uint64
	for _, v := range sets {
		total += v
	}
	runs := float64(tb.o.runs)
	f.Float("sets_per_switch", float64(total)/runs/float64(switches), 2).Float("max_sets_per_switch", float64(slices.Max(sets))/runs, 2)
	out(f)
	return nil
}

// setCounters reads snmpInSetRequests from the first n switches of the lab.
func (tb *testbed) setCounters(n int) ([]uint64, error) {
	r := make([]uint64, n)
	for k := range n {
		g := &gosnmp.GoSNMP{Target: lab.SwitchIP(tb.octet, k), Port: uint16(tb.o.snmpPort), Community: tb.o.community,
			Version: gosnmp.Version2c, Timeout: 2 * time.Second, Retries: 1}
		if err := g.Connect(); err != nil {
			return nil, fmt.Errorf("SNMP to switch%d: %w", k+1, err)
		}
		p, err := g.Get([]string{oidSnmpInSetRequests})
		g.Conn.Close()
		if err != nil || len(p.Variables) != 1 || p.Variables[0].Type != gosnmp.Counter32 {
			return nil, fmt.Errorf("read snmpInSetRequests of switch%d (%s): %v %v", k+1, g.Target, p, err)
		}
		r[k] = gosnmp.ToBigInt(p.Variables[0].Value).Uint64()
	}
	return r, nil
}

// benchRTT starts a walt-node agent and measures PING round trips, one
// connection each, as the server makes them.
func benchRTT(ctx context.Context, o *options, dir string, octet int, out func(*Figure)) error {
	addr := lab.NodeAddr(octet, 0)
	p, err := startProc(dir, filepath.Join(o.bin, "walt-node"), "walt-node",
		"--listen", addr, "--boot-mode", "network", "--virtual", "false", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer p.stop()
	tb := &testbed{lab: p}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	up := tb.pingAddr(wctx, addr)
	cancel()
	if !up {
		if err := p.exited(); err != nil {
			return err
		}
		return fmt.Errorf("walt-node on %s never answered PING:\n%s", addr, p.tail(10))
	}
	lat := make([]time.Duration, 0, o.pings)
	for range o.pings {
		start := time.Now()
		line, err := rq.Do(ctx, addr, netservice.Request{Verb: netservice.VerbPing})
		if err != nil || line != "OK" {
			return fmt.Errorf("PING %s = %q, %v", addr, line, err)
		}
		lat = append(lat, time.Since(start))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	out(figure("agent-rtt").Str("agent", "walt-node").Int("pings", o.pings).
		Float("p50_us", us(percentile(lat, 0.5)), 0).Float("p90_us", us(percentile(lat, 0.9)), 0).
		Float("p99_us", us(percentile(lat, 0.99)), 0).Float("max_us", us(slices.Max(lat)), 0))
	return nil
}
