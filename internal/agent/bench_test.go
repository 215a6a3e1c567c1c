package agent

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
)

// BenchmarkPingRoundTrip measures sequential PING round trips to an agent
// on loopback, one connection each (as the server does), and reports the
// median and 99th percentile.
func BenchmarkPingRoundTrip(b *testing.B) {
	addr := benchAgent(b)
	rq := &netservice.Requester{}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if _, err := rq.Do(b.Context(), addr, netservice.Request{Verb: netservice.VerbPing}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAck1000Reboots measures the time for 1000 clients sending
// REBOOT at once to one agent (log action) to all receive OK.
func BenchmarkAck1000Reboots(b *testing.B) {
	addr := benchAgent(b)
	rq := &netservice.Requester{ConnectTimeout: 10 * time.Second, ReplyTimeout: 10 * time.Second}
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		for range 1000 {
			wg.Go(func() {
				if _, err := rq.Do(b.Context(), addr, netservice.Request{Verb: netservice.VerbReboot}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/1000-acks")
}

func benchAgent(b *testing.B) string {
	// 1000 clients from one address at once: over the default per-peer bound.
	cfg := Config{Root: b.TempDir(), BootMode: Network, MaxConns: 1000, MaxConnsPerPeer: 1000,
		Action: Action{Kind: ActionLog, LogFile: filepath.Join(b.TempDir(), "journal")}}
	a, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := listenLoopback()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.Serve(b.Context(), ln); close(done) }()
	b.Cleanup(func() { <-done })
	return ln.Addr().String()
}
