package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// PoE is what the server needs of the PoE driver besides hard reboots
// (which go through Config.Reboot): topology scans (walt device rescan),
// live port states (walt device port-config) and switching ports for
// powersave. Switches are named by MAC. *poe.Driver implements it.
type PoE interface {
	power.Switcher
	Scan(ctx context.Context, switchMAC string) (poe.Topology, error)
	ReadPorts(ctx context.Context, switchMAC string) ([]poe.PortStatus, error)
}

var _ PoE = (*poe.Driver)(nil)

// errNoPoE answers topology requests on a server without a PoE driver.
var errNoPoE = kindf(vocab.ErrUnavailable, "this server has no PoE driver: switches cannot be read")

// position is where a device is plugged.
type position struct {
	sw   string // switch MAC
	port int
}

// switchesOf resolves set to switches with lldp.explore=true, or returns
// an error naming the devices that are not.
func switchesOf(ctx context.Context, inv *inventory, set, requester string) ([]store.Device, error) {
	devs, err := inv.resolve(ctx, cmp.Or(set, nodeset.ExplorableSwitches), requester, false)
	if err != nil {
		return nil, err
	}
	var notSwitch, notExplorable []string
	for _, d := range devs {
		switch {
		case d.Type != store.TypeSwitch:
			notSwitch = append(notSwitch, fmt.Sprintf("%s is not a switch, it is a %s.", d.Name, d.Type))
		case !vocab.On(inv.settings[d.MAC], vocab.LLDPExplore):
			notExplorable = append(notExplorable, d.Name)
		}
	}
	if len(notSwitch) > 0 {
		return nil, invalidf("%s", strings.Join(notSwitch, "\n"))
	}
	if len(notExplorable) > 0 {
		return nil, culprits(invalidf("cannot detect switch ports of %s because \"lldp.explore\" config option is not enabled.",
			strings.Join(notExplorable, ", ")), notExplorable)
	}
	return devs, nil
}

// rescan scans the switches of the request in parallel, records where each
// LLDP neighbour sits and reports the changes. A switch that cannot be read
// changes nothing of its links.
func (s *Server) rescan(ctx context.Context, req api.RescanRequest) (api.RescanResult, error) {
	res := api.RescanResult{Switches: []api.ScannedSwitch{}, Changes: []api.LinkChange{}}
	if _, err := requireAdmin(ctx, "A rescan (it records links and devices)"); err != nil {
		return res, err
	}
	if s.cfg.PoE == nil {
		return res, errNoPoE
	}
	inv, err := s.inventory(ctx)
	if err != nil {
		return res, err
	}
	switches, err := switchesOf(ctx, inv, req.Set, req.Requester)
	if err != nil {
		return res, err
	}
	start := time.Now()
	topos := make([]poe.Topology, len(switches))
	errs := make([]error, len(switches))
	var wg sync.WaitGroup
	for i, sw := range switches {
		wg.Go(func() { topos[i], errs[i] = s.cfg.PoE.Scan(ctx, sw.MAC) })
	}
	wg.Wait()

	// One rescan applies its findings at a time: two would fight over links.
	s.rescanMu.Lock()
	defer s.rescanMu.Unlock()
	if inv, err = s.inventory(ctx); err != nil {
		return res, err
	}
	byMAC := map[string]store.Device{}
	for _, d := range inv.devices {
		byMAC[d.MAC] = d
	}
	links, offs, err := s.linksAndOffs(ctx)
	if err != nil {
		return res, err
	}
	recorded := map[string]position{}
	for _, l := range links {
		recorded[l.NodeMAC] = position{l.SwitchMAC, l.Port}
	}
	offReason := map[position]string{}
	for _, o := range offs {
		offReason[position{o.SwitchMAC, o.Port}] = o.Reason
	}

	// What the switches see: device MAC -> position.
	seen := map[string]position{}
	sysNames := map[string]string{}
	occupied := map[position][]string{} // device MACs seen on a port
	scanned := map[string]bool{}        // switches read
	var added []string
	for i, sw := range switches {
		ss := api.ScannedSwitch{Name: sw.Name, OK: errs[i] == nil, Neighbours: len(topos[i].Neighbours)}
		if errs[i] != nil {
			ss.Error = errs[i].Error()
			s.log.Warn("rescan: switch not read", "switch", sw.Name, "err", errs[i])
			res.Switches = append(res.Switches, ss)
			continue
		}
		res.Switches = append(res.Switches, ss)
		scanned[sw.MAC] = true
		for _, n := range topos[i].Neighbours {
			if n.MAC == nil {
				res.Messages = append(res.Messages, fmt.Sprintf("%s port %d: neighbour %q ignored: its LLDP chassis id is not a MAC address (subtype %d).",
					sw.Name, n.LocalPort, n.SysName, n.ChassisIDSubtype))
				continue
			}
			if err := linkPortRange.Check(int64(n.LocalPort)); err != nil {
				res.Messages = append(res.Messages, fmt.Sprintf("%s: neighbour %q ignored: %v.", sw.Name, n.SysName, err))
				continue
			}
			mac := n.MAC.String()
			d, known := byMAC[mac]
			if !known {
				if d, err = s.addUnknown(ctx, mac, inv); err != nil {
					return res, err
				}
				byMAC[mac] = d
				inv.byName[d.Name] = -1
				added = append(added, mac)
			}
			if d.Type == store.TypeSwitch || mac == sw.MAC {
				continue // switches are linked to nodes, not to each other
			}
			p := position{sw.MAC, n.LocalPort}
			if prev, dup := seen[mac]; dup && prev != p {
				res.Messages = append(res.Messages, fmt.Sprintf("%s is seen on two ports (%s port %d and %s port %d): the first one is kept.",
					d.Name, byMAC[prev.sw].Name, prev.port, sw.Name, n.LocalPort))
				continue
			}
			seen[mac] = p
			sysNames[mac] = n.SysName
			occupied[p] = append(occupied[p], mac)
		}
	}

	change := func(kind, mac string, p position) api.LinkChange {
		d := byMAC[mac]
		return api.LinkChange{Change: kind, Device: d.Name, MAC: mac, Type: string(d.Type), Switch: byMAC[p.sw].Name, Port: p.port,
			SysName: sysNames[mac], Added: slices.Contains(added, mac)}
	}
	for mac, p := range seen {
		old, had := recorded[mac]
		if had && old == p {
			continue
		}
		if err := s.store.SetLink(ctx, store.Link{NodeMAC: mac, SwitchMAC: p.sw, Port: p.port}); err != nil {
			return res, err
		}
		s.ps.Touch(mac) // a node plugged somewhere new gets a full powersave period
		c := change(api.LinkNew, mac, p)
		if had {
			c.Change, c.FromSwitch, c.FromPort = api.LinkMoved, byMAC[old.sw].Name, old.port
		}
		res.Changes = append(res.Changes, c)
	}
	for mac, p := range recorded {
		if _, ok := seen[mac]; ok || !scanned[p.sw] {
			continue
		}
		c := change(api.LinkUnseen, mac, p)
		if others := occupied[p]; len(others) > 0 {
			if err := s.store.DeleteLink(ctx, mac); err != nil {
				return res, err
			}
			c.Change, c.ReplacedBy = api.LinkGone, byMAC[others[0]].Name
		} else {
			c.PoEOff = offReason[p]
		}
		res.Changes = append(res.Changes, c)
	}
	slices.SortFunc(res.Changes, func(a, b api.LinkChange) int {
		return cmp.Or(strings.Compare(a.Switch, b.Switch), a.Port-b.Port, strings.Compare(a.Device, b.Device))
	})
	failed := 0
	for _, ss := range res.Switches {
		if !ss.OK {
			failed++
		}
	}
	s.log.Info("rescan done", "switches", len(switches), "failed", failed, "changes", len(res.Changes),
		"added", len(added), "by", req.Requester, "elapsed", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// addUnknown adds a device seen by LLDP but absent from the inventory, as
// WalT does, with type unknown and a name made from its MAC.
func (s *Server) addUnknown(ctx context.Context, mac string, inv *inventory) (store.Device, error) {
	base := "unknown-" + strings.ReplaceAll(mac[9:], ":", "")
	name := base
	for i := 2; ; i++ {
		if _, taken := inv.byName[name]; !taken {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	d := store.Device{MAC: mac, Name: name, Type: store.TypeUnknown, CreatedAt: time.Now()}
	if err := s.store.AddDevice(ctx, d); err != nil {
		return d, fmt.Errorf("add device %s seen by LLDP: %w", mac, err)
	}
	s.log.Debug("rescan: new device", "device", name, "mac", mac)
	return d, nil
}

// topology answers GET /topology from the store.
func (s *Server) topology(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		writeError(w, s.log, err)
		return
	}
	inv, err := s.inventory(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	ports, err := s.portsByPosition(r.Context(), inv)
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	out := api.Topology{Switches: []api.SwitchTree{}, Unplaced: []string{}}
	placed := map[string]bool{}
	for _, p := range ports {
		for _, d := range p.Devices {
			placed[d.Name] = true
		}
	}
	for _, d := range inv.devices {
		switch {
		case d.Type == store.TypeSwitch:
			out.Switches = append(out.Switches, api.SwitchTree{Name: d.Name, MAC: d.MAC, IP: d.IP, Ports: ports.of(d.MAC)})
		case d.Type == store.TypeNode && !placed[d.Name]:
			out.Unplaced = append(out.Unplaced, d.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// portMap is the recorded state of switch ports: devices and power-off
// records, by position.
type portMap map[position]*api.PortInfo

// of returns the ports of a switch that have a device or a power-off
// record, sorted.
func (m portMap) of(switchMAC string) []api.PortInfo {
	out := []api.PortInfo{}
	for p, info := range m {
		if p.sw == switchMAC {
			out = append(out, *info)
		}
	}
	slices.SortFunc(out, func(a, b api.PortInfo) int { return a.Port - b.Port })
	return out
}

// linksAndOffs reads the links and the power-off records.
func (s *Server) linksAndOffs(ctx context.Context) ([]store.Link, []store.PoEOff, error) {
	links, err := s.store.Links(ctx)
	if err != nil {
		return nil, nil, err
	}
	offs, err := s.store.PoEOffs(ctx)
	return links, offs, err
}

func (s *Server) portsByPosition(ctx context.Context, inv *inventory) (portMap, error) {
	links, offs, err := s.linksAndOffs(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]store.Device{}
	for _, d := range inv.devices {
		names[d.MAC] = d
	}
	m := portMap{}
	get := func(p position) *api.PortInfo {
		if m[p] == nil {
			m[p] = &api.PortInfo{Port: p.port}
		}
		return m[p]
	}
	for _, l := range links {
		d := names[l.NodeMAC]
		info := get(position{l.SwitchMAC, l.Port})
		info.Devices = append(info.Devices, api.PortDevice{Name: d.Name, Type: string(d.Type)})
	}
	for _, info := range m {
		slices.SortFunc(info.Devices, func(a, b api.PortDevice) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, o := range offs {
		get(position{o.SwitchMAC, o.Port}).PoEOff = o.Reason
	}
	return m, nil
}

// switchPorts answers GET /switches/{name}/ports: the ports read live over
// SNMP, with the recorded devices and power-off records.
func (s *Server) switchPorts(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		writeError(w, s.log, err)
		return
	}
	out, err := s.readSwitchPorts(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) readSwitchPorts(ctx context.Context, name string) (api.PortConfig, error) {
	if s.cfg.PoE == nil {
		return api.PortConfig{}, errNoPoE
	}
	inv, err := s.inventory(ctx)
	if err != nil {
		return api.PortConfig{}, err
	}
	i, ok := inv.byName[name]
	if !ok {
		return api.PortConfig{}, culprits(kindf(vocab.ErrNotFound, "No device with name '%s' found.", name), []string{name})
	}
	sw := inv.devices[i]
	if _, err := switchesOf(ctx, inv, sw.Name, ""); err != nil {
		return api.PortConfig{}, err
	}
	live, err := s.cfg.PoE.ReadPorts(ctx, sw.MAC)
	if err != nil {
		kind := vocab.ErrUnavailable
		if errors.Is(err, power.ErrUnknownPosition) {
			kind = vocab.ErrInvalid // no address, bad settings
		}
		return api.PortConfig{}, culprits(kindf(kind, "%s", err), []string{sw.Name})
	}
	recorded, err := s.portsByPosition(ctx, inv)
	if err != nil {
		return api.PortConfig{}, err
	}
	out := api.PortConfig{Switch: sw.Name, PoEReboots: vocab.On(inv.settings[sw.MAC], vocab.PoEReboots), Ports: []api.PortInfo{}}
	listed := map[int]bool{}
	for _, p := range live {
		info := api.PortInfo{Port: p.Port, Name: p.Name, PoE: api.PoEUnavailable}
		if p.HasPoE {
			info.PoE, info.Delivering = api.PoEOff, p.Delivering
			if p.Enabled {
				info.PoE = api.PoEOn
			}
		}
		if rec := recorded[position{sw.MAC, p.Port}]; rec != nil {
			info.Devices, info.PoEOff = rec.Devices, rec.PoEOff
		}
		out.Ports = append(out.Ports, info)
		listed[p.Port] = true
	}
	// Recorded ports the switch does not list (a wrong manual link, say).
	for _, rec := range recorded.of(sw.MAC) {
		if !listed[rec.Port] {
			rec.PoE = api.PoEUnavailable
			out.Ports = append(out.Ports, rec)
		}
	}
	slices.SortFunc(out.Ports, func(a, b api.PortInfo) int { return a.Port - b.Port })
	return out, nil
}
