package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vnode"
	"github.com/walt-testbed/walt/internal/vocab"
)

// VNodes is the virtual node supervisor as the server drives it;
// *vnode.Supervisor is the implementation. Names are node names.
type VNodes interface {
	Backend() vnode.Backend
	FreeAddr() (netip.Addr, error)
	Create(spec vnode.Spec) error
	Remove(ctx context.Context, name string) error
	HardReboot(ctx context.Context, name string) error
	Update(name string, settings vnode.Settings) error
	Addr(name string) (string, bool)
	Status(name string) (vnode.Status, error)
	Names() []string
	ConsolePath(name string) string
}

var _ VNodes = (*vnode.Supervisor)(nil)

// vnodeAddrKey is a stored setting that no user can set or see: the
// loopback address of a virtual node created by `walt node create`. It
// marks the nodes this server runs, and gives them back their address when
// the server starts again.
const vnodeAddrKey = "vnode.addr"

// vnodeState is the server's part of virtual nodes.
type vnodeState struct {
	sup VNodes // nil: this server runs no virtual nodes
	// mu serialises creations and removals: an address from FreeAddr
	// stays free until Create takes it.
	mu sync.Mutex
}

// vnodeAddr returns where the agent of a virtual node run by this server
// listens. The address the node reports is useless for that: a QEMU guest
// reports 10.0.2.15, which only exists behind QEMU's user-mode network.
func (s *Server) vnodeAddr(name string) (string, bool) {
	if s.vn.sup == nil {
		return "", false
	}
	return s.vn.sup.Addr(name)
}

var errNoVNodes = kindf(vocab.ErrUnavailable, "this server runs no virtual nodes (see walt-server --vnode-backend and docs/vnodes.md)")

// vnodeSettings returns the VM settings of a node from its stored settings,
// defaults for the others.
func vnodeSettings(stored map[string]string) vnode.Settings {
	vs := vnode.DefaultSettings()
	for _, k := range vnode.Keys() {
		if v, ok := stored[k]; ok {
			// Stored values passed the same parser; a bad one keeps the default.
			vs.Set(k, v)
		}
	}
	return vs
}

// createVNode stores a virtual node owned by the requester and starts its
// machine. Every check comes first: on error, nothing was created.
func (s *Server) createVNode(ctx context.Context, req api.CreateVNode) (api.VNodeResult, error) {
	var res api.VNodeResult
	sup := s.vn.sup
	if err := checkVNodeName(req.Name); err != nil {
		return res, err
	}
	if sup == nil {
		return res, errNoVNodes
	}
	// Settings are checked as `walt node config` checks them, on the node
	// to be.
	mac := vnode.MACFor(req.Name)
	d := store.Device{MAC: mac, Name: req.Name, Type: store.TypeNode, Model: vnode.DefaultModel, Virtual: true, Owner: req.Requester}
	set := map[string]*string{}
	if len(req.Settings) > 0 {
		plan, err := planConfig([]store.Device{d}, nil, req.Settings)
		if err != nil {
			return res, err
		}
		set = plan.changes[0].Set
	}
	stored := map[string]string{}
	for k, v := range set {
		stored[k] = *v
	}
	settings := vnodeSettings(stored)

	s.vn.mu.Lock()
	defer s.vn.mu.Unlock()
	if other, err := s.store.DeviceByName(ctx, req.Name); err == nil {
		return res, culprits(kindf(vocab.ErrConflict, "Device name '%s' is already used (%s, mac %s).", req.Name, other.Type, other.MAC), []string{req.Name})
	} else if !errors.Is(err, vocab.ErrNotFound) {
		return res, err
	}
	mac, err := s.freeVNodeMAC(ctx, mac)
	if err != nil {
		return res, err
	}
	addr, err := sup.FreeAddr()
	if err != nil {
		return res, kindf(vocab.ErrUnavailable, "no address left for a virtual node: %v", err)
	}
	d.MAC, d.IP, d.CreatedAt = mac, addr.String(), time.Now()
	if err := s.store.AddDevice(ctx, d); err != nil {
		return res, err
	}
	a := addr.String()
	set[vnodeAddrKey] = &a
	// The reboot engine must not wait for this node's cleanup.
	undo := func() {
		if err := s.store.ForgetDevice(context.WithoutCancel(ctx), mac); err != nil {
			s.log.Error("cannot forget a virtual node whose creation failed", "node", req.Name, "err", err)
		}
	}
	if err := s.store.ApplyChanges(ctx, []store.DeviceChange{{MAC: mac, Set: set}}); err != nil {
		undo()
		return res, err
	}
	if err := sup.Create(vnode.Spec{Name: req.Name, MAC: mac, Model: d.Model, Addr: addr, Settings: settings}); err != nil {
		undo()
		return res, fmt.Errorf("start virtual node %s: %w", req.Name, err)
	}
	s.log.Info("virtual node created", "node", req.Name, "mac", mac, "addr", a, "backend", sup.Backend().Name(), "by", req.Requester)
	n := s.withBoot(toAPINode(d, stored))
	res.Node = &n
	res.Messages = []string{fmt.Sprintf("Node %s is now booting (virtual node, %s backend, agent at %s).",
		req.Name, sup.Backend().Name(), net.JoinHostPort(a, strconv.Itoa(vnode.AgentPort)))}
	return res, nil
}

// checkVNodeName refuses names the supervisor, the store or the set
// syntax cannot take.
func checkVNodeName(name string) error {
	if err := vnode.ValidName(name); err != nil {
		return culprits(invalidf("%s", err.Error()), []string{name})
	}
	return checkDeviceName(name)
}

// freeVNodeMAC returns mac if no device has it, else a random MAC of the
// same 52:54:00 range that no device has.
func (s *Server) freeVNodeMAC(ctx context.Context, mac string) (string, error) {
	for range 100 {
		_, err := s.store.Device(ctx, mac)
		if errors.Is(err, vocab.ErrNotFound) {
			return mac, nil
		}
		if err != nil {
			return "", err
		}
		var b [3]byte
		rand.Read(b[:])
		mac = fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
	}
	return "", kindf(vocab.ErrConflict, "no free MAC address found for a virtual node")
}

// removeVNode stops a virtual node's machine and forgets the node.
func (s *Server) removeVNode(ctx context.Context, name, requester string, force bool) (api.VNodeResult, error) {
	res := api.VNodeResult{Messages: []string{}}
	d, err := s.deviceNamed(ctx, name)
	if err != nil {
		return res, err
	}
	switch {
	case d.Type != store.TypeNode:
		return res, culprits(invalidf("%s is not a node, it is a %s.", d.Name, d.Type), []string{d.Name})
	case !d.Virtual:
		return res, culprits(invalidf("%s is a real node (not virtual).", d.Name), []string{d.Name})
	case d.Owner != "" && d.Owner != requester && !force:
		return res, ownedByOthers([]string{d.Name})
	}
	// A client that leaves must not leave the node half-removed.
	ctx = context.WithoutCancel(ctx)
	s.vn.mu.Lock()
	defer s.vn.mu.Unlock()
	if s.vn.sup != nil {
		// A virtual node this server does not run (created elsewhere, or
		// by a run without vnodes) is only forgotten.
		if err := s.vn.sup.Remove(ctx, d.Name); err != nil && !errors.Is(err, vnode.ErrNotFound) {
			return res, err
		}
	}
	if err := s.store.ForgetDevice(ctx, d.MAC); err != nil {
		return res, err
	}
	s.log.Info("virtual node removed", "node", d.Name, "mac", d.MAC, "by", requester)
	res.Messages = append(res.Messages, fmt.Sprintf("Node %s removed.", d.Name))
	return res, nil
}

// updateVNodes gives the supervisor the current VM settings of the
// virtual nodes among devs, for their next machine start.
func (s *Server) updateVNodes(inv *inventory, devs []store.Device) {
	if s.vn.sup == nil {
		return
	}
	for _, d := range devs {
		if !d.Virtual {
			continue
		}
		err := s.vn.sup.Update(d.Name, vnodeSettings(inv.settings[d.MAC]))
		if err != nil && !errors.Is(err, vnode.ErrNotFound) {
			s.log.Error("cannot update virtual node settings", "node", d.Name, "err", err)
		}
	}
}

// StartVNodes hands the supervisor every virtual node created by `walt
// node create` and stored, with its address and settings, and marks them
// not booted. Their machines start when the supervisor runs. A node that
// cannot be started is logged and skipped.
func (s *Server) StartVNodes(ctx context.Context) error {
	if s.vn.sup == nil {
		return nil
	}
	// walt-server calls this while the API serves: a creation or removal
	// must not slip between the inventory read and the machines' start.
	s.vn.mu.Lock()
	defer s.vn.mu.Unlock()
	inv, err := s.inventory(ctx)
	if err != nil {
		return fmt.Errorf("start virtual nodes: %w", err)
	}
	var macs []string
	for _, d := range inv.devices {
		a, ok := inv.settings[d.MAC][vnodeAddrKey]
		if d.Type != store.TypeNode || !d.Virtual || !ok {
			continue
		}
		spec := vnode.Spec{Name: d.Name, MAC: d.MAC, Model: d.Model, Settings: vnodeSettings(inv.settings[d.MAC])}
		spec.Addr, _ = netip.ParseAddr(a)
		if !spec.Addr.IsValid() {
			s.log.Warn("virtual node has no valid stored address, giving it a new one", "node", d.Name, "addr", a)
		}
		if err := s.vn.sup.Create(spec); err != nil {
			s.log.Warn("cannot start virtual node", "node", d.Name, "err", err)
			continue
		}
		if !spec.Addr.IsValid() {
			hp, _ := s.vn.sup.Addr(d.Name)
			host, _, _ := net.SplitHostPort(hp)
			if err := s.store.ApplyChanges(ctx, []store.DeviceChange{{MAC: d.MAC, Set: map[string]*string{vnodeAddrKey: &host}}}); err != nil {
				return fmt.Errorf("start virtual nodes: %w", err)
			}
		}
		macs = append(macs, d.MAC)
	}
	for _, mac := range macs { // booted again when its agent reports
		s.boots.MarkDown(mac, api.CauseStartup, "")
	}
	s.log.Info("virtual nodes handed to the supervisor", "count", len(macs), "backend", s.vn.sup.Backend().Name())
	return nil
}

func (s *Server) listVNodes(ctx context.Context) (api.VNodeList, error) {
	out := api.VNodeList{VNodes: []api.VNode{}}
	if s.vn.sup == nil {
		return out, nil
	}
	out.Backend = s.vn.sup.Backend().Name()
	names := s.vn.sup.Names()
	sort.Strings(names)
	for _, name := range names {
		if v := s.vnodeView(name); v != nil { // nil: removed meanwhile
			out.VNodes = append(out.VNodes, *v)
		}
	}
	return out, nil
}

// vnodeView is the supervisor's view of the named virtual node, nil when
// this server runs no such vnode.
func (s *Server) vnodeView(name string) *api.VNode {
	if s.vn.sup == nil {
		return nil
	}
	st, err := s.vn.sup.Status(name)
	if err != nil {
		return nil
	}
	v := &api.VNode{Name: name, MAC: st.MAC, Backend: s.vn.sup.Backend().Name(), Accel: st.Accel,
		Addr: net.JoinHostPort(st.Addr.String(), strconv.Itoa(vnode.AgentPort)), Settings: map[string]string{},
		Running: st.Running, PID: st.PID, Generation: st.Generation, LastExit: st.LastExit, Restarts: st.Restarts}
	for _, k := range vnode.Keys() {
		v.Settings[k], _ = st.Settings.Get(k)
	}
	if !st.StartedAt.IsZero() {
		t := st.StartedAt
		v.StartedAt = &t
	}
	return v
}

// vnodeBackend describes how this server runs virtual nodes.
func (s *Server) vnodeBackend() api.VNodeBackend {
	if s.vn.sup == nil {
		return api.VNodeBackend{}
	}
	b := s.vn.sup.Backend()
	out := api.VNodeBackend{Backend: b.Name()}
	if q, ok := b.(interface{ AccelStatus() vnode.AccelStatus }); ok {
		st := q.AccelStatus()
		out.Accel, out.AccelProbing, out.AccelReason = st.Accel, st.Probing, st.Reason
	}
	return out
}
