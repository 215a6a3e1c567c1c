package poe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/walt-testbed/walt/internal/power"
)

// PortStatus is one port of a switch as ReadPorts reports it.
type PortStatus struct {
	// Port is the LLDP local port number (power.Outlet.Port).
	Port int
	// Name is the interface's ifName, else its ifDescr; empty when no
	// interface matches the port.
	Name string
	// HasPoE is false for ports without a PoE port behind them (uplinks,
	// switches without PoE objects); the fields below are then zero.
	HasPoE bool
	PoE    PoEIndex
	// Enabled is the PoE admin state; Delivering says whether the port
	// powers a device.
	Enabled    bool
	Delivering bool
}

// ReadPorts reads the ports of the switch whose key is key, with the live
// PoE state of each (walt device port-config): every Ethernet interface and
// every port the PoE mapping knows, sorted by port. It changes nothing on
// the switch. A switch without PoE objects is not an error: its ports have
// HasPoE false. Errors name the switch and wrap the power error kinds.
func (d *Driver) ReadPorts(ctx context.Context, key string) ([]PortStatus, error) {
	sw, err := d.lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read ports of switch %s: %w", key, err)
	}
	st := d.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.adopt(&sw)
	ports, err := d.readPorts(ctx, st, &sw)
	if err != nil {
		st.reset()
		return nil, fmt.Errorf("read ports of switch %s: %w", sw.Name, err)
	}
	return ports, nil
}

// +checklocks:st.mu
func (d *Driver) readPorts(ctx context.Context, st *switchState, sw *SwitchConfig) ([]PortStatus, error) {
	sess, err := d.open(sw, &st.limit)
	if err != nil {
		return nil, err
	}
	defer sess.close()
	hasPoE := true
	if err := d.learn(ctx, st, sess); errors.Is(err, power.ErrUnsupported) && st.variant == nil {
		hasPoE = false // no PoE objects at all: list the interfaces
	} else if err != nil {
		return nil, err
	}

	// Interfaces, by ifIndex; LLDP port = ifIndex unless lldpLocPortTable
	// names another interface.
	type iface struct {
		typ         int
		name, descr string
	}
	ifs := map[int]*iface{}
	get := func(i int) *iface {
		if ifs[i] == nil {
			ifs[i] = &iface{}
		}
		return ifs[i]
	}
	columns := []struct {
		oid string
		set func(*iface, []byte, int64)
	}{
		{oidIfType, func(f *iface, _ []byte, n int64) { f.typ = int(n) }},
		{oidIfDescr, func(f *iface, b []byte, _ int64) { f.descr = string(b) }},
		{oidIfName, func(f *iface, b []byte, _ int64) { f.name = string(b) }},
	}
	for _, c := range columns {
		pdus, err := sess.walk(ctx, c.oid)
		if err != nil {
			return nil, err
		}
		for _, pdu := range pdus {
			if idx := index(pdu.Name, c.oid); len(idx) == 1 {
				n, _ := asInt(pdu)
				c.set(get(idx[0]), asBytes(pdu), n)
			}
		}
	}
	lldpToIf, err := lldpPortsToIfIndex(ctx, sess)
	if err != nil {
		return nil, err
	}
	ifToLLDP := map[int]int{}
	for p, i := range lldpToIf {
		ifToLLDP[i] = p
	}
	byPort := map[int]*PortStatus{}
	for i, f := range ifs {
		if f.typ != ifTypeEthernet {
			continue
		}
		p := cmp.Or(ifToLLDP[i], i)
		byPort[p] = &PortStatus{Port: p, Name: cmp.Or(f.name, f.descr)}
	}
	if hasPoE {
		for p := range st.mapping {
			if byPort[p] == nil {
				name := ""
				if f := ifs[cmp.Or(lldpToIf[p], p)]; f != nil {
					name = cmp.Or(f.name, f.descr)
				}
				byPort[p] = &PortStatus{Port: p, Name: name}
			}
		}
	}
	out := make([]PortStatus, 0, len(byPort))
	for _, ps := range byPort {
		out = append(out, *ps)
	}
	slices.SortFunc(out, func(a, b PortStatus) int { return a.Port - b.Port })
	if !hasPoE {
		return out, nil
	}

	var oids []string
	var with []int // indexes in out of the ports with PoE
	for i := range out {
		p, ok := st.mapping[out[i].Port]
		if !ok {
			continue
		}
		out[i].HasPoE, out[i].PoE = true, p
		oids = append(oids, st.variant.adminOID(p), st.variant.statusOID(p))
		with = append(with, i)
	}
	res, err := sess.get(ctx, oids)
	if err != nil {
		return nil, err
	}
	for k, i := range with {
		admin, status := res[2*k], res[2*k+1]
		if admin.err != nil {
			out[i].HasPoE = false // mapped, but the switch lacks the object
			continue
		}
		a, _ := asInt(admin.pdu)
		out[i].Enabled = a == int64(st.variant.on)
		if status.err == nil {
			s, _ := asInt(status.pdu)
			out[i].Delivering = s == int64(st.variant.delivering)
		}
	}
	return out, nil
}
