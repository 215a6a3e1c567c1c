package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/store/storetest"
	"github.com/walt-testbed/walt/internal/testutil"
)

const (
	benchNodes = storetest.BenchNodes
	benchBatch = storetest.BenchBatch
)

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
func benchStore(b *testing.B) (store.Store, []store.Device) {
	s := newBenchStore(b)
	return s, storetest.AddBenchNodes(b, s)
}

// newBenchStore opens an empty store in a temporary directory.
func newBenchStore(b *testing.B) store.Store {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), sqlite.FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// The benchmarks both backends run (internal/store/storetest/bench.go):
//
//	go test -run '^$' -bench 'FinishReboots|BootStateFlush|RebootRecords' ./internal/store/sqlite
func BenchmarkFinishReboots(b *testing.B)  { storetest.BenchFinishReboots(b, newBenchStore(b)) }
func BenchmarkRebootRecords(b *testing.B)  { storetest.BenchRebootRecords(b, newBenchStore(b)) }
func BenchmarkBootStateFlush(b *testing.B) { storetest.BenchBootStateFlush(b, newBenchStore(b)) }

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
