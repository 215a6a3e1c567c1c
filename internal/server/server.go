// Package server is walt-server's HTTP/JSON API under /api/v1: inventory,
// node registration, settings, ownership and reboots. Errors are mapped to
// HTTP statuses and wire codes in one table (errors.go); reboots stream
// per-node progress as NDJSON.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/campaign"
	"github.com/walt-testbed/walt/internal/campaignstats"
	"github.com/walt-testbed/walt/internal/history"
	"github.com/walt-testbed/walt/internal/metrics"
	"github.com/walt-testbed/walt/internal/powersave"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Config configures a Server.
type Config struct {
	// Listen is the TCP address of the API, e.g. ":12345".
	Listen string
	Store  store.Store
	// ServerID names this server among those that share Store: the id
	// walt-server keeps in its data directory. Its reboot records carry
	// it, and New marks interrupted only the running records that carry
	// it, or none (store.InterruptReboots). Empty: its records carry none.
	ServerID string
	Reboot   reboot.Config
	// PoE, if not nil, serves walt device rescan and port-config and
	// switches ports for powersave (topology.go).
	PoE PoE
	// Powersave is how long a free node on a switch with poe.reboots=true
	// stays idle before its port is switched off (powersave.go); 0
	// disables powersave. walt-server's default is DefaultPowersave.
	Powersave time.Duration
	// NodePort is the agents' TCP port; default 12346.
	NodePort int
	// ShutdownGrace bounds the wait for requests in progress at shutdown.
	ShutdownGrace time.Duration
	// ReadTimeout bounds reading one request, body included (bodies are at
	// most 1 MiB); WriteTimeout bounds an answer, or for a streamed answer
	// each write (stream.go); IdleTimeout closes a keep-alive connection
	// idle that long. 0: DefaultReadTimeout, DefaultWriteTimeout,
	// DefaultIdleTimeout.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns bounds the connections open at once, MaxConnsPerPeer
	// those of one address other than this host's loopback (connlimit.go);
	// 0: DefaultMaxConns, DefaultMaxConnsPerPeer (at most MaxConns).
	MaxConns, MaxConnsPerPeer int
	// Boot configures boot tracking (heartbeats, silence, watchdog).
	Boot boot.Config
	// VNodes runs the virtual nodes; nil: none. wiring.Drivers sets it
	// with Reboot.Virtual, the hard reboot through it.
	VNodes VNodes
	// TLS, if not nil, serves the API over TLS (tls.go); plain HTTP is
	// then taken from loopback peers only. nil: plain HTTP (walt-server
	// allows it on loopback, elsewhere only with --tls=off).
	TLS *tls.Config
	// SharedStore says that other processes write Store's inventory too
	// (PostgreSQL shared by several servers): node reports and
	// heartbeats then read each device from the store, where otherwise
	// they use what this server read or wrote last (devicecache.go).
	SharedStore bool
	// Version and StoreName are reported by GET /api/v1/health.
	Version, StoreName string
	Logger             *slog.Logger
}

// Server serves the API.
type Server struct {
	cfg     Config
	store   store.Store
	devices *deviceCache // store, as node traffic reads it
	engine  *reboot.Engine
	history *history.Recorder
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler // mux, timed by metrics
	metrics *metrics.Metrics
	boots   *boot.Tracker
	// campaigns runs the reboot campaigns (campaign.go).
	campaigns *campaign.Engine
	wake      wakeHook
	// doneReply fills the answers to done reports (done.go).
	doneReply doneReplier

	ps       *powersave.Powersave
	rescanMu sync.Mutex // one rescan applies its findings at a time

	vn       vnodeState
	start    startup
	auditLog auditTrail // wakes GET /api/v1/audit followers (audit.go)
	// refusedNode rate-limits the log of refused node traffic (nodeauth.go).
	refusedNode rateLog
	// streams ends long responses (console follow) at shutdown.
	streams     context.Context
	stopStreams context.CancelFunc
	sseOpen     atomic.Int64 // event streams open (sse.go)
}

// New returns a Server. It reads what it needs from cfg.Store on ctx (the
// boot states, the reboots a previous server of its id left running, which
// it marks interrupted) and starts nothing. The caller keeps ownership of
// cfg.Store, and closes it after Serve (or Close) has returned.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server config: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodePort == 0 {
		cfg.NodePort = 12346
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if err := connDefaults(&cfg); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	cfg.Reboot.Logger = cfg.Logger
	s := &Server{log: cfg.Logger, mux: http.NewServeMux(), vn: vnodeState{sup: cfg.VNodes}}
	s.metrics = metrics.New(s.nodeStates)
	cfg.Reboot.Methods = meterPower(cfg.Reboot.Methods, s.metrics)
	eng, err := reboot.New(cfg.Reboot)
	if err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s.engine = eng
	cfg.Store = s.metrics.Store(cfg.Store) // the server's store calls, timed
	// The handlers', through the cache of node traffic (devicecache.go):
	// every device write is theirs. The services below write no device
	// but its Booted and LastSeen (the tracker), and keep the store's
	// optional powers (the tracker's one-transaction flush).
	s.devices = newDeviceCache(cfg.Store, cfg.SharedStore)
	s.cfg, s.store = cfg, s.devices
	s.observePoE()
	s.start.at = time.Now()
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	s.history = history.New(cfg.Store, cfg.ServerID, cfg.Logger)
	if err := s.history.Recover(ctx); err != nil {
		return nil, fmt.Errorf("server start: %w", err)
	}
	if s.boots, err = boot.New(ctx, cfg.Boot, bootStore{cfg.Store, s.metrics}, cfg.Logger, watchdog{s}); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	if err := s.restoreAwaited(ctx); err != nil {
		// The boots of those nodes say "unknown"; nothing else is lost.
		s.log.Error("boot tracking: cannot read the reboots still waiting for their boot", "err", err)
	}
	s.campaigns = campaign.New(campaign.Config{Store: cfg.Store, Rebooter: campaignRebooter{s}, Owners: campaignRebooter{s}, Boots: s.boots, Logger: cfg.Logger,
		OnIteration: s.metrics.CampaignIteration})
	s.metrics.CampaignsRunning(s.campaigns.Running)
	s.SetDoneReplier(func(ctx context.Context, mac string, d boot.Done) (api.DoneReply, error) {
		ctx, cancel := context.WithTimeoutCause(ctx, doneStoreWait, fmt.Errorf("no commit within %s", doneStoreWait))
		defer cancel()
		c, it, err := s.campaigns.DoneStored(ctx, mac, d.BootID)
		return api.DoneReply{Campaign: c, Iteration: it}, err
	})
	s.ps = powersave.New(powersave.Config{Idle: cfg.Powersave, Store: cfg.Store, PoE: cfg.PoE, Tracker: s.boots, Logger: cfg.Logger})
	s.routes()
	s.handler = s.metrics.Instrument(s.authenticate(s.mux))
	return s, nil
}

func (s *Server) routes() {
	p := api.Prefix
	s.mux.HandleFunc("GET "+p+"/health", s.health)
	s.mux.HandleFunc("GET "+p+"/nodes", s.listNodes)
	s.mux.HandleFunc("GET "+p+"/devices", s.listDevices)
	s.mux.HandleFunc("POST "+p+"/devices", jsonHandler(s.log, http.StatusCreated, s.addDevice))
	s.mux.HandleFunc("DELETE "+p+"/devices/{name}", s.forgetDevice)
	s.mux.HandleFunc("POST "+p+"/node-reports", jsonHandler(s.log, http.StatusOK, s.nodeReport))
	s.mux.HandleFunc("POST "+p+"/node-done", jsonHandler(s.log, http.StatusOK, s.nodeDone))
	s.mux.HandleFunc("GET "+p+"/config", s.showConfig)
	s.mux.HandleFunc("POST "+p+"/config", jsonHandler(s.log, http.StatusOK, s.setConfig))
	s.mux.HandleFunc("POST "+p+"/ownership", jsonHandler(s.log, http.StatusOK, s.changeOwnership))
	s.mux.HandleFunc("PUT "+p+"/links", s.setLink)
	s.mux.HandleFunc("POST "+p+"/rescans", jsonHandler(s.log, http.StatusOK, s.rescan))
	s.mux.HandleFunc("GET "+p+"/topology", s.topology)
	s.mux.HandleFunc("GET "+p+"/switches/{name}/ports", s.switchPorts)
	s.mux.HandleFunc("POST "+p+"/reboots", s.reboot)
	s.mux.HandleFunc("GET "+p+"/reboots", s.listReboots)
	s.mux.HandleFunc("POST "+p+"/heartbeats", jsonHandler(s.log, http.StatusOK, s.heartbeats))
	s.mux.HandleFunc("POST "+p+"/waits", s.wait)
	s.mux.HandleFunc("GET "+p+"/logs", s.logs)
	s.mux.HandleFunc("POST "+p+"/campaigns", jsonHandler(s.log, http.StatusCreated, s.startCampaign))
	s.mux.HandleFunc("GET "+p+"/campaigns", s.listCampaigns)
	s.mux.HandleFunc("GET "+p+"/campaigns/{id}", s.showCampaign)
	s.mux.HandleFunc("POST "+p+"/campaigns/{id}/stop", s.stopCampaign)
	s.mux.HandleFunc("GET "+p+"/campaigns/{id}/boots", s.campaignRows(func(_ api.Campaign, b []api.CampaignBoot) any { return api.CampaignBootList{Boots: b} }))
	s.mux.HandleFunc("GET "+p+"/campaigns/{id}/events", s.campaignEvents)
	s.mux.HandleFunc("GET "+p+"/campaigns/{id}/stats", s.campaignRows(func(c api.Campaign, b []api.CampaignBoot) any { return campaignstats.Stats(c, b) }))
	s.mux.HandleFunc("GET "+p+"/campaign-comparisons", s.compareCampaigns)
	s.mux.HandleFunc("DELETE "+p+"/quarantine/{node}", s.clearQuarantine)
	s.mux.HandleFunc("GET "+p+"/whoami", s.whoami)
	s.mux.HandleFunc("GET "+p+"/audit", s.audit)
	s.vnodeRoutes()
	s.dashboardRoutes()
	s.mux.Handle("GET /metrics", s.metrics.Handler(s.log))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.log, kindf(vocab.ErrNotFound, "no API endpoint %s %s (this server speaks API %s)", r.Method, r.URL.Path, api.Version))
	})
}

// Handler returns the API's HTTP handler, GET /metrics included, tokens
// checked (auth.go).
func (s *Server) Handler() http.Handler { return s.handler }

// A Task is work Serve runs beside the API, in its errgroup, on a context
// that ends once the API has shut down. Starting, if not empty, names
// start-up work that GET /api/v1/health lists until Run returns ("restore
// PoE"); work that lasts (the vnode supervisor) has none.
type Task struct {
	Starting string
	Run      func(ctx context.Context)
}

// Run serves the API on cfg.Listen until ctx ends, then shuts down within
// ShutdownGrace. It returns nil on a clean stop.
func (s *Server) Run(ctx context.Context, tasks ...Task) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln, tasks...)
}

// Serve is Run on an existing listener, which it closes.
//
// Lifecycle: Serve owns every goroutine the server starts, in one errgroup:
// the HTTP server, the boot tracker (sweeps, watchdog, flusher), the
// powersave loop and the caller's tasks. When ctx ends (or the HTTP server
// fails), the API stops taking requests and waits up to ShutdownGrace for
// those in progress; then the tracker, powersave and the tasks stop, the
// tracker writing what it has pending. Serve returns once all have
// stopped: the caller may close the store then. (Reboots that outlive
// their request are not Serve's: their records say interrupted at the
// next start if the store closes first.)
func (s *Server) Serve(ctx context.Context, ln net.Listener, tasks ...Task) error {
	s.campaigns.ResumeFirst() // a done report's answer waits for the resumed campaigns
	g, gctx := errgroup.WithContext(ctx)
	// The tracker, powersave and the tasks outlive the API's shutdown:
	// requests in progress still use them.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	for _, t := range tasks {
		done := func() {}
		if t.Starting != "" {
			done = s.Starting(t.Starting) // listed before the API answers
		}
		g.Go(func() error {
			defer done()
			t.Run(bg)
			return nil
		})
	}
	g.Go(func() error {
		defer stopBG()
		return s.serveHTTP(gctx, ln)
	})
	g.Go(func() error { return s.boots.Run(bg) })
	g.Go(func() error { return s.campaigns.Run(bg) })
	g.Go(func() error {
		s.ps.Run(bg)
		return nil
	})
	return g.Wait()
}

// serveHTTP serves the API on ln until ctx ends, then shuts it down.
func (s *Server) serveHTTP(ctx context.Context, ln net.Listener) error {
	lim := limitConns(ln, s.cfg.MaxConns, s.cfg.MaxConnsPerPeer, s.log)
	ln = lim
	if s.cfg.TLS != nil {
		ln = sniffListener{ln, s.cfg.TLS}
	}
	hs := &http.Server{Handler: s.handler, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: min(10*time.Second, s.cfg.ReadTimeout), ReadTimeout: s.cfg.ReadTimeout,
		WriteTimeout: s.cfg.WriteTimeout, IdleTimeout: s.cfg.IdleTimeout, ConnContext: withConn, ConnState: lim.trackState}
	hs.RegisterOnShutdown(s.stopStreams)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }() // ends at Shutdown, awaited below
	if s.cfg.TLS != nil {
		s.log.Info("serving API", "addr", ln.Addr().String(), "version", api.Version, "tls", true, "fingerprint", tlsFingerprint(s.cfg.TLS))
	} else {
		s.log.Info("serving API", "addr", ln.Addr().String(), "version", api.Version, "tls", false)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve API on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("shut down API server: %w", err)
	}
	return nil
}
