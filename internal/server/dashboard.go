package server

import (
	"net/http"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/dashboard"
)

// dashboardRoutes serves the dashboard (internal/dashboard) at / and what
// it reads beside the rest of the API: the event stream (sse.go) and the
// resolution of node sets.
func (s *Server) dashboardRoutes() {
	s.mux.HandleFunc("GET "+api.Prefix+"/events", s.events)
	s.mux.HandleFunc("GET "+api.Prefix+"/node-sets", s.nodeSet)
	h := dashboard.Handler()
	s.mux.Handle("GET /{$}", h)
	s.mux.Handle("GET "+dashboard.AssetPrefix, h)
}

// nodeSet answers GET /api/v1/node-sets?set=SET&requester=NAME with the
// nodes the set names, as a reboot of it would resolve them for the
// token's user (requester, if given, must be that user).
func (s *Server) nodeSet(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "set", "requester"); err != nil {
		writeError(w, s.log, err)
		return
	}
	q := r.URL.Query()
	set := q.Get("set")
	err := checkTexts(setField(set), requesterField(q.Get("requester")))
	var requester string
	if err == nil {
		requester, err = requesterOf(r.Context(), q.Get("requester"))
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	inv, err := s.inventory(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	devs, err := inv.resolve(r.Context(), set, requester, true)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out := api.NodeSet{Nodes: make([]string, 0, len(devs))}
	for _, d := range devs {
		out.Nodes = append(out.Nodes, d.Name)
	}
	writeJSON(w, http.StatusOK, out)
}
