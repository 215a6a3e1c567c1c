package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The benchmarks of the store's writes that both backends run, each on a
// fresh store (BenchmarkXxx in internal/store/sqlite and postgres).

// BenchNodes is the size of the reboot the benchmarks replay.
const BenchNodes = 1000

// BenchBatch is about how many nodes the boot tracker and the history
// recorder write at once while a reboot's results and boot reports come
// in.
const BenchBatch = 50

// AddBenchNodes registers BenchNodes nodes in s and returns them.
func AddBenchNodes(b *testing.B, s store.Store) []store.Device {
	devs := make([]store.Device, BenchNodes)
	for i := range devs {
		devs[i] = store.Device{MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", i/256, i%256), Name: fmt.Sprintf("node%04d", i),
			IP: fmt.Sprintf("127.70.%d.%d", i/256, i%256), Type: store.TypeNode, Model: "lab", BootMode: "network", Booted: true}
		if _, err := s.ReportDevice(b.Context(), devs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return devs
}

// BenchFinishReboots completes the running records of a reboot of
// 1000 nodes, each with one attempt, as the history recorder does when
// the nodes' outcomes come in: in groups of 50 (outcomes arriving while a
// write is in progress) and in one group of all. Only FinishReboots is
// timed (the records are added, running, with the timer stopped); the
// metrics are per reboot finished.
//
//	go test -run '^$' -bench FinishReboots ./internal/store/sqlite (or postgres)
func BenchFinishReboots(b *testing.B, s store.Store) {
	devs := AddBenchNodes(b, s)
	running := make([]store.Reboot, len(devs))
	for i, d := range devs {
		running[i] = store.Reboot{Batch: "bench", Requester: "bench", Cause: "bench", NodeMAC: d.MAC, NodeName: d.Name, State: store.RebootRunning}
	}
	for _, batch := range []int{BenchBatch, BenchNodes} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				done := addRunning(b, s, running)
				cpu0 := testutil.CPUTime(b)
				b.StartTimer()
				finishAll(b, s, done, batch)
				cpu += testutil.CPUTime(b) - cpu0
			}
			reportPer(b, "reboot", cpu)
		})
	}
}

// addRunning adds running, requested now, and returns the records
// completing them, each with one attempt.
func addRunning(b *testing.B, s store.Store, running []store.Reboot) []store.Reboot {
	now := time.Now()
	for i := range running {
		running[i].RequestedAt, running[i].FinishedAt = now, now
	}
	ids, err := s.AddReboots(b.Context(), running)
	if err != nil {
		b.Fatal(err)
	}
	done := make([]store.Reboot, len(ids))
	for i, id := range ids {
		done[i] = running[i]
		done[i].ID, done[i].State, done[i].Method, done[i].OK, done[i].AckAt = id, store.RebootDone, "soft-reboot", true, now
		done[i].Attempts = []store.Attempt{{Method: "soft-reboot", Started: now, Finished: now}}
	}
	return done
}

// finishAll completes done in calls of batch records.
func finishAll(b *testing.B, s store.Store, done []store.Reboot, batch int) {
	for lo := 0; lo < len(done); lo += batch {
		if err := s.FinishReboots(b.Context(), done[lo:min(lo+batch, len(done))]); err != nil {
			b.Fatal(err)
		}
	}
}

// reportPer reports the wall time and the CPU time cpu per unit, BenchNodes
// units an iteration, in place of the time per iteration.
func reportPer(b *testing.B, unit string, cpu time.Duration) {
	n := float64(b.N * BenchNodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/"+unit)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/"+unit)
	b.ReportMetric(0, "ns/op")
}

// BenchRebootRecords writes the history of a soft reboot of 1000
// nodes as walt-server does: the batch's records added running in one
// transaction, then completed with their attempt in groups of 50. The
// history grows by 1000 records each iteration, as a campaign's does;
// the metrics are per node.
//
//	go test -run '^$' -bench RebootRecords -benchtime 50x ./internal/store/sqlite (or postgres)
func BenchRebootRecords(b *testing.B, s store.Store) {
	devs := AddBenchNodes(b, s)
	running := make([]store.Reboot, len(devs))
	for i, d := range devs {
		running[i] = store.Reboot{Batch: "bench", Requester: "bench", Cause: "bench", NodeMAC: d.MAC, NodeName: d.Name, State: store.RebootRunning}
	}
	cpu0 := testutil.CPUTime(b)
	for b.Loop() {
		finishAll(b, s, addRunning(b, s, running), BenchBatch)
	}
	n := float64(b.N * BenchNodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/node")
	b.ReportMetric(float64((testutil.CPUTime(b)-cpu0).Nanoseconds())/n, "cpu-ns/node")
	b.ReportMetric(0, "ns/op")
}

// BenchBootStateFlush times the boot tracker's flush (SetBootState)
// of the boots of 1000 nodes: per boot, the node's boot status (down at
// one iteration, up at the next, a new boot each time), the boot time of
// the reboot that caused it and two platform log lines, as the flusher
// writes them while a reboot's boot reports come in (in groups of 50)
// and in one group of all. The nodes come in a new random order each
// time, as reports do (and as the tracker's map of changed nodes gives
// them): the rows of a group are spread over the tables' pages. Only
// SetBootState is timed; the log grows by 2000 lines each iteration; the
// metrics are per boot.
//
//	go test -run '^$' -bench BootStateFlush -benchtime 20x ./internal/store/sqlite (or postgres)
func BenchBootStateFlush(b *testing.B, s store.Store) {
	ctx := b.Context()
	sw, ok := s.(bootStateWriter)
	if !ok {
		b.Skip("no SetBootState")
	}
	devs := AddBenchNodes(b, s)
	running := make([]store.Reboot, len(devs))
	now := time.Now()
	for i, d := range devs {
		running[i] = store.Reboot{Batch: "bench", Requester: "bench", Cause: "bench", NodeMAC: d.MAC, NodeName: d.Name,
			RequestedAt: now, State: store.RebootRunning}
	}
	ids, err := s.AddReboots(ctx, running)
	if err != nil {
		b.Fatal(err)
	}
	var seq int64
	iter := 0
	for _, batch := range []int{BenchBatch, BenchNodes} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			bs := make([]store.BootStatus, len(devs))
			rb := make([]store.RebootBoot, len(devs))
			ls := make([]store.LogLine, 2*len(devs))
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				iter++
				now := time.Now()
				up := iter%2 == 0
				for i, k := range rand.Perm(len(devs)) {
					d := devs[k]
					bs[i] = store.BootStatus{MAC: d.MAC, BootID: fmt.Sprintf("boot-%d", iter), Booted: up, Since: now,
						LastMethod: "soft-reboot", RetriesLeft: -1, LastSeen: now}
					if !up {
						bs[i].Cause, bs[i].Method, bs[i].RetriesLeft = "reboot requested", "soft-reboot", 2
					}
					rb[i] = store.RebootBoot{ID: ids[k], BootID: bs[i].BootID, At: now}
					for j, line := range []string{"node " + d.Name + " is down (soft-reboot requested)", "node " + d.Name + " is booted"} {
						seq++
						ls[2*i+j] = store.LogLine{Seq: seq, At: now, Stream: "platform.nodes", Node: d.Name, Line: line}
					}
				}
				cpu0 := testutil.CPUTime(b)
				b.StartTimer()
				for lo := 0; lo < len(devs); lo += batch {
					hi := min(lo+batch, len(devs))
					if err := sw.SetBootState(ctx, bs[lo:hi], rb[lo:hi], ls[2*lo:2*hi]); err != nil {
						b.Fatal(err)
					}
				}
				cpu += testutil.CPUTime(b) - cpu0
			}
			reportPer(b, "boot", cpu)
		})
	}
}
