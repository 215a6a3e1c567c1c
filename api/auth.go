package api

import "time"

// WhoAmI is the answer of GET /api/v1/whoami: the user of the request's
// token (walt login checks a token with it).
type WhoAmI struct {
	User  string `json:"user"`
	Admin bool   `json:"admin"`
}

// AuditEntry is a line of GET /api/v1/audit (NDJSON): one state-changing
// call, refused ones included. Target names what the call named (set,
// device, settings' names), never a value.
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Source string    `json:"source"`
	Method string    `json:"method"`
	Route  string    `json:"route"`
	Target string    `json:"target"`
	Status int       `json:"status"`
}
