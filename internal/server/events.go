package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// Platform log: the lines WalT writes about nodes ("node rpi1 is booted"),
// kept in a ring in memory for followers and written to the store in
// batches by the boot tracker's flusher, so that they survive restarts.

const (
	logIssuer = "walt-server"
	logStream = "platform.nodes"
	// ringSize bounds the lines kept in memory for followers.
	ringSize = 10000
	// defaultLogLimit is the backlog GET /logs sends without ?limit.
	defaultLogLimit = 100
)

type platformLog struct {
	clock Clock
	store store.Store

	mu      sync.Mutex
	seq     int64           // last assigned; +checklocks:mu
	ring    []store.LogLine // the last lines, oldest first; +checklocks:mu
	pending []store.LogLine // not written yet; +checklocks:mu
	// added is closed and replaced at each new line. +checklocks:mu
	added chan struct{}
}

func newPlatformLog(ctx context.Context, st store.Store, clock Clock) (*platformLog, error) {
	last, err := st.LogLines(ctx, 0, 1)
	if err != nil {
		return nil, err
	}
	l := &platformLog{clock: clock, store: st, added: make(chan struct{})}
	if len(last) > 0 {
		l.seq = last[0].Seq
	}
	return l, nil
}

// add appends a line about a node.
func (l *platformLog) add(node, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	ll := store.LogLine{Seq: l.seq, At: l.clock.Now(), Stream: logStream, Node: node, Line: line}
	if len(l.ring) == ringSize {
		copy(l.ring, l.ring[1:])
		l.ring = l.ring[:ringSize-1]
	}
	l.ring = append(l.ring, ll)
	l.pending = append(l.pending, ll)
	close(l.added)
	l.added = make(chan struct{})
}

func (l *platformLog) hasPending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending) > 0
}

// flush writes the pending lines. Lines that cannot be written stay in
// memory only.
func (l *platformLog) flush(ctx context.Context, log *slog.Logger) {
	l.mu.Lock()
	p := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(p) == 0 {
		return
	}
	if err := l.store.AddLogLines(ctx, p); err != nil {
		log.Error("cannot record platform log lines", "lines", len(p), "err", err)
	}
}

// after returns the lines in memory with a Seq above seq, and a channel
// closed at the next line.
func (l *platformLog) after(seq int64) ([]store.LogLine, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.ring)
	for i > 0 && l.ring[i-1].Seq > seq {
		i--
	}
	return append([]store.LogLine(nil), l.ring[i:]...), l.added
}

func toAPILogLine(l store.LogLine) api.LogLine {
	return api.LogLine{Seq: l.Seq, At: l.At, Issuer: logIssuer, Stream: l.Stream, Node: l.Node, Line: l.Line}
}

// logs streams the platform log as NDJSON: the last ?limit lines (100 by
// default), then with ?follow=true every new line until the client leaves.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLogLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, s.log, culprits(invalidf("limit '%s' is not a valid number", v), []string{v}))
			return
		}
		limit = n
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, s.log, culprits(invalidf("follow '%s' is not true or false", v), []string{v}))
			return
		}
		follow = b
	}
	for k := range q {
		if k != "limit" && k != "follow" {
			writeError(w, s.log, culprits(invalidf("unknown log parameter '%s' (parameters: follow, limit)", k), []string{k}))
			return
		}
	}
	// Every line up to last is in the store once flushed; later ones
	// come from memory.
	s.boots.plog.mu.Lock()
	last := s.boots.plog.seq
	s.boots.plog.mu.Unlock()
	s.boots.flush()
	backlog, err := s.store.LogLines(r.Context(), 0, limit)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	st := s.stream(w)
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(st)
	for _, l := range backlog {
		if enc.Encode(toAPILogLine(l)) != nil {
			return
		}
		last = max(last, l.Seq)
	}
	st.Flush()
	for follow {
		lines, added := s.boots.plog.after(last)
		for _, l := range lines {
			if enc.Encode(toAPILogLine(l)) != nil {
				return
			}
			last = l.Seq
		}
		st.Flush()
		select {
		case <-added:
		case <-r.Context().Done():
			return
		}
	}
}
