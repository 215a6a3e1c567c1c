// Package metrics is walt-server's Prometheus instrumentation: reboots by
// method and outcome, hard-reboot fallbacks, boot durations, node states,
// API latency per route, and the Go runtime and process collectors, all on
// a registry of its own (never the client library's global one), served as
// GET /metrics.
//
// Label values are bounded sets: reboot methods are the engine's and the
// drivers' names, outcomes are reboot.ErrorCode's kinds, routes are the
// API's mux patterns (never raw paths), node states are the API's three.
// No label carries a node name, a requester or anything secret.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
)

// OutcomeOK is the outcome label of a node rebooted.
const OutcomeOK = "ok"

// unmatched is the route label of a request no API route matched.
const unmatched = "unmatched"

// maxPending bounds the reboots waiting for their node's boot (one per
// node at most: a node's new reboot supersedes its previous one).
const maxPending = 100000

// NodeStates counts the nodes in each state (api.StateBooted, StateBooting,
// StateDown); it is called at each scrape.
type NodeStates func() (map[string]int, error)

// Metrics holds walt-server's metrics. It is safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	reboots      *prometheus.CounterVec
	fallbacks    prometheus.Counter
	bootDuration prometheus.Histogram
	apiLatency   *prometheus.HistogramVec
	snmpLatency  *prometheus.HistogramVec
	snmpErrors   *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
	storeErrors  *prometheus.CounterVec
	iterations   *prometheus.CounterVec

	mu sync.Mutex
	// pending: the reboots waiting for their node's new boot, by record
	// ID, with the MAC's latest reboot in byMAC. +checklocks:mu
	pending map[string]pendingBoot
	byMAC   map[string]string // +checklocks:mu
}

type pendingBoot struct {
	mac       string
	requested time.Time
}

// New returns walt-server's metrics on a new registry. states, if not nil,
// gives walt_nodes at each scrape.
func New(states NodeStates) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reboots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walt_reboots_total",
			Help: "Node reboots by the method that rebooted the node (or the last one tried) and outcome (ok, or the error kind).",
		}, []string{"method", "outcome"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walt_hard_reboot_fallbacks_total",
			Help: "Hard reboots tried because a node's soft reboot failed.",
		}),
		bootDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walt_boot_duration_seconds",
			Help:    "Time from a reboot request to the node's report of its new boot.",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200},
		}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "walt_api_request_duration_seconds",
			Help:    "API request latency by route pattern and status code; streamed answers count until their stream ends.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "code"}),
		snmpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "walt_snmp_request_duration_seconds",
			Help:    "SNMP request latency by switch and operation (get, set, walk), retries included, failures too.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"switch", "op"}),
		snmpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walt_snmp_request_errors_total",
			Help: "SNMP requests that got no valid answer (timeout, unreachable, malformed reply), by switch and operation.",
		}, []string{"switch", "op"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "walt_store_request_duration_seconds",
			Help:    "Store call latency by operation (devices, add_reboots, ...).",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walt_store_request_errors_total",
			Help: "Store calls that failed (not-found answers excepted), by operation.",
		}, []string{"op"}),
		iterations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walt_campaign_iterations_total",
			Help: "Campaign iterations ended, by outcome (completed, failed, done-timeout, stopped).",
		}, []string{"outcome"}),
		pending: map[string]pendingBoot{},
		byMAC:   map[string]string{},
	}
	m.reg.MustRegister(m.reboots, m.fallbacks, m.bootDuration, m.apiLatency, m.snmpLatency, m.snmpErrors, m.storeLatency, m.storeErrors, m.iterations,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if states != nil {
		m.reg.MustRegister(&stateCollector{states: states})
	}
	return m
}

// CampaignIteration counts a campaign iteration that ended with outcome.
func (m *Metrics) CampaignIteration(outcome string) { m.iterations.WithLabelValues(outcome).Inc() }

// CampaignsRunning registers walt_campaigns_running, read from running at
// each scrape.
func (m *Metrics) CampaignsRunning(running func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "walt_campaigns_running",
		Help: "Campaigns running on this server.",
	}, func() float64 { return float64(running()) }))
}

// Registry returns the registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text (or negotiated) format.
// A failing collector (walt_nodes when the store does not answer) leaves
// its metric out, logged at Warn on log, and the others are served.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// RebootStarted notes that the reboot recorded as id starts on node mac at
// at; the node's next boot (Booted with the same id) gives its boot
// duration. A node's previous reboot still waiting is forgotten.
func (m *Metrics) RebootStarted(mac, id string, at time.Time) {
	if id == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byMAC[mac]; ok {
		delete(m.pending, old)
	}
	if len(m.pending) >= maxPending {
		return
	}
	m.pending[id] = pendingBoot{mac: mac, requested: at}
	m.byMAC[mac] = id
}

// Booted notes that the reboot recorded as id completed with its node's
// new boot at at.
func (m *Metrics) Booted(id string, at time.Time) {
	m.mu.Lock()
	p, ok := m.pending[id]
	if ok {
		delete(m.pending, id)
		if m.byMAC[p.mac] == id {
			delete(m.byMAC, p.mac)
		}
	}
	m.mu.Unlock()
	if ok && !at.Before(p.requested) {
		m.bootDuration.Observe(at.Sub(p.requested).Seconds())
	}
}

// RebootFinished counts one node's reboot outcome. A result that joined a
// reboot in progress is not counted: the reboot it joined is.
func (m *Metrics) RebootFinished(r reboot.Result) {
	if r.Joined {
		return
	}
	method, outcome := r.Method, OutcomeOK
	if !r.OK {
		method, outcome = "none", reboot.ErrorCode(r.Err())
		if n := len(r.Attempts); n > 0 {
			method = r.Attempts[n-1].Method
		}
	}
	m.reboots.WithLabelValues(method, outcome).Inc()
	if len(r.Attempts) > 1 && r.Attempts[0].Method == reboot.MethodSoft && r.Attempts[0].Err != nil {
		m.fallbacks.Inc()
	}
}

// SNMPRequest observes one SNMP request to a switch (a
// poe.RequestObserver). The switch label is its name, as GET
// /api/v1/devices shows it.
func (m *Metrics) SNMPRequest(switchName, op string, elapsed time.Duration, err error) {
	m.snmpLatency.WithLabelValues(switchName, op).Observe(elapsed.Seconds())
	c := m.snmpErrors.WithLabelValues(switchName, op) // a switch's series start at 0
	if err != nil {
		c.Inc()
	}
}

// Observer returns an engine Observer that counts each outcome, then
// passes both calls on to next.
func (m *Metrics) Observer(next reboot.Observer) reboot.Observer {
	return observer{m: m, next: next}
}

type observer struct {
	m    *Metrics
	next reboot.Observer
}

func (o observer) Started(i int, n reboot.Node) { o.next.Started(i, n) }

func (o observer) Finished(i int, r reboot.Result) {
	o.m.RebootFinished(r)
	o.next.Finished(i, r)
}

// Instrument times the requests h serves, labelled by the route pattern
// the mux matched (r.Pattern, set by http.ServeMux on the request it is
// given) and the status code.
func (m *Metrics) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = unmatched
		}
		m.apiLatency.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code; Unwrap keeps
// http.ResponseController (flushes, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// FlushError and Flush let handlers stream through the wrapper, with
// http.ResponseController or http.Flusher.
func (w *statusWriter) FlushError() error {
	w.wroteHeader = true
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Flush() { _ = w.FlushError() }

var nodesDesc = prometheus.NewDesc("walt_nodes", "Nodes by boot state (booted, booting, down), as GET /api/v1/nodes shows them.", []string{"state"}, nil)

// stateCollector gives walt_nodes from the server's boot tracker at each
// scrape.
type stateCollector struct{ states NodeStates }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- nodesDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.states()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(nodesDesc, err)
		return
	}
	for _, s := range []string{api.StateBooted, api.StateBooting, api.StateDown} {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
