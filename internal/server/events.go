package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// The platform log's lines are kept by the boot tracker (internal/boot);
// GET /logs serves them.

const (
	logIssuer = "walt-server"
	// defaultLogLimit is the backlog GET /logs sends without ?limit.
	defaultLogLimit = 100
)

func toAPILogLine(l store.LogLine) api.LogLine {
	return api.LogLine{Seq: l.Seq, At: l.At, Issuer: logIssuer, Stream: l.Stream, Node: l.Node, Line: l.Line}
}

// logs streams the platform log as NDJSON: the last ?limit lines (100 by
// default), then with ?follow=true every new line until the client leaves.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryLimit(q.Get("limit"), defaultLogLimit)
	if err != nil {
		writeError(w, s.log, err)
		return
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
	last := s.boots.Log().Seq()
	s.boots.Flush()
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
		lines, added := s.boots.Log().After(last)
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
