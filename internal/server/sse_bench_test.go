package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The cost of dashboards to the server: 10000 nodes boot (each reports a
// new boot, as after a reboot of them all) with 10 event streams open,
// each read to the last node's event, against the same without streams.
// stream-cpu-ms is the CPU time the 10 streams add; boot-cpu-ms is the
// time of the boots alone (the reporting clients included: they run in
// this process).
func BenchmarkEventStreams10Dashboards10000Boots(b *testing.B) {
	const nodes, dashboards = 10000, 10
	env := servertest.New(b, nil, nil)
	report := func() {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < nodes; i += 8 {
					r := api.NodeReport{MAC: fmt.Sprintf("52:54:02:%02x:%02x:%02x", i>>16, (i>>8)&0xff, i&0xff),
						IP: fmt.Sprintf("127.173.%d.%d", i>>8, i&0xff), Name: fmt.Sprintf("n%05d", i), Model: "rpi-b"}
					if _, err := env.Client.ReportNode(b.Context(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	report() // the nodes exist
	var base, with time.Duration
	for b.Loop() {
		start := testutil.CPUTime(b)
		report()
		base += testutil.CPUTime(b) - start

		var streams []*sseStream
		for range dashboards {
			st := openEvents(b, env.URL, env.AdminToken, "")
			st.until(b, "hello", func(e sseEvent) bool { return e.typ == api.SSEHello })
			streams = append(streams, st)
		}
		start = testutil.CPUTime(b)
		var wg sync.WaitGroup
		for _, st := range streams {
			wg.Go(func() {
				n := 0
				for n < nodes {
					ev, err := st.next()
					if err != nil {
						b.Error(err)
						return
					}
					switch ev.typ {
					case api.SSENode:
						n++
					case api.SSEResync: // fell behind the log's memory: the rest is not told
						b.Logf("a stream resynced after %d nodes", n)
						return
					}
				}
			})
		}
		report()
		wg.Wait()
		with += testutil.CPUTime(b) - start
		for _, st := range streams {
			st.resp.Body.Close()
		}
	}
	b.ReportMetric(float64(base.Milliseconds())/float64(b.N), "boot-cpu-ms")
	b.ReportMetric(float64((with-base).Milliseconds())/float64(b.N), "stream-cpu-ms")
}
