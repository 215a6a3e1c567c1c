package postgres_test

import (
	"testing"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/postgres"
	"github.com/walt-testbed/walt/internal/store/storetest"
)

// newBenchStore opens an empty store in a schema of its own.
func newBenchStore(b *testing.B) store.Store {
	u, err := cluster.NewSchema(b.Context(), "b")
	if err != nil {
		b.Fatal(err)
	}
	s, err := postgres.Open(b.Context(), u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// The benchmarks both backends run (internal/store/storetest/bench.go), on
// pgtest's cluster (a Unix socket) or WALT_TEST_POSTGRES:
//
//	go test -run '^$' -bench 'FinishReboots|BootStateFlush|RebootRecords' ./internal/store/postgres
func BenchmarkFinishReboots(b *testing.B)  { storetest.BenchFinishReboots(b, newBenchStore(b)) }
func BenchmarkRebootRecords(b *testing.B)  { storetest.BenchRebootRecords(b, newBenchStore(b)) }
func BenchmarkBootStateFlush(b *testing.B) { storetest.BenchBootStateFlush(b, newBenchStore(b)) }
