package metrics

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/store/storetest"
	"github.com/walt-testbed/walt/internal/vocab"
)

func TestStoreTimed(t *testing.T) {
	t.Parallel()
	raw, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	m := New(nil)
	st := m.Store(raw)
	ctx := t.Context()
	if err := st.AddDevice(ctx, store.Device{MAC: "52:54:00:00:00:01", Name: "n1", Type: store.TypeNode}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDevice(ctx, store.Device{MAC: "52:54:00:00:00:01", Name: "n1", Type: store.TypeNode}); !errors.Is(err, vocab.ErrConflict) {
		t.Fatalf("AddDevice(twice) = %v, want ErrConflict", err)
	}
	if _, err := st.Device(ctx, "52:54:00:00:00:99"); !errors.Is(err, vocab.ErrNotFound) {
		t.Fatalf("Device(unknown) = %v, want ErrNotFound", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Devices(canceled); err == nil {
		t.Fatal("Devices(canceled context) = nil error, want one")
	}
	want := `
# HELP walt_store_request_errors_total Store calls that failed (not-found answers excepted), by operation.
# TYPE walt_store_request_errors_total counter
walt_store_request_errors_total{op="add_device"} 1
walt_store_request_errors_total{op="device"} 0
walt_store_request_errors_total{op="devices"} 1
`
	if err := prom.GatherAndCompare(m.Registry(), strings.NewReader(want), "walt_store_request_errors_total"); err != nil {
		t.Error(err)
	}
	if n := prom.CollectAndCount(m.storeLatency); n != 3 {
		t.Errorf("store latency series = %d, want 3 (add_device, device, devices)", n)
	}
}

// TestStoreConformance runs the store suite through the timed store: it
// passes every call and answer through unchanged.
func TestStoreConformance(t *testing.T) {
	m := New(nil)
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		path := filepath.Join(t.TempDir(), sqlite.FileName)
		open := func() store.Store {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("open %s: %v", path, err)
			}
			return m.Store(s)
		}
		cur := open()
		t.Cleanup(func() { cur.Close() })
		return cur, func() store.Store {
			cur.Close()
			cur = open()
			return cur
		}
	})
}

// TestStoreTimesEveryMethod fails for a store.Store method that timedStore
// only inherits from the store it embeds (the compiler's wrapper, not
// store.go's).
func TestStoreTimesEveryMethod(t *testing.T) {
	t.Parallel()
	iface := reflect.TypeFor[store.Store]()
	impl := reflect.TypeFor[timedStore]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		m, ok := impl.MethodByName(name)
		if !ok {
			t.Fatalf("timedStore has no method %s", name)
		}
		file, _ := runtime.FuncForPC(m.Func.Pointer()).FileLine(m.Func.Pointer())
		if filepath.Base(file) != "store.go" || !strings.Contains(file, "metrics") {
			t.Errorf("timedStore.%s is defined in %s, want internal/metrics/store.go: time it there", name, file)
		}
	}
}
