package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// rssMB returns this process's resident set size in MB.
func rssMB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// register adds n nodes straight into the store, in one go.
func register(b *testing.B, st store.Store, n int, ip func(i int) string) {
	b.Helper()
	now := time.Now()
	for i := range n {
		d := store.Device{MAC: fmt.Sprintf("52:54:01:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i)), Name: fmt.Sprintf("n%05d", i),
			IP: ip(i), Type: store.TypeNode, Model: "rpi-b", Booted: true, CreatedAt: now, LastSeen: now}
		if _, err := st.ReportDevice(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerRSS: the server's resident memory with 10000 nodes
// registered, after listing them through the API (whole process: server,
// SQLite, test harness).
func BenchmarkServerRSS(b *testing.B) {
	e := servertest.NewB(b, reboottest.NewAddrs(40), nil)
	register(b, e.Store, 10000, func(i int) string { return fmt.Sprintf("10.%d.%d.%d", byte(i>>16), byte(i>>8), byte(i)) })
	b.ResetTimer()
	for b.Loop() {
		nl, err := e.Client.Nodes(context.Background(), nil)
		if err != nil || nl.NumNodes != 10000 {
			b.Fatalf("Nodes() = %d nodes, %v", nl.NumNodes, err)
		}
	}
	b.StopTimer()
	runtime.GC()
	b.ReportMetric(rssMB(b), "MB-RSS")
}

// BenchmarkServerReboot: POST /reboots on all-nodes with in-process agents,
// from request to the done event (resolution, engine, NDJSON stream and
// history recording included). cpu-µs/node is the CPU time of the whole
// process (server, in-process agents and client) per node rebooted;
// walt-bench measures walt-server's alone.
func BenchmarkServerReboot(b *testing.B) {
	for i, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			addrs := reboottest.NewAddrs(byte(41 + i))
			e := servertest.NewB(b, addrs, func(c *server.Config) {
				def := reboot.DefaultConfig()
				c.Reboot.Fanout, c.Reboot.ConnectTimeout, c.Reboot.ReplyTimeout = 4096, def.ConnectTimeout, def.ReplyTimeout
			})
			hosts := make([]string, n)
			for j := range hosts {
				ag, stop, err := addrs.Start(context.Background(), reboottest.OK)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(stop)
				hosts[j], _, _ = net.SplitHostPort(ag.Addr)
			}
			register(b, e.Store, n, func(j int) string { return hosts[j] })
			b.ResetTimer()
			cpu0 := testutil.CPUTime(b)
			for b.Loop() {
				res, err := e.Client.Reboot(context.Background(), api.RebootRequest{Set: "all-nodes", Requester: "bench"}, nil)
				if err != nil || len(res) != n {
					b.Fatalf("Reboot() = %d results, %v", len(res), err)
				}
				for _, r := range res {
					if !r.OK {
						b.Fatalf("%s: %+v", r.Node, r.Attempts)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((testutil.CPUTime(b)-cpu0).Microseconds())/float64(b.N*n), "cpu-µs/node")
			b.ReportMetric(rssMB(b), "MB-RSS")
		})
	}
}
