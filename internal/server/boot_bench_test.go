package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// BenchmarkHeartbeats: heartbeats per second the server absorbs with
// 10000 nodes registered, each request one node's beat over real HTTP
// (as walt-node sends them), from parallel clients.
func BenchmarkHeartbeats(b *testing.B) {
	const nodes = 10000
	e := servertest.NewB(b, bootAddrs, nil)
	macs := make([]string, nodes)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				rep := api.NodeReport{MAC: fmt.Sprintf("02:43:00:00:%02x:%02x", i>>8, i&0xff), IP: fmt.Sprintf("127.43.%d.%d", i>>8, i&0xff),
					Name: fmt.Sprintf("hb%05d", i), Model: "rpi-b", BootID: fmt.Sprintf("boot-%d", i)}
				if _, err := e.Client.ReportNode(b.Context(), rep); err != nil {
					b.Error(err)
				}
				macs[i] = rep.MAC
			}
		})
	}
	for i := range nodes {
		work <- i
	}
	close(work)
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	var next sync.Mutex
	n := 0
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			i := n % nodes
			n++
			next.Unlock()
			reply, err := e.Client.Heartbeats(b.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: macs[i], BootID: fmt.Sprintf("boot-%d", i)}}})
			if err != nil || len(reply.Report) != 0 {
				b.Fatalf("heartbeat %d: %+v, %v", i, reply, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "beats/s")
}
