package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/testutil"
)

func attempt(method string, err error) reboot.Attempt {
	return reboot.Attempt{Method: method, Err: err}
}

func TestRebootFinished(t *testing.T) {
	t.Parallel()
	m := New(nil)
	refused := &netservice.Error{Kind: netservice.KindRefused, Err: errors.New("connection refused")}
	for _, r := range []reboot.Result{
		{OK: true, Method: reboot.MethodSoft, Attempts: []reboot.Attempt{attempt(reboot.MethodSoft, nil)}},
		{OK: true, Method: reboot.MethodSoft, Attempts: []reboot.Attempt{attempt(reboot.MethodSoft, nil)}},
		// A soft failure, then PoE: a fallback that worked.
		{OK: true, Method: "PoE-reboot", Attempts: []reboot.Attempt{attempt(reboot.MethodSoft, refused), attempt("PoE-reboot", nil)}},
		// A soft failure, then no driver: a fallback that failed.
		{Attempts: []reboot.Attempt{attempt(reboot.MethodSoft, refused), attempt(reboot.MethodHard, reboot.ErrNoMethod)}},
		// hard=true: no fallback.
		{OK: true, Method: "PoE-reboot", Attempts: []reboot.Attempt{attempt("PoE-reboot", nil)}},
		// Joined: counted by the reboot it joined.
		{OK: true, Method: reboot.MethodSoft, Joined: true, Attempts: []reboot.Attempt{attempt(reboot.MethodSoft, nil)}},
	} {
		m.RebootFinished(r)
	}
	want := `
# HELP walt_reboots_total Node reboots by the method that rebooted the node (or the last one tried) and outcome (ok, or the error kind).
# TYPE walt_reboots_total counter
walt_reboots_total{method="PoE-reboot",outcome="ok"} 2
walt_reboots_total{method="hard-reboot",outcome="no-method"} 1
walt_reboots_total{method="soft-reboot",outcome="ok"} 2
# HELP walt_hard_reboot_fallbacks_total Hard reboots tried because a node's soft reboot failed.
# TYPE walt_hard_reboot_fallbacks_total counter
walt_hard_reboot_fallbacks_total 2
`
	if err := prom.GatherAndCompare(m.Registry(), strings.NewReader(want), "walt_reboots_total", "walt_hard_reboot_fallbacks_total"); err != nil {
		t.Error(err)
	}
}

func TestBootDuration(t *testing.T) {
	t.Parallel()
	m := New(nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.RebootStarted("mac1", "r1", t0)
	m.RebootStarted("mac2", "r2", t0)
	m.RebootStarted("mac2", "r3", t0.Add(time.Second)) // supersedes r2
	m.Booted("r1", t0.Add(42*time.Second))
	m.Booted("r1", t0.Add(50*time.Second)) // once only
	m.Booted("r2", t0.Add(10*time.Second)) // superseded
	m.Booted("r3", t0.Add(8*time.Second))
	m.Booted("unknown", t0)
	if n := prom.CollectAndCount(m.bootDuration); n != 1 {
		t.Fatalf("histogram series = %d, want 1", n)
	}
	got, err := prom.GatherAndFormat(m.Registry(), expfmt.TypeTextPlain, "walt_boot_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"walt_boot_duration_seconds_count 2",
		"walt_boot_duration_seconds_sum 49",
		`walt_boot_duration_seconds_bucket{le="10"} 1`,
		`walt_boot_duration_seconds_bucket{le="45"} 2`,
	} {
		if !strings.Contains(string(got), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, got)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) != 0 || len(m.byMAC) != 0 {
		t.Errorf("pending after every boot: %v %v, want none", m.pending, m.byMAC)
	}
}

func TestNodeStates(t *testing.T) {
	t.Parallel()
	var fail error
	m := New(func() (map[string]int, error) {
		return map[string]int{api.StateBooted: 3, api.StateDown: 1}, fail
	})
	want := `
# HELP walt_nodes Nodes by boot state (booted, booting, down), as GET /api/v1/nodes shows them.
# TYPE walt_nodes gauge
walt_nodes{state="booted"} 3
walt_nodes{state="booting"} 0
walt_nodes{state="down"} 1
`
	if err := prom.GatherAndCompare(m.Registry(), strings.NewReader(want), "walt_nodes"); err != nil {
		t.Error(err)
	}
	// A store that fails leaves walt_nodes out; the rest is served.
	fail = errors.New("store down")
	logs := new(testutil.Buffer)
	hs := httptest.NewServer(m.Handler(slog.New(slog.NewTextHandler(logs, nil))))
	defer hs.Close()
	body := get(t, hs.URL)
	if strings.Contains(body, "walt_nodes{") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("scrape with a failing store:\n%s\nwant go_goroutines and no walt_nodes", body)
	}
	if !strings.Contains(logs.String(), "store down") {
		t.Errorf("log %q does not say why walt_nodes is missing", logs.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstrumentUsesPatterns(t *testing.T) {
	t.Parallel()
	m := New(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/switches/{name}/ports", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "a")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the wrapper: %v", err)
		}
	})
	hs := httptest.NewServer(m.Instrument(mux))
	defer hs.Close()
	for _, p := range []string{"/api/v1/switches/sw1/ports", "/api/v1/switches/sw2/ports", "/stream", "/nothing/here"} {
		get(t, hs.URL+p)
	}
	got, err := prom.GatherAndFormat(m.Registry(), expfmt.TypeTextPlain, "walt_api_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`walt_api_request_duration_seconds_count{code="418",route="GET /api/v1/switches/{name}/ports"} 2`,
		`walt_api_request_duration_seconds_count{code="200",route="GET /stream"} 1`,
		`walt_api_request_duration_seconds_count{code="404",route="unmatched"} 1`,
	} {
		if !strings.Contains(string(got), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, got)
		}
	}
	if strings.Contains(string(got), "sw1") {
		t.Errorf("a raw path is a label:\n%s", got)
	}
}
