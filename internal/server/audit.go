package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// The audit trail (docs/api.md, "Audit"): every authenticated call that
// is not a read (any method but GET and HEAD) is recorded as its answer
// starts (before the client can see it end: a reboot stream's entry is
// there when the stream starts), refused ones included, with the user, the client's address, the time,
// the route, what it named (the set, the settings' names: never their
// values nor the body) and the status. Admins read it with GET
// /api/v1/audit (walt log show --audit).

// auditNote collects, while a request is served, what it names.
type auditNote struct {
	mu     sync.Mutex
	target string // +checklocks:mu
}

type auditKey struct{}

// noteTarget records what the request of ctx names, for its audit entry.
func noteTarget(ctx context.Context, target string) {
	if n, ok := ctx.Value(auditKey{}).(*auditNote); ok {
		n.mu.Lock()
		n.target = target
		n.mu.Unlock()
	}
}

// auditTarget is what a decoded request body names.
func auditTarget(v any) string {
	switch r := v.(type) {
	case *api.RebootRequest:
		return "set=" + r.Set
	case *api.ConfigRequest:
		return "set=" + r.Set + " settings=" + strings.Join(settingNames(r.Settings), ",")
	case *api.OwnershipRequest:
		return r.Action + " set=" + r.Set
	case *api.CreateVNode:
		return "name=" + r.Name
	case *api.RescanRequest:
		return "set=" + r.Set
	case *api.WaitRequest:
		return "set=" + r.Set
	case *api.AddDevice:
		return "name=" + r.Name + " ip=" + r.IP
	case *api.Link:
		return "node=" + r.Node + " switch=" + r.Switch
	case *api.CampaignRequest:
		return fmt.Sprintf("set=%s repeat=%d", r.Set, r.Repeat)
	}
	return ""
}

// maxAuditTarget bounds a recorded target (a set may be 512 KiB).
const maxAuditTarget = 512

// auditTrail wakes the followers of GET /api/v1/audit.
type auditTrail struct {
	mu    sync.Mutex
	added chan struct{} // closed at the next entry; +checklocks:mu
}

func (a *auditTrail) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.added == nil {
		a.added = make(chan struct{})
	}
	return a.added
}

func (a *auditTrail) wake() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.added != nil {
		close(a.added)
		a.added = nil
	}
}

// auditWriter records the entry, with the status, when the answer
// starts; Unwrap keeps ResponseController (streams' flushes and
// deadlines) working through it.
type auditWriter struct {
	http.ResponseWriter
	record func(status int)
	once   sync.Once
}

func (w *auditWriter) started(code int) { w.once.Do(func() { w.record(code) }) }

func (w *auditWriter) WriteHeader(code int) {
	w.started(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	w.started(http.StatusOK)
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// audited serves r with next and records its audit entry.
func (s *Server) audited(w http.ResponseWriter, r *http.Request, id Identity, next http.Handler) {
	note := &auditNote{}
	at := time.Now()
	aw := &auditWriter{ResponseWriter: w, record: func(status int) { s.recordAudit(r, id, note, at, status) }}
	next.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), auditKey{}, note)))
	aw.started(http.StatusOK) // an answer without a body
}

// recordAudit writes the entry of r, answered with status.
func (s *Server) recordAudit(r *http.Request, id Identity, note *auditNote, at time.Time, status int) {
	note.mu.Lock()
	target := note.target
	note.mu.Unlock()
	if target == "" {
		target = r.URL.Path
	}
	if len(target) > maxAuditTarget {
		cut := maxAuditTarget
		for cut > 0 && !utf8.RuneStart(target[cut]) {
			cut--
		}
		target = target[:cut] + "..."
	}
	source, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		source = r.RemoteAddr
	}
	e := store.AuditEntry{At: at, User: id.Name, Source: source, Method: r.Method, Route: r.Pattern, Target: target, Status: status}
	// The request's context may have ended (a client gone mid-stream):
	// the entry is written all the same.
	if _, err := s.store.AddAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("cannot record an audit entry", "err", err, "user", id.Name, "route", r.Pattern)
		return
	}
	s.auditLog.wake()
}

// audit answers GET /api/v1/audit?limit=N&follow=true: the last entries
// (default 100), then, with follow, each new one. Admins only.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "limit", "follow"); err != nil {
		writeError(w, s.log, err)
		return
	}
	if _, err := requireAdmin(r.Context(), "Reading the audit trail"); err != nil {
		writeError(w, s.log, err)
		return
	}
	limit, err := queryLimit(r.URL.Query().Get("limit"), defaultLogLimit)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	follow, err := boolParam(r, "follow")
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	added := s.auditLog.wait() // before the read: an entry added after it wakes us
	entries, err := s.store.AuditEntries(r.Context(), 0, limit)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	st := s.stream(w)
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(st)
	var last int64
	for {
		for _, e := range entries {
			if enc.Encode(toAPIAudit(e)) != nil {
				return
			}
			last = e.Seq
		}
		st.Flush()
		if !follow {
			return
		}
		select {
		case <-added:
		case <-r.Context().Done():
			return
		case <-s.streams.Done():
			return
		}
		added = s.auditLog.wait()
		if entries, err = s.store.AuditEntries(r.Context(), last, 0); err != nil {
			s.log.Warn("audit follow: cannot read the trail", "err", err)
			return
		}
	}
}

func toAPIAudit(e store.AuditEntry) api.AuditEntry {
	return api.AuditEntry{Seq: e.Seq, At: e.At, User: e.User, Source: e.Source, Method: e.Method, Route: e.Route, Target: e.Target, Status: e.Status}
}
