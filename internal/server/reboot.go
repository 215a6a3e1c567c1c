package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// DefaultCause is the cause recorded for a reboot asked without one.
const DefaultCause = "reboot requested"

// reboot resolves the set, checks ownership, then streams one event per
// node as soon as its outcome is known. Errors before the stream starts
// are plain JSON errors.
func (s *Server) reboot(w http.ResponseWriter, r *http.Request) {
	var req api.RebootRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, s.log, err)
		return
	}
	if req.Cause == "" {
		req.Cause = DefaultCause
	}
	ts, err := s.rebootTargets(r.Context(), req)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	for _, n := range ts.nodes {
		s.ps.Touch(n.MAC) // restarts the node's powersave idle time
	}

	st := s.stream(w)
	w.Header().Set("Content-Type", api.ContentNDJSON)
	w.WriteHeader(http.StatusOK)
	es := events(st)
	defer es.close()
	es.send(api.RebootEvent{Type: api.EventStart, Total: len(ts.nodes)})

	// The reboots outlive the request: a client that leaves must not
	// leave nodes half-rebooted.
	ctx := context.WithoutCancel(r.Context())
	results, batch, err := s.runReboot(ctx, ts, req, func(nr *api.NodeResult) {
		es.send(api.RebootEvent{Type: api.EventNode, Node: nr})
	})
	if err != nil {
		_, ae := toAPIError(err, s.log)
		es.send(api.RebootEvent{Type: api.EventError, Error: ae})
		return
	}
	done := api.RebootEvent{Type: api.EventDone, Batch: batch}
	for _, res := range results {
		if res.OK {
			done.Rebooted++
		} else {
			done.Failed++
		}
	}
	es.send(done)
}

// targets are the nodes of one reboot request, for the engine, with how
// long each one's reboot waits for its boot (bootWait, by index in
// nodes), for the boot tracker.
type targets struct {
	nodes []reboot.Node
	waits []time.Duration
}

// rebootTargets resolves the request's nodes and checks their ownership.
func (s *Server) rebootTargets(ctx context.Context, req api.RebootRequest) (targets, error) {
	inv, err := s.inventory(ctx)
	if err != nil {
		return targets{}, err
	}
	devs, err := inv.resolve(ctx, req.Set, req.Requester, true)
	if err != nil {
		return targets{}, err
	}
	if err := checkOwners(devs, req.Requester, req.Force); err != nil {
		return targets{}, err
	}
	off, err := s.poweredOff(ctx)
	if err != nil {
		return targets{}, err
	}
	nodes := make([]reboot.Node, len(devs))
	waits := make([]time.Duration, len(devs))
	for i, d := range devs {
		waits[i] = bootWait(inv.settings[d.MAC])
		nodes[i] = reboot.Node{
			Name: d.Name, MAC: d.MAC, Virtual: d.Virtual, PoweredOff: off[d.MAC],
			KexecAllow: effective(inv.settings[d.MAC], vocab.KexecAllow) == "true",
			Power:      effective(inv.settings[d.MAC], vocab.PowerMethod),
		}
		if d.IP != "" {
			nodes[i].Addr = net.JoinHostPort(d.IP, strconv.Itoa(s.cfg.NodePort))
		}
		if d.Virtual {
			if a, ok := s.vnodeAddr(d.Name); ok {
				nodes[i].Addr = a
			}
		}
	}
	return targets{nodes: nodes, waits: waits}, nil
}

// poweredOff returns the MACs of nodes whose switch port, or own power,
// the server turned off.
func (s *Server) poweredOff(ctx context.Context) (map[string]bool, error) {
	offs, err := s.store.PoEOffs(ctx)
	if err != nil || len(offs) == 0 {
		return nil, err
	}
	type port struct {
		sw string
		n  int
	}
	dark := make(map[port]bool)
	out := make(map[string]bool)
	for _, o := range offs {
		dark[port{o.SwitchMAC, o.Port}] = true
		if o.Port == store.NodePowerPort { // its BMC or power.command
			out[o.SwitchMAC] = true
		}
	}
	links, err := s.store.Links(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if dark[port{l.SwitchMAC, l.Port}] {
			out[l.NodeMAC] = true
		}
	}
	return out, nil
}

func (s *Server) listReboots(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "batch", "node", "limit", "set", "requester"); err != nil {
		writeError(w, s.log, err)
		return
	}
	q := r.URL.Query()
	if err := checkTexts(setField(q.Get("set")), requesterField(q.Get("requester")),
		textField{"batch", q.Get("batch"), maxName, true}, textField{"node", q.Get("node"), maxName, false}); err != nil {
		writeError(w, s.log, err)
		return
	}
	who, err := requesterOf(r.Context(), q.Get("requester"))
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	s.boots.Flush() // boot times still in memory go to the store first
	f := store.RebootFilter{Batch: q.Get("batch")}
	if name := q.Get("node"); name != "" {
		d, err := s.deviceNamed(r.Context(), name)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		f.NodeMAC = d.MAC
	}
	limit, err := queryLimit(q.Get("limit"), api.MaxLimit)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	f.Limit = limit
	var recs []store.Reboot
	if set := q.Get("set"); set != "" {
		recs, err = s.rebootsOfSet(r.Context(), set, who, f)
	} else {
		recs, err = s.store.Reboots(r.Context(), f)
	}
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out := api.RebootList{Reboots: []api.RebootRecord{}}
	for _, rec := range recs {
		out.Reboots = append(out.Reboots, toAPIRecord(rec))
	}
	writeJSON(w, http.StatusOK, out)
}
