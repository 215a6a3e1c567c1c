package poe

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
)

// Port is one interface of a switch (IF-MIB ifTable, ifName from ifXTable).
type Port struct {
	IfIndex int
	Descr   string
	Name    string
	Type    int    // ifType; 6 = ethernetCsmacd
	Speed   uint64 // ifSpeed, bits per second
}

// Neighbour is a device the switch sees through LLDP (LLDP-MIB lldpRemTable).
type Neighbour struct {
	// LocalPort is the switch port it is on (lldpRemLocalPortNum): the
	// number power.Outlet.Port takes.
	LocalPort int
	// MAC is the neighbour's chassis id when its subtype is macAddress (4),
	// else nil (ChassisID has the raw id).
	MAC              net.HardwareAddr
	ChassisIDSubtype int
	ChassisID        []byte
	SysName          string
}

// Topology is what a switch says about its ports and neighbours.
type Topology struct {
	Ports      []Port      // by ifIndex
	Neighbours []Neighbour // by local port
}

const (
	lldpColChassisSubtype = 4
	lldpColChassisID      = 5
	lldpColSysName        = 9
	chassisSubtypeMAC     = 4
)

// Scan reads the interfaces and LLDP neighbours of the switch whose key is
// key (walt device rescan), and forgets what the driver learnt about the
// switch, so that the next power operation discovers it again. Errors name
// the switch and wrap power.ErrUnreachable, power.ErrUnknownPosition or
// power.ErrDenied like power operations.
func (d *Driver) Scan(ctx context.Context, key string) (Topology, error) {
	sw, err := d.lookup(ctx, key)
	if err != nil {
		return Topology{}, fmt.Errorf("scan switch %s: %w", key, err)
	}
	name := sw.Name
	st := d.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reset()
	st.limit = d.cfg.MaxVarbinds
	sess, err := d.open(&sw, &st.limit)
	if err != nil {
		return Topology{}, fmt.Errorf("scan switch %s: %w", name, err)
	}
	defer sess.close()
	topo, err := readTopology(ctx, sess)
	if err != nil {
		return Topology{}, fmt.Errorf("scan switch %s: %w", name, err)
	}
	return topo, nil
}

func readTopology(ctx context.Context, s *session) (Topology, error) {
	var topo Topology
	ports := map[int]*Port{}
	port := func(i int) *Port {
		p, ok := ports[i]
		if !ok {
			p = &Port{IfIndex: i}
			ports[i] = p
		}
		return p
	}
	columns := []struct {
		oid string
		set func(*Port, []byte, int64)
	}{
		{oidIfDescr, func(p *Port, b []byte, _ int64) { p.Descr = string(b) }},
		{oidIfType, func(p *Port, _ []byte, n int64) { p.Type = int(n) }},
		{oidIfSpeed, func(p *Port, _ []byte, n int64) { p.Speed = uint64(n) }},
		{oidIfName, func(p *Port, b []byte, _ int64) { p.Name = string(b) }},
	}
	for _, c := range columns {
		pdus, err := s.walk(ctx, c.oid)
		if err != nil {
			return Topology{}, err
		}
		for _, pdu := range pdus {
			if idx := index(pdu.Name, c.oid); len(idx) == 1 {
				n, _ := asInt(pdu)
				c.set(port(idx[0]), asBytes(pdu), n)
			}
		}
	}
	for _, p := range ports {
		topo.Ports = append(topo.Ports, *p)
	}
	slices.SortFunc(topo.Ports, func(a, b Port) int { return a.IfIndex - b.IfIndex })

	pdus, err := s.walk(ctx, oidLldpRemEntry)
	if err != nil {
		return Topology{}, err
	}
	// Index: column . timeMark . localPortNum . remIndex
	type key struct{ port, rem int }
	neigh := map[key]*Neighbour{}
	for _, pdu := range pdus {
		idx := index(pdu.Name, oidLldpRemEntry)
		if len(idx) != 4 {
			continue
		}
		k := key{idx[2], idx[3]}
		n, ok := neigh[k]
		if !ok {
			n = &Neighbour{LocalPort: idx[2]}
			neigh[k] = n
		}
		switch idx[0] {
		case lldpColChassisSubtype:
			v, _ := asInt(pdu)
			n.ChassisIDSubtype = int(v)
		case lldpColChassisID:
			n.ChassisID = slices.Clone(asBytes(pdu))
		case lldpColSysName:
			n.SysName = string(asBytes(pdu))
		}
	}
	for _, n := range neigh {
		if n.ChassisIDSubtype == chassisSubtypeMAC && len(n.ChassisID) == 6 {
			n.MAC = net.HardwareAddr(n.ChassisID)
		}
		topo.Neighbours = append(topo.Neighbours, *n)
	}
	slices.SortFunc(topo.Neighbours, func(a, b Neighbour) int {
		return cmp.Or(a.LocalPort-b.LocalPort, slices.Compare(a.ChassisID, b.ChassisID))
	})
	return topo, nil
}
