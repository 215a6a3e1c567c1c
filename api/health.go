package api

import "time"

// Health is the body of GET /api/v1/health, the readiness answer. The
// server answers it as soon as its API listens: slow start-up work (the
// KVM trial boot, starting the stored virtual nodes, restoring PoE after a
// crash) goes on in the background and is listed in Starting until done.
type Health struct {
	Status  string       `json:"status"`  // "ok"
	Version string       `json:"version"` // walt-server's build: module version and commit
	API     string       `json:"api"`     // Version
	Store   string       `json:"store"`   // sqlite or postgres
	VNodes  VNodeBackend `json:"vnodes"`
	// Starting names the start-up work still in progress, in the order it
	// began; empty once the server has settled.
	Starting  []string  `json:"starting"`
	StartedAt time.Time `json:"started_at"`
	Uptime    float64   `json:"uptime_seconds"`
}

// VNodeBackend says how the server runs virtual nodes.
type VNodeBackend struct {
	// Backend is qemu or process; "" when the server runs no vnodes.
	Backend string `json:"backend"`
	// Accel is what the next QEMU machine starts under: kvm or tcg.
	Accel string `json:"accel,omitempty"`
	// AccelProbing is true while the KVM trial boot runs (machines start
	// under tcg meanwhile).
	AccelProbing bool `json:"accel_probing,omitempty"`
	// AccelReason says how Accel was chosen.
	AccelReason string `json:"accel_reason,omitempty"`
}
