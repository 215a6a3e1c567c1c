package poe

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power"
)

// BenchmarkCycle1000Ports power-cycles 1000 ports on 21 simulated 48-port
// switches (each on its own loopback address) in one Cycle call, with the
// default poe.delay (2 s). Aims: wall time <= delay + 300 ms, 2 SETs per
// switch. cold-ms includes discovering the switches (variant, mapping).
//
//	go test -run '^$' -bench Cycle1000 -benchtime 3x ./internal/power/poe
//
// per-node-calls makes one Cycle call per port, all at once, as the reboot
// engine does: the driver gathers them into the same requests.
func BenchmarkCycle1000Ports(b *testing.B) {
	b.Run("one-call", func(b *testing.B) { benchCycle(b, false) })
	b.Run("per-node-calls", func(b *testing.B) { benchCycle(b, true) })
}

func benchCycle(b *testing.B, perNode bool) {
	const switches, ports, nodes = 21, 48, 1000
	dir := &directory{}
	var sims []*snmpswitch.Switch
	var all []power.Outlet
	for i := range switches {
		name := fmt.Sprintf("sw-%02d", i)
		s, err := snmpswitch.Start(snmpswitch.Config{Name: name, Addr: fmt.Sprintf("127.0.1.%d:0", i+1), Community: "rw-s3cret", Ports: ports})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		sims = append(sims, s)
		dir.put(name, SwitchConfig{Name: name, Address: s.Addr(), Version: V2c, Community: NewCommunity("rw-s3cret"), Reboots: true})
		for p := 1; p <= ports && len(all) < nodes; p++ {
			all = append(all, power.Outlet{Switch: name, Port: p})
		}
	}
	d, err := New(DefaultConfig(), dir, &power.MemJournal{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	cycle := func() time.Duration {
		start := time.Now()
		errs := make([]error, len(all))
		if perNode {
			var wg sync.WaitGroup
			for i, o := range all {
				wg.Go(func() { errs[i] = d.Cycle(b.Context(), []power.Outlet{o})[0] })
			}
			wg.Wait()
		} else {
			errs = d.Cycle(b.Context(), all)
		}
		for i, err := range errs {
			if err != nil {
				b.Fatalf("%s: %v", all[i], err)
			}
		}
		return time.Since(start)
	}
	cold := cycle()
	for _, s := range sims {
		s.ResetStats()
	}
	b.ResetTimer()
	for b.Loop() {
		cycle()
	}
	b.StopTimer()
	maxSets, total := 0, 0
	for _, s := range sims {
		st := s.Stats()
		maxSets = max(maxSets, st.Sets)
		total += st.Sets
	}
	b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "wall-ms")
	b.ReportMetric(float64(b.Elapsed()-time.Duration(b.N)*DefaultDelay)/float64(b.N)/1e6, "overhead-ms")
	b.ReportMetric(float64(maxSets)/float64(b.N), "max-sets/switch")
	b.ReportMetric(float64(total)/float64(b.N)/switches, "sets/switch")
	b.ReportMetric(0, "ns/op")
}
