package reboot_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// Benchmarks use 127.11.0.0/16 and up, one /16 per benchmark.
var benchOctet byte = 11

// startFleet starts n simulated nodes; one in every deadEvery is dead,
// alternately refused and black-holed (deadEvery 0: all healthy).
func startFleet(b *testing.B, n, deadEvery int) []reboot.Node {
	b.Helper()
	a := reboottest.NewAddrs(benchOctet)
	benchOctet++
	ns := make([]reboot.Node, n)
	dead := 0
	for i := range ns {
		beh := reboottest.OK
		if deadEvery > 0 && i%deadEvery == 0 {
			beh = reboottest.Refused
			if dead%2 == 1 {
				beh = reboottest.BlackHole
			}
			dead++
		}
		ag, stop, err := a.Start(context.Background(), beh)
		if err != nil {
			b.Fatalf("start node %d: %v", i, err)
		}
		b.Cleanup(stop)
		ns[i] = reboot.Node{Name: fmt.Sprintf("n%d", i), MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i)), Addr: ag.Addr}
	}
	return ns
}

type nopDriver struct{}

func (nopDriver) Method() string                                { return "PoE-reboot" }
func (nopDriver) HardReboot(context.Context, reboot.Node) error { return nil }

// BenchmarkSoftReboot measures the wall time from request to last result
// for a whole fleet of in-process agents on distinct loopback addresses.
// Dead nodes (10%) have a 1 s reply deadline; the aim is that they cost
// that deadline and nothing more.
func BenchmarkSoftReboot(b *testing.B) {
	for _, c := range []struct {
		n, deadEvery int
	}{{1000, 0}, {10000, 0}, {1000, 10}, {10000, 10}} {
		name := fmt.Sprintf("nodes=%d/dead=%d%%", c.n, 0)
		if c.deadEvery > 0 {
			name = fmt.Sprintf("nodes=%d/dead=%d%%", c.n, 100/c.deadEvery)
		}
		b.Run(name, func(b *testing.B) {
			ns := startFleet(b, c.n, c.deadEvery)
			cfg := reboot.DefaultConfig()
			cfg.Fanout = 4096
			cfg.ConnectTimeout, cfg.ReplyTimeout = time.Second, time.Second
			cfg.Physical = nopDriver{}
			e, err := reboot.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				for _, r := range e.Reboot(context.Background(), ns, false, nil) {
					if !r.OK {
						b.Fatalf("%s: %v", r.Node.Name, r.Err())
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/reboot-all")
		})
	}
}
