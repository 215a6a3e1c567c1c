package sqlite_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
	"github.com/walt-testbed/walt/internal/testutil"
)

// benchNodes is the size of the soft reboot the benchmarks replay.
const benchNodes = 1000

// benchBatch is about how many nodes the boot tracker writes at once
// while a reboot's results and boot reports come in.
const benchBatch = 50

// BenchmarkSoftRebootWrites replays the store's share of a soft reboot of
// 1000 registered nodes, as walt-server makes it: the nodes marked down in
// batches, the results recorded, then each node's boot report (Device,
// then ReportDevice), the nodes marked up and the reboots' boot times, in
// batches. Each sub-benchmark times one kind of write; ns/node is per
// rebooted node.
//
//	go test -run '^$' -bench SoftRebootWrites ./internal/store/sqlite
func BenchmarkSoftRebootWrites(b *testing.B) {
	ctx := b.Context()
	s, devs := benchStore(b)
	statuses := func(booted bool) []store.BootStatus {
		bs := make([]store.BootStatus, len(devs))
		for i, d := range devs {
			bs[i] = store.BootStatus{MAC: d.MAC, BootID: "boot", Booted: booted, Since: time.Now(), RetriesLeft: -1}
			if !booted {
				bs[i].Cause, bs[i].Method, bs[i].LastMethod = "reboot requested", "soft-reboot", "soft-reboot"
			}
		}
		return bs
	}
	inBatches := func(b *testing.B, n int, write func(lo, hi int) error) {
		for lo := 0; lo < n; lo += benchBatch {
			if err := write(lo, min(lo+benchBatch, n)); err != nil {
				b.Fatal(err)
			}
		}
	}
	// perNode reports wall and CPU time (the process's, user and system)
	// per node since cpu0.
	perNode := func(b *testing.B, cpu0 time.Duration) {
		n := float64(b.N * benchNodes)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/node")
		b.ReportMetric(float64((testutil.CPUTime(b)-cpu0).Nanoseconds())/n, "cpu-ns/node")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("BootStatuses", func(b *testing.B) {
		down, up := statuses(false), statuses(true)
		cpu0 := testutil.CPUTime(b)
		for b.Loop() {
			for _, bs := range [][]store.BootStatus{down, up} {
				inBatches(b, len(bs), func(lo, hi int) error { return s.SetBootStatuses(ctx, bs[lo:hi]) })
			}
		}
		perNode(b, cpu0)
	})
	b.Run("Reboots", func(b *testing.B) {
		rs := make([]store.Reboot, len(devs))
		cpu0 := testutil.CPUTime(b)
		for b.Loop() {
			now := time.Now()
			for i, d := range devs {
				rs[i] = store.Reboot{Batch: "bench", Requester: "bench", Cause: "bench", NodeMAC: d.MAC, NodeName: d.Name,
					Method: "soft-reboot", OK: true, RequestedAt: now, AckAt: now, FinishedAt: now,
					Attempts: []store.Attempt{{Method: "soft-reboot", Started: now, Finished: now}}}
			}
			ids, err := s.AddReboots(ctx, rs)
			if err != nil {
				b.Fatal(err)
			}
			boots := make([]store.RebootBoot, len(ids))
			for i, id := range ids {
				boots[i] = store.RebootBoot{ID: id, At: now, BootID: "boot"}
			}
			inBatches(b, len(boots), func(lo, hi int) error { return s.SetRebootsBooted(ctx, boots[lo:hi]) })
		}
		perNode(b, cpu0)
	})
	b.Run("Reports", func(b *testing.B) {
		cpu0 := testutil.CPUTime(b)
		for b.Loop() {
			for _, d := range devs {
				if _, err := s.Device(ctx, d.MAC); err != nil {
					b.Fatal(err)
				}
				d.LastSeen = time.Now()
				if _, err := s.ReportDevice(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
		}
		perNode(b, cpu0)
	})
}

// benchStore opens a store in a temporary directory with benchNodes
// registered nodes, and returns it and the nodes.
func benchStore(b *testing.B) (*sqlstore.Store, []store.Device) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), sqlite.FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	devs := make([]store.Device, benchNodes)
	for i := range devs {
		devs[i] = store.Device{MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", i/256, i%256), Name: fmt.Sprintf("node%04d", i),
			IP: fmt.Sprintf("127.70.%d.%d", i/256, i%256), Type: store.TypeNode, Model: "lab", BootMode: "network", Booted: true}
		if _, err := s.ReportDevice(b.Context(), devs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return s, devs
}

// BenchmarkFinishReboots completes the running records of a reboot of
// 1000 nodes, each with one attempt, as the history recorder does when
// the nodes' outcomes come in: in groups of 50 (outcomes arriving while a
// write is in progress) and in one group of all. Only FinishReboots is
// timed (the records are added, running, with the timer stopped); the
// metrics are per reboot finished.
//
//	go test -run '^$' -bench FinishReboots ./internal/store/sqlite
func BenchmarkFinishReboots(b *testing.B) {
	ctx := b.Context()
	s, devs := benchStore(b)
	running := make([]store.Reboot, len(devs))
	for i, d := range devs {
		running[i] = store.Reboot{Batch: "bench", Requester: "bench", Cause: "bench", NodeMAC: d.MAC, NodeName: d.Name, State: store.RebootRunning}
	}
	for _, batch := range []int{benchBatch, benchNodes} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				now := time.Now()
				for i := range running {
					running[i].RequestedAt, running[i].FinishedAt = now, now
				}
				ids, err := s.AddReboots(ctx, running)
				if err != nil {
					b.Fatal(err)
				}
				done := make([]store.Reboot, len(ids))
				for i, id := range ids {
					done[i] = running[i]
					done[i].ID, done[i].State, done[i].Method, done[i].OK, done[i].AckAt = id, store.RebootDone, "soft-reboot", true, now
					done[i].Attempts = []store.Attempt{{Method: "soft-reboot", Started: now, Finished: now}}
				}
				cpu0 := testutil.CPUTime(b)
				b.StartTimer()
				for lo := 0; lo < len(done); lo += batch {
					if err := s.FinishReboots(ctx, done[lo:min(lo+batch, len(done))]); err != nil {
						b.Fatal(err)
					}
				}
				cpu += testutil.CPUTime(b) - cpu0
			}
			reportPer(b, "reboot", cpu)
		})
	}
}

// reportPer reports the wall time and the CPU time cpu per unit, benchNodes
// units an iteration, in place of the time per iteration.
func reportPer(b *testing.B, unit string, cpu time.Duration) {
	n := float64(b.N * benchNodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/"+unit)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/"+unit)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRebootRecords writes the history of a soft reboot of 1000
// nodes as walt-server does: the batch's records added running in one
// transaction, then completed with their attempt in groups of 50. The
// history grows by 1000 records each iteration, as a campaign's does;
// the metrics are per node.
//
//	go test -run '^$' -bench RebootRecords -benchtime 50x ./internal/store/sqlite
func BenchmarkRebootRecords(b *testing.B) {
	ctx := b.Context()
	s, devs := benchStore(b)
	running := make([]store.Reboot, len(devs))
	for i, d := range devs {
		running[i] = store.Reboot{Batch: "bench", Requester: "bench", Cause: "bench", NodeMAC: d.MAC, NodeName: d.Name, State: store.RebootRunning}
	}
	cpu0 := testutil.CPUTime(b)
	for b.Loop() {
		now := time.Now()
		for i := range running {
			running[i].RequestedAt, running[i].FinishedAt = now, now
		}
		ids, err := s.AddReboots(ctx, running)
		if err != nil {
			b.Fatal(err)
		}
		done := make([]store.Reboot, len(ids))
		for i, id := range ids {
			done[i] = running[i]
			done[i].ID, done[i].State, done[i].Method, done[i].OK, done[i].AckAt = id, store.RebootDone, "soft-reboot", true, now
			done[i].Attempts = []store.Attempt{{Method: "soft-reboot", Started: now, Finished: now}}
		}
		for lo := 0; lo < len(done); lo += benchBatch {
			if err := s.FinishReboots(ctx, done[lo:min(lo+benchBatch, len(done))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(b.N * benchNodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/node")
	b.ReportMetric(float64((testutil.CPUTime(b)-cpu0).Nanoseconds())/n, "cpu-ns/node")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkBootStateFlush times the boot tracker's flush (SetBootState)
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
//	go test -run '^$' -bench BootStateFlush -benchtime 20x ./internal/store/sqlite
func BenchmarkBootStateFlush(b *testing.B) {
	ctx := b.Context()
	s, devs := benchStore(b)
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
	for _, batch := range []int{benchBatch, benchNodes} {
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
					if err := s.SetBootState(ctx, bs[lo:hi], rb[lo:hi], ls[2*lo:2*hi]); err != nil {
						b.Fatal(err)
					}
				}
				cpu += testutil.CPUTime(b) - cpu0
			}
			reportPer(b, "boot", cpu)
		})
	}
}

// BenchmarkCampaignWrites replays the store writes of a campaign in
// rounds over 1000 nodes, as the campaign engine makes them: each round,
// the campaign's round, then every node's row saying its reboot is asked
// in one transaction (before the reboots), then the iterations' ends in
// batches of 50 (the writer's batches while the boots come in). The
// campaign nodes' own rows are not written: the engine writes them only
// when a node's state changes (at most once a node and campaign). The
// campaign's rows grow by 1000 each iteration, as a campaign's do; the
// metrics are per boot.
//
//	go test -run '^$' -bench CampaignWrites -count 6 ./internal/store/sqlite
func BenchmarkCampaignWrites(b *testing.B) {
	ctx := b.Context()
	s, devs := benchStore(b)
	nodes := make([]store.CampaignNode, len(devs))
	for i, d := range devs {
		nodes[i] = store.CampaignNode{MAC: d.MAC, Name: d.Name, Model: d.Model, State: "active"}
	}
	c := store.Campaign{Name: "bench", Requester: "bench", Set: "all-nodes", Mode: "rounds", Repeat: 10000, Quarantine: 2,
		BootTimeout: 5 * time.Minute, State: "running", CreatedAt: time.Now()}
	id, err := s.AddCampaign(ctx, c, nodes)
	if err != nil {
		b.Fatal(err)
	}
	c.ID = id
	rows := make([]store.CampaignBoot, len(devs))
	cpu0 := testutil.CPUTime(b)
	for b.Loop() {
		c.Round++
		if err := s.UpdateCampaign(ctx, c); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for i, d := range devs {
			rows[i] = store.CampaignBoot{Campaign: id, MAC: d.MAC, Name: d.Name, Iteration: c.Round, PrevBootID: "boot",
				RequestedAt: now, Status: -1, Outcome: "requested"}
		}
		if err := s.SaveCampaignProgress(ctx, nil, rows); err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			rows[i].RebootID, rows[i].Method, rows[i].AckAt, rows[i].DownAt = "r", "soft-reboot", now, now
			rows[i].BootedAt, rows[i].BootID, rows[i].Outcome = now.Add(500*time.Millisecond), "boot", "completed"
		}
		for lo := 0; lo < len(rows); lo += benchBatch {
			hi := min(lo+benchBatch, len(rows))
			if err := s.SaveCampaignProgress(ctx, nil, rows[lo:hi]); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(b.N * benchNodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/boot")
	b.ReportMetric(float64((testutil.CPUTime(b)-cpu0).Nanoseconds())/n, "cpu-ns/boot")
	b.ReportMetric(0, "ns/op")
}
