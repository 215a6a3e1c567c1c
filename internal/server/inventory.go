package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// inventory is a snapshot of the devices and their settings.
type inventory struct {
	devices  []store.Device // sorted by name
	byName   map[string]int
	settings map[string]map[string]string // by MAC
}

func (s *Server) inventory(ctx context.Context) (*inventory, error) {
	devs, err := s.store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	settings, err := s.store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	inv := &inventory{devices: devs, byName: make(map[string]int, len(devs)), settings: settings}
	for i, d := range devs {
		inv.byName[d.Name] = i
	}
	return inv, nil
}

// deviceNamed returns the named device or WalT's "No device" error.
func (s *Server) deviceNamed(ctx context.Context, name string) (store.Device, error) {
	if err := checkText("name", name, maxName, false); err != nil {
		return store.Device{}, err // no device has such a name
	}
	d, err := s.store.DeviceByName(ctx, name)
	if errors.Is(err, vocab.ErrNotFound) {
		return d, culprits(kindf(vocab.ErrNotFound, "No device with name '%s' found.", name), []string{name})
	}
	return d, err
}

// resolve develops a device set for requester into devices, sorted by
// name. With nodesOnly, a device that is not a node is an error. Its work
// is linear in the set's expansion (nodeset.MaxNames at most) and the
// inventory, and stops when ctx ends.
func (inv *inventory) resolve(ctx context.Context, set, requester string, nodesOnly bool) ([]store.Device, error) {
	terms, err := nodeset.ParseContext(ctx, set)
	if err != nil {
		return nil, err
	}
	picked := make(map[int]bool)
	for _, t := range terms {
		if t.Model != "" {
			for i, d := range inv.devices {
				if d.Type == store.TypeNode && d.Model == t.Model {
					picked[i] = true
				}
			}
			continue
		}
		if t.Name != "" {
			i, ok := inv.byName[t.Name]
			if !ok {
				return nil, culprits(kindf(vocab.ErrNotFound, "No device with name '%s' found.", t.Name), []string{t.Name})
			}
			picked[i] = true
			continue
		}
		for i, d := range inv.devices {
			if inv.matches(t.Keyword, d, requester) {
				picked[i] = true
			}
		}
	}
	var out []store.Device
	var notNodes []string
	for i, d := range inv.devices {
		if !picked[i] {
			continue
		}
		if nodesOnly && d.Type != store.TypeNode {
			notNodes = append(notNodes, fmt.Sprintf("%s is not a node, it is a %s.", d.Name, d.Type))
			continue
		}
		out = append(out, d)
	}
	if len(notNodes) > 0 {
		return nil, kindf(vocab.ErrInvalid, "%s", strings.Join(notNodes, "\n"))
	}
	if len(out) == 0 {
		return nil, kindf(vocab.ErrNotFound, "No matching devices found! (tip: walt help show node-ownership)")
	}
	return out, nil
}

func (inv *inventory) matches(keyword string, d store.Device, requester string) bool {
	isNode := d.Type == store.TypeNode
	switch keyword {
	case nodeset.MyNodes:
		return isNode && d.Owner != "" && d.Owner == requester
	case nodeset.FreeNodes:
		return isNode && d.Owner == ""
	case nodeset.AllNodes:
		return isNode
	case nodeset.AllSwitches:
		return d.Type == store.TypeSwitch
	case nodeset.AllDevices:
		return true
	case nodeset.ExplorableSwitches:
		return d.Type == store.TypeSwitch && vocab.On(inv.settings[d.MAC], vocab.LLDPExplore)
	}
	return false // nodeset.Server: the server is not in the inventory
}

func nodeConfig(d store.Device, stored map[string]string) map[string]string {
	cfg := make(map[string]string)
	for _, sv := range shownSettings(d, stored) {
		cfg[sv.name] = sv.value
	}
	return cfg
}

func toAPINode(d store.Device, stored map[string]string) api.Node {
	return api.Node{
		Name: d.Name, Model: d.Model, Virtual: d.Virtual, IP: d.IP, MAC: d.MAC,
		Config: nodeConfig(d, stored), Owner: d.Owner, BootMode: d.BootMode,
	}
}

func toAPIDevice(d store.Device, stored map[string]string) api.Device {
	out := api.Device{
		Name: d.Name, Type: string(d.Type), MAC: d.MAC, IP: d.IP, Model: d.Model, Virtual: d.Virtual,
		Owner: d.Owner, BootMode: d.BootMode, Created: d.CreatedAt, Config: nodeConfig(d, stored),
	}
	if !d.LastSeen.IsZero() {
		t := d.LastSeen
		out.LastSeen = &t
	}
	return out
}

// nodeFilters are the first-level fields GET /nodes filters on.
var nodeFilters = map[string]func(api.Node) string{
	"name":      func(n api.Node) string { return n.Name },
	"model":     func(n api.Node) string { return n.Model },
	"virtual":   func(n api.Node) string { return strconv.FormatBool(n.Virtual) },
	"image":     func(n api.Node) string { return n.Image },
	"booted":    func(n api.Node) string { return strconv.FormatBool(n.Booted) },
	"ip":        func(n api.Node) string { return n.IP },
	"mac":       func(n api.Node) string { return n.MAC },
	"owner":     func(n api.Node) string { return n.Owner },
	"boot_mode": func(n api.Node) string { return n.BootMode },
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if nodeFilters[k] == nil {
			keys := make([]string, 0, len(nodeFilters))
			for f := range nodeFilters {
				keys = append(keys, f)
			}
			sort.Strings(keys)
			writeError(w, s.log, culprits(invalidf("unknown node filter '%s' (filters: %s)", k, strings.Join(keys, ", ")), []string{k}))
			return
		}
	}
	inv, err := s.inventory(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	qs, err := s.quarantines(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	list := api.NodeList{Nodes: []api.Node{}}
next:
	for _, d := range inv.devices {
		if d.Type != store.TypeNode {
			continue
		}
		n := s.withBoot(toAPINode(d, inv.settings[d.MAC]))
		if d.Virtual {
			n.VNode = s.vnodeView(d.Name)
		}
		n.BootContext, n.Quarantine = s.boots.BootContext(d.MAC), qs[d.MAC]
		for k, vs := range q {
			if !strings.EqualFold(nodeFilters[k](n), vs[len(vs)-1]) {
				continue next
			}
		}
		list.Nodes = append(list.Nodes, n)
	}
	list.NumNodes = len(list.Nodes)
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		writeError(w, s.log, err)
		return
	}
	inv, err := s.inventory(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	list := api.DeviceList{Devices: []api.Device{}}
	for _, d := range inv.devices {
		dev := toAPIDevice(d, inv.settings[d.MAC])
		if d.Type == store.TypeNode { // the boot tracker owns both
			_, dev.Booted = s.boots.Status(d.MAC)
			dev.LastSeen = nil
			if seen := s.boots.LastSeen(d.MAC); !seen.IsZero() {
				dev.LastSeen = &seen
			}
		}
		list.Devices = append(list.Devices, dev)
	}
	list.NumDevices = len(list.Devices)
	writeJSON(w, http.StatusOK, list)
}

// madeUpMAC derives a locally administered MAC from an IPv4 address, for
// devices added without one.
func madeUpMAC(ip net.IP) string {
	v4 := ip.To4()
	if v4 == nil {
		return ""
	}
	hw := make(net.HardwareAddr, 6)
	hw[0] = 0x02
	binary.BigEndian.PutUint32(hw[2:], binary.BigEndian.Uint32(v4))
	return hw.String()
}

func (s *Server) addDevice(ctx context.Context, req api.AddDevice) (api.Device, error) {
	if _, err := requireAdmin(ctx, "Adding a device"); err != nil {
		return api.Device{}, err
	}
	if err := checkDeviceName(req.Name); err != nil {
		return api.Device{}, err
	}
	addr, err := checkIP("ip", req.IP)
	if err != nil {
		return api.Device{}, err
	}
	ip := net.IP(addr.AsSlice())
	typ := store.DeviceType(req.Type)
	if req.Type == "" {
		typ = store.TypeUnknown
	}
	if !typ.Valid() {
		return api.Device{}, culprits(invalidf("device type '%s' is not valid (expected switch, node or unknown)", req.Type), []string{req.Type})
	}
	mac := req.MAC
	if mac == "" {
		if mac = madeUpMAC(ip); mac == "" {
			return api.Device{}, invalidf("device %s: give a MAC address (--mac) for an IPv6 device", req.Name)
		}
	} else if mac, err = checkMAC("mac", mac); err != nil {
		return api.Device{}, err
	}
	if other, err := s.store.DeviceByName(ctx, req.Name); err == nil {
		return api.Device{}, culprits(kindf(vocab.ErrConflict, "Device name '%s' is already used (%s, mac %s).", req.Name, other.Type, other.MAC), []string{req.Name})
	}
	if m, err := store.NormalizeMAC(mac); err == nil {
		if other, err := s.store.Device(ctx, m); err == nil {
			return api.Device{}, culprits(kindf(vocab.ErrConflict, "MAC address %s is already used by device %s.", m, other.Name), []string{m})
		}
	}
	if err := s.store.AddDevice(ctx, store.Device{MAC: mac, Name: req.Name, IP: ip.String(), Type: typ, CreatedAt: time.Now()}); err != nil {
		return api.Device{}, err
	}
	d, err := s.store.DeviceByName(ctx, req.Name)
	return toAPIDevice(d, nil), err
}

// forgetDevice forgets a device. A node owned by another user needs
// ?force=true, as a reboot does; a virtual node is refused: walt node
// remove stops its machine too.
func (s *Server) forgetDevice(w http.ResponseWriter, r *http.Request) {
	requester, force, err := requesterForce(r)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if _, err := requireAdmin(r.Context(), "Forgetting a device"); err != nil {
		writeError(w, s.log, err)
		return
	}
	d, err := s.deviceNamed(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if d.Type == store.TypeNode && d.Virtual {
		writeError(w, s.log, culprits(invalidf("%s is a virtual node: use walt node remove %s, which stops its machine too.", d.Name, d.Name), []string{d.Name}))
		return
	}
	if err := checkOwners([]store.Device{d}, requester, force); err != nil {
		writeError(w, s.log, err)
		return
	}
	if d.Type == store.TypeNode {
		// Power the node's port on first, as WalT does: nothing would later.
		if _, err := s.WakeNodes(r.Context(), []string{d.MAC}); err != nil {
			s.log.Warn("forget device: cannot power its port on", "node", d.Name, "err", err)
		}
	}
	if err := s.store.ForgetDevice(r.Context(), d.MAC); err != nil {
		writeError(w, s.log, err)
		return
	}
	s.boots.Forget(d.MAC)
	s.log.Info("device forgotten", "device", d.Name, "mac", d.MAC, "by", requester)
	w.WriteHeader(http.StatusNoContent)
}

// unchangedByReport reports whether the report of a known node, dev,
// says what the inventory has, its last sign of life and booted flag
// apart (a node reporting each boot from the same address).
func unchangedByReport(old, dev store.Device) bool {
	return old.Type == store.TypeNode && old.Name == dev.Name && old.IP == dev.IP && old.Model == dev.Model &&
		old.Virtual == dev.Virtual && old.BootMode == dev.BootMode
}

// reportStoreWait bounds the wait of a boot report's answer for the
// store to hold the boot (boot.Tracker.Stored): well within the node's
// request timeout (10 s), which then hears that the server is failing.
const reportStoreWait = 5 * time.Second

var bootModes = map[string]bool{"": true, "network": true, "hybrid-volatile": true, "hybrid-persistent": true}

func (s *Server) nodeReport(ctx context.Context, rep api.NodeReport) (api.Node, error) {
	var old *store.Device
	if mac, err := store.NormalizeMAC(rep.MAC); err == nil {
		d, err := s.devices.node(ctx, mac)
		switch {
		case err == nil:
			old = &d
		case !errors.Is(err, vocab.ErrNotFound):
			return api.Node{}, err
		}
	}
	if err := s.checkReportSource(ctx, rep, old); err != nil {
		return api.Node{}, err
	}
	if old != nil && s.boots.PastBoot(old.MAC, rep.BootID) {
		// Checked again, with the boot taken, by Report.
		return api.Node{}, pastBootError(old.Name, rep.BootID, s.boots.BootID(old.MAC))
	}
	dev, err := reportedDevice(rep, old, time.Now())
	if err != nil {
		return api.Node{}, err
	}
	if addr, ok := s.vnodeAddr(dev.Name); ok && dev.Virtual {
		// A VM behind user-mode networking reports its guest address
		// (10.0.2.15): the server reaches it at its own loopback address.
		if host, _, err := net.SplitHostPort(addr); err == nil {
			dev.IP = host
		}
	}
	var d store.Device
	if old != nil && unchangedByReport(*old, dev) {
		// Nothing to write but the node's sign of life and booted flag:
		// the boot tracker's next flush writes both, with others'.
		d = *old
		d.Booted, d.LastSeen = true, dev.LastSeen
	} else if d, err = s.store.ReportDevice(ctx, dev); err != nil {
		return api.Node{}, err
	}
	bc, err := s.boots.Report(d.MAC, d.Name, rep.BootID, rep.NodeMethod)
	if errors.Is(err, boot.ErrPastBoot) {
		return api.Node{}, pastBootError(d.Name, rep.BootID, s.boots.BootID(d.MAC))
	} else if err != nil {
		return api.Node{}, err
	}
	// The node takes an answer for a stored boot: it reports again
	// only if it has none.
	sctx, cancel := context.WithTimeout(ctx, reportStoreWait)
	err = s.boots.Stored(sctx)
	cancel()
	if err != nil {
		return api.Node{}, kindf(vocab.ErrUnavailable, "node %s: its boot could not be recorded yet (%v): report again", d.Name, err)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) { // else its arguments would be boxed for nothing
		s.log.Debug("node reported", "node", d.Name, "mac", d.MAC, "ip", d.IP, "boot_id", rep.BootID)
	}
	n := s.withBoot(toAPINode(d, nil))
	n.BootContext = &bc
	return n, nil
}

// pastBootError refuses the late report of a node's earlier boot (a
// report retried over a restart of the server, sent before the node
// rebooted): it is not a new boot, and the agent need not send it again.
func pastBootError(node, bootID, current string) error {
	return culprits(kindf(vocab.ErrConflict, "node %s: boot %s is an earlier boot of the node, which booted since (boot %s)", node, bootID, current), []string{bootID})
}

func (s *Server) setLink(w http.ResponseWriter, r *http.Request) {
	var req api.Link
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, s.log, err)
		return
	}
	if _, err := requireAdmin(r.Context(), "Recording a link"); err != nil {
		writeError(w, s.log, err)
		return
	}
	if err := linkPortRange.Check(int64(req.Port)); err != nil {
		writeError(w, s.log, invalidf("%v", err))
		return
	}
	node, err := s.deviceNamed(r.Context(), req.Node)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	sw, err := s.deviceNamed(r.Context(), req.Switch)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	if node.Type != store.TypeNode || sw.Type != store.TypeSwitch {
		writeError(w, s.log, invalidf("a link goes from a node to a switch (%s is a %s, %s is a %s)", node.Name, node.Type, sw.Name, sw.Type))
		return
	}
	if err := s.store.SetLink(r.Context(), store.Link{NodeMAC: node.MAC, SwitchMAC: sw.MAC, Port: req.Port}); err != nil {
		writeError(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
