package lab

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStart10000 starts a lab of 10000 nodes (209 switches) in this
// process and reports the time until every agent serves, and what each node
// costs while idle: heap, goroutines, file descriptors.
//
//	go test -run '^$' -bench Start10000 -benchtime 1x ./internal/lab
func BenchmarkStart10000(b *testing.B) {
	const n = 10000
	for b.Loop() {
		var ms0 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		g0, fd0 := runtime.NumGoroutine(), openFiles(b)
		var booted atomic.Int64
		all := make(chan struct{})
		start := time.Now()
		l, err := Start(Config{Nodes: n, Octet: octetBench, BootTime: BootTime{Min: time.Millisecond, Max: time.Millisecond},
			OnBoot: func(Boot) {
				if booted.Add(1) == n {
					close(all)
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d nodes booted after a minute", booted.Load(), n)
		}
		up := time.Since(start)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(up.Milliseconds()), "ms-to-all-up")
		b.ReportMetric(float64(ms.HeapInuse-ms0.HeapInuse)/n/1024, "heap-KiB/node")
		b.ReportMetric(float64(ms.StackInuse-ms0.StackInuse)/n/1024, "stack-KiB/node")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/node")
		b.ReportMetric(float64(openFiles(b)-fd0)/n, "fds/node")
		l.Close()
	}
	b.ReportMetric(0, "ns/op")
}

func openFiles(b *testing.B) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	return len(fds)
}
