package store

import (
	"context"
	"time"
)

// AuditEntry records one state-changing API call: who, from where, when,
// what, and the answer's status. It holds no request body (settings may
// be secrets): Target names the objects (the set, the device, the
// settings' names).
type AuditEntry struct {
	// Seq orders the entries; AddAudit assigns it.
	Seq    int64
	At     time.Time
	User   string
	Source string // the client's IP address
	Method string
	Route  string // the API route, e.g. "POST /api/v1/reboots"
	Target string
	Status int
}

// AuditStore keeps the audit trail. Store embeds it.
type AuditStore interface {
	// AddAudit appends an entry and returns its Seq.
	AddAudit(ctx context.Context, e AuditEntry) (int64, error)
	// AuditEntries returns the last limit entries (all when limit is 0)
	// with a Seq above after, oldest first.
	AuditEntries(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
}
