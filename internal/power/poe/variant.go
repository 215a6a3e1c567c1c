package poe

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/walt-testbed/walt/internal/power"
)

// variant is one dialect of PoE objects.
type variant struct {
	name       string
	admin      string // admin enable column
	status     string // power status column
	on, off    int    // admin values
	delivering int    // status value: the port delivers power
	identity   bool   // indexed by port number, which is also the LLDP port
}

// OIDs, numeric: the driver needs no MIB files.
const (
	oidPethAdmin        = ".1.3.6.1.2.1.105.1.1.1.3" // pethPsePortAdminEnable
	oidPethDetection    = ".1.3.6.1.2.1.105.1.1.1.6" // pethPsePortDetectionStatus
	oidNetgearAdmin     = ".1.3.6.1.4.1.4526.11.16.1.1.1.3"
	oidNetgearDetection = ".1.3.6.1.4.1.4526.11.16.1.1.1.6"
	oidTPLinkStatus     = ".1.3.6.1.4.1.11863.6.56.1.1.2.1.1.2"  // tpPoePortStatus
	oidTPLinkPower      = ".1.3.6.1.4.1.11863.6.56.1.1.2.1.1.11" // tpPoePowerStatus

	oidIfDescr       = ".1.3.6.1.2.1.2.2.1.2"
	oidIfType        = ".1.3.6.1.2.1.2.2.1.3"
	oidIfSpeed       = ".1.3.6.1.2.1.2.2.1.5"
	oidIfName        = ".1.3.6.1.2.1.31.1.1.1.1"
	oidLldpLocPortID = ".1.0.8802.1.1.2.1.3.7.1.3"
	oidLldpRemEntry  = ".1.0.8802.1.1.2.1.4.1.1"
)

// Probe order is WalT's: TP-Link first, because TP-Link switches stop
// answering for a while after requests for objects they lack.
var variants = []*variant{
	{name: "tp-link", admin: oidTPLinkStatus, status: oidTPLinkPower, on: 1, off: 0, delivering: 2, identity: true},
	{name: "standard", admin: oidPethAdmin, status: oidPethDetection, on: 1, off: 2, delivering: 3},
	{name: "netgear", admin: oidNetgearAdmin, status: oidNetgearDetection, on: 1, off: 2, delivering: 3},
}

func (v *variant) suffix(p PoEIndex) string {
	if v.identity {
		return "." + strconv.Itoa(p.Port)
	}
	return "." + strconv.Itoa(p.Group) + "." + strconv.Itoa(p.Port)
}

func (v *variant) adminOID(p PoEIndex) string  { return v.admin + v.suffix(p) }
func (v *variant) statusOID(p PoEIndex) string { return v.status + v.suffix(p) }

// detect finds the switch's PoE variant and lists its PoE ports.
func detect(ctx context.Context, s *session) (*variant, []PoEIndex, error) {
	for _, v := range variants {
		pdus, err := s.walk(ctx, v.admin)
		if err != nil {
			return nil, nil, fmt.Errorf("detect PoE objects: %w", err)
		}
		var ports []PoEIndex
		for _, pdu := range pdus {
			idx := index(pdu.Name, v.admin)
			switch {
			case v.identity && len(idx) == 1:
				ports = append(ports, PoEIndex{Port: idx[0]})
			case !v.identity && len(idx) == 2:
				ports = append(ports, PoEIndex{Group: idx[0], Port: idx[1]})
			}
		}
		if len(ports) > 0 {
			return v, ports, nil
		}
	}
	return nil, nil, fmt.Errorf("%s answers no PoE objects (tried tp-link, standard, netgear): %w", s.sw.Address, power.ErrUnsupported)
}

// discoverMapping returns which PoE port powers each LLDP port, for variants
// that need the heuristics.
func discoverMapping(ctx context.Context, s *session, ports []PoEIndex) (map[int]PoEIndex, error) {
	types, err := s.walk(ctx, oidIfType)
	if err != nil {
		return nil, err
	}
	speeds, err := s.walk(ctx, oidIfSpeed)
	if err != nil {
		return nil, err
	}
	byIndex := map[int]*Interface{}
	var ifs []Interface
	for _, pdu := range types {
		if idx := index(pdu.Name, oidIfType); len(idx) == 1 {
			t, _ := asInt(pdu)
			ifs = append(ifs, Interface{Index: idx[0], Type: int(t)})
		}
	}
	for i := range ifs {
		byIndex[ifs[i].Index] = &ifs[i]
	}
	for _, pdu := range speeds {
		if idx := index(pdu.Name, oidIfSpeed); len(idx) == 1 && byIndex[idx[0]] != nil {
			sp, _ := asInt(pdu)
			byIndex[idx[0]].Speed = uint64(sp)
		}
	}
	byIf, err := guessMapping(ifs, ports)
	if err != nil {
		return nil, fmt.Errorf("map PoE ports of %s to interfaces: %w: %w", s.sw.Address, err, power.ErrUnsupported)
	}
	lldpToIf, err := lldpPortsToIfIndex(ctx, s)
	if err != nil {
		return nil, err
	}
	// LLDP port = ifIndex (WalT's assumption) unless the switch says otherwise.
	m := maps.Clone(byIf)
	for lldpPort, ifIndex := range lldpToIf {
		if p, ok := byIf[ifIndex]; ok {
			m[lldpPort] = p
		} else {
			delete(m, lldpPort)
		}
	}
	return m, nil
}

// lldpPortsToIfIndex resolves LLDP local port numbers to ifIndexes where the
// switch numbers them differently: the port id of lldpLocPortTable matched
// against ifName, then ifDescr. Ports it cannot resolve are left out (the
// caller takes LLDP port = ifIndex, as WalT does).
func lldpPortsToIfIndex(ctx context.Context, s *session) (map[int]int, error) {
	ids, err := s.walk(ctx, oidLldpLocPortID)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	byName := map[string]int{}
	for _, col := range []string{oidIfDescr, oidIfName} { // ifName wins: written last
		pdus, err := s.walk(ctx, col)
		if err != nil {
			return nil, err
		}
		for _, pdu := range pdus {
			if idx := index(pdu.Name, col); len(idx) == 1 {
				if name := string(asBytes(pdu)); name != "" {
					byName[name] = idx[0]
				}
			}
		}
	}
	m := map[int]int{}
	for _, pdu := range ids {
		idx := index(pdu.Name, oidLldpLocPortID)
		if len(idx) != 1 {
			continue
		}
		if ifIndex, ok := byName[string(asBytes(pdu))]; ok {
			m[idx[0]] = ifIndex
		}
	}
	return m, nil
}
