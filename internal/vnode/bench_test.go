package vnode

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSupervisorPerVnode measures what the supervisor itself spends per
// vnode, with 200 idle process vnodes: heap, goroutines, CPU while idle, and
// the RSS of each walt-node (the process backend's "VM").
//
//	go test -run '^$' -bench SupervisorPerVnode -benchtime 1x ./internal/vnode/
func BenchmarkSupervisorPerVnode(b *testing.B) {
	const n = 200
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		s := startSupervisor(b, processBackend(b), "127.207.0.0/16")
		for i := range n {
			if err := s.Create(Spec{Name: "bench" + strconv.Itoa(i), Settings: zeroDelay()}); err != nil {
				b.Fatal(err)
			}
		}
		var pids []int
		for i := range n {
			pids = append(pids, waitUp(b, s, "bench"+strconv.Itoa(i), 1, time.Minute).PID)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		time.Sleep(5 * time.Second) // the figure is CPU spent while idle
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		var rss int
		for _, pid := range pids {
			rss += rssKiB(pid)
		}
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-B/vnode")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/vnode")
		b.ReportMetric(float64(cpu.Microseconds())/n/5, "idle-cpu-µs/s/vnode")
		b.ReportMetric(float64(rss)/n, "agent-RSS-KiB/vnode")
	}
}

// rssKiB returns VmRSS of pid.
func rssKiB(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}

// cpuTicks returns utime+stime of pid in clock ticks (1/100 s).
func cpuTicks(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return u + st
}
