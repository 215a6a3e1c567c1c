package server

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
)

// startup is what the readiness answer reports about the server's start:
// when it started and which background start-up work is still running.
type startup struct {
	at time.Time

	mu      sync.Mutex
	pending []string // +checklocks:mu
}

// Starting records start-up work that runs in the background while the
// API serves (the KVM trial boot, starting the stored vnodes, restoring
// PoE); GET /api/v1/health lists it until done is called. done may be
// called more than once.
func (s *Server) Starting(what string) (done func()) {
	s.start.mu.Lock()
	s.start.pending = append(s.start.pending, what)
	s.start.mu.Unlock()
	return sync.OnceFunc(func() {
		s.start.mu.Lock()
		defer s.start.mu.Unlock()
		if i := slices.Index(s.start.pending, what); i >= 0 {
			s.start.pending = slices.Delete(s.start.pending, i, i+1)
		}
	})
}

// health answers GET /api/v1/health. It reads nothing from the store, so
// that it answers at once, whatever the server is busy with.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.start.mu.Lock()
	pending := append([]string{}, s.start.pending...)
	s.start.mu.Unlock()
	writeJSON(w, http.StatusOK, api.Health{
		Status: "ok", Version: s.cfg.Version, API: api.Version, Store: s.cfg.StoreName,
		VNodes: s.vnodeBackend(), Starting: pending,
		StartedAt: s.start.at, Uptime: time.Since(s.start.at).Seconds(),
	})
}
