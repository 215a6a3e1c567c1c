package server

import (
	"context"
	"net/http"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

func (s *Server) showConfig(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "set", "requester", "nodes_only"); err != nil {
		writeError(w, s.log, err)
		return
	}
	nodesOnly, err := boolParam(r, "nodes_only")
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	q := r.URL.Query()
	req := api.ConfigRequest{Set: q.Get("set"), Requester: q.Get("requester"), NodesOnly: nodesOnly}
	if err := checkRequest(&req); err != nil {
		writeError(w, s.log, err)
		return
	}
	if err := bindRequester(r.Context(), &req); err != nil {
		writeError(w, s.log, err)
		return
	}
	res, err := s.config(r.Context(), req)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) setConfig(ctx context.Context, req api.ConfigRequest) (api.ConfigResult, error) {
	if len(req.Settings) == 0 {
		return api.ConfigResult{}, invalidf("no settings given (use GET to show the configuration)")
	}
	return s.config(ctx, req)
}

// config validates and applies settings (if any), then returns the
// resulting configuration of the set's devices.
func (s *Server) config(ctx context.Context, req api.ConfigRequest) (api.ConfigResult, error) {
	inv, err := s.inventory(ctx)
	if err != nil {
		return api.ConfigResult{}, err
	}
	devs, err := inv.resolve(ctx, req.Set, req.Requester, req.NodesOnly)
	if err != nil {
		return api.ConfigResult{}, err
	}
	var res api.ConfigResult
	if len(req.Settings) > 0 {
		if err := checkDeviceSettings(ctx, devs); err != nil {
			return res, err
		}
		if err := checkOwners(devs, req.Requester, req.Force); err != nil {
			return res, err
		}
		plan, err := planConfig(devs, inv.settings, req.Settings)
		if err != nil {
			return res, err
		}
		if err := s.store.ApplyChanges(ctx, plan.changes); err != nil {
			return res, err
		}
		// Never log values: snmp.community is a secret.
		s.log.Info("configuration changed", "devices", len(devs), "settings", settingNames(req.Settings), "by", req.Requester)
		res.Messages = plan.messages
		if inv, err = s.inventory(ctx); err != nil {
			return res, err
		}
		s.updateVNodes(inv, devs)
		macs := make(map[string]bool)
		for _, d := range devs {
			macs[d.MAC] = true
		}
		devs = devs[:0]
		for _, d := range inv.devices {
			if macs[d.MAC] {
				devs = append(devs, d)
			}
		}
	}
	for _, d := range devs {
		dc := api.DeviceConfig{Name: d.Name, Type: string(d.Type), Virtual: d.Virtual, Settings: []api.Setting{}}
		for _, sv := range shownSettings(d, inv.settings[d.MAC]) {
			dc.Settings = append(dc.Settings, api.Setting{Name: sv.name, Value: sv.value, Default: sv.isDefault})
		}
		res.Devices = append(res.Devices, dc)
	}
	return res, nil
}

func settingNames(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		k, _, _ := cutEq(a)
		out = append(out, k)
	}
	return out
}

func cutEq(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func (s *Server) changeOwnership(ctx context.Context, req api.OwnershipRequest) (api.OwnershipResult, error) {
	res := api.OwnershipResult{Nodes: []string{}}
	if req.Requester == "" {
		return res, invalidf("ownership change without a user name (set WALT_USER)")
	}
	if req.Action != "acquire" && req.Action != "release" {
		return res, culprits(invalidf("ownership action '%s' is not valid (expected acquire or release)", req.Action), []string{req.Action})
	}
	inv, err := s.inventory(ctx)
	if err != nil {
		return res, err
	}
	nodes, err := inv.resolve(ctx, req.Set, req.Requester, true)
	if err != nil {
		return res, err
	}
	var mine, others, free []string
	for _, n := range nodes {
		switch n.Owner {
		case req.Requester:
			mine = append(mine, n.Name)
		case "":
			free = append(free, n.Name)
		default:
			others = append(others, n.Name)
		}
	}
	var changes []store.DeviceChange
	owner := req.Requester
	switch req.Action {
	case "acquire":
		if len(others) > 0 && !req.Force {
			return res, ownedByOthers(others)
		}
		if len(mine) > 0 {
			res.Messages = append(res.Messages, nodeset.Capitalize(nodeset.Describe(mine, "node", "nodes"))+": ignored, already yours.")
		}
		for _, n := range nodes {
			if n.Owner != req.Requester {
				changes = append(changes, store.DeviceChange{MAC: n.MAC, Owner: &owner})
				res.Nodes = append(res.Nodes, n.Name)
			}
		}
	case "release":
		notMine := append(others, free...)
		if len(notMine) > 0 {
			return res, culprits(kindf(vocab.ErrForbidden, "%s not yours. See `walt help show node-ownership`.",
				nodeset.Capitalize(nodeset.Describe(notMine, "node", "nodes"))+plural(notMine, " is", " are")), notMine)
		}
		owner = ""
		for _, n := range nodes {
			changes = append(changes, store.DeviceChange{MAC: n.MAC, Owner: &owner})
			res.Nodes = append(res.Nodes, n.Name)
		}
	}
	if err := s.store.ApplyChanges(ctx, changes); err != nil {
		return res, err
	}
	if len(res.Nodes) > 0 {
		res.Messages = append(res.Messages, s.ownershipPower(ctx, req.Action, changes)...)
		verb := "now yours."
		if req.Action == "release" {
			verb = "now free."
		}
		res.Messages = append(res.Messages, nodeset.Capitalize(nodeset.Describe(res.Nodes, "node", "nodes"))+": "+verb)
	}
	s.log.Info("ownership changed", "action", req.Action, "nodes", len(res.Nodes), "by", req.Requester)
	return res, nil
}

// checkOwners refuses, without force, to change devices owned by other
// users (free ones and the requester's own are fine).
func checkOwners(devs []store.Device, requester string, force bool) error {
	if force {
		return nil
	}
	var others []string
	for _, d := range devs {
		if d.Owner != "" && d.Owner != requester {
			others = append(others, d.Name)
		}
	}
	if len(others) > 0 {
		return ownedByOthers(others)
	}
	return nil
}

// ownedByOthers is the error for nodes owned by other users, who must
// confirm (force) before acting on them.
func ownedByOthers(names []string) error {
	return culprits(kindf(vocab.ErrForbidden, "%s %s by other users.",
		nodeset.Capitalize(nodeset.Describe(names, "node", "nodes")), plural(names, "seems to be used", "seem to be used")), names)
}
