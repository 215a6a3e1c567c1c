package snmpswitch

import (
	"fmt"
	"time"

	"github.com/gosnmp/gosnmp"
)

func constant(t gosnmp.Asn1BER, v any) func() (gosnmp.Asn1BER, any) {
	return func() (gosnmp.Asn1BER, any) { return t, v }
}

// buildMIB fills s.mib from the configuration. Values of PoE objects read the
// port state (under s.mu, held by the request handler).
func (s *Switch) buildMIB() {
	m := &s.mib
	scalar := func(base string, t gosnmp.Asn1BER, v any) {
		o := mustOID(base)
		m.objects = append(m.objects, o)
		m.add(entry{oid: o.with(0), get: constant(t, v)})
	}
	column := func(col oid, index []int, get func() (gosnmp.Asn1BER, any)) entry {
		return entry{oid: col.with(index...), get: get}
	}
	objects := func(base string, cols ...int) []oid {
		var r []oid
		b := mustOID(base)
		for _, c := range cols {
			r = append(r, b.with(c))
		}
		m.objects = append(m.objects, r...)
		return r
	}

	scalar(oidSysDescr, gosnmp.OctetString, fmt.Sprintf("walt simulated PoE switch (%s variant)", s.cfg.Variant))
	sysObject := map[Variant]string{Standard: ".1.3.6.1.4.1.8072.3.2.10", Netgear: ".1.3.6.1.4.1.4526.100.1", TPLink: ".1.3.6.1.4.1.11863.1.1"}
	scalar(oidSysObjectID, gosnmp.ObjectIdentifier, sysObject[s.cfg.Variant])
	up := mustOID(oidSysUpTime)
	m.objects = append(m.objects, up)
	m.add(entry{oid: up.with(0), get: func() (gosnmp.Asn1BER, any) {
		return gosnmp.TimeTicks, uint32(time.Since(s.start) / (10 * time.Millisecond))
	}})
	scalar(oidSysName, gosnmp.OctetString, s.cfg.Name)
	scalar(oidIfNumber, gosnmp.Integer, len(s.cfg.Interfaces))

	// snmpInGetRequests, snmpInGetNexts, snmpInSetRequests (RFC 1213): the
	// requests received, read under s.mu like the PoE objects. walt-bench
	// counts SETs per switch with them, as on a real switch.
	counters := objects(oidSnmp, 15, 16, 17)
	for i, n := range []*int{&s.stats.Gets, &s.stats.GetNexts, &s.stats.Sets} {
		m.add(entry{oid: counters[i].with(0), get: func() (gosnmp.Asn1BER, any) { return gosnmp.Counter32, uint32(*n) }})
	}

	ifc := objects(oidIfEntry, 1, 2, 3, 5)
	ifName := objects(oidIfXEntry, 1)
	lldpLoc := objects(oidLldpLocPort, 2, 3, 4)
	for _, i := range s.cfg.Interfaces {
		m.add(column(ifc[0], []int{i.Index}, constant(gosnmp.Integer, i.Index)))
		m.add(column(ifc[1], []int{i.Index}, constant(gosnmp.OctetString, i.Descr)))
		m.add(column(ifc[2], []int{i.Index}, constant(gosnmp.Integer, i.Type)))
		m.add(column(ifc[3], []int{i.Index}, constant(gosnmp.Gauge32, uint(i.Speed))))
		m.add(column(ifName[0], []int{i.Index}, constant(gosnmp.OctetString, i.Name)))
		if i.Type == 6 {
			// lldpLocPortTable: LLDP port N is interface N, port id = ifName.
			m.add(column(lldpLoc[0], []int{i.Index}, constant(gosnmp.Integer, 5))) // interfaceName
			m.add(column(lldpLoc[1], []int{i.Index}, constant(gosnmp.OctetString, i.Name)))
			m.add(column(lldpLoc[2], []int{i.Index}, constant(gosnmp.OctetString, i.Descr)))
		}
	}

	loc := mustOID(oidLldpLocal)
	m.objects = append(m.objects, loc.with(1), loc.with(2), loc.with(3))
	m.add(entry{oid: loc.with(1, 0), get: constant(gosnmp.Integer, 4)})
	m.add(entry{oid: loc.with(2, 0), get: constant(gosnmp.OctetString, []byte(s.cfg.ChassisMAC))})
	m.add(entry{oid: loc.with(3, 0), get: constant(gosnmp.OctetString, s.cfg.Name)})

	rem := objects(oidLldpRem, 4, 5, 6, 7, 9)
	remIndex := map[int]int{}
	for _, n := range s.cfg.Neighbours {
		remIndex[n.LocalPort]++
		idx := []int{0, n.LocalPort, remIndex[n.LocalPort]}     // timeMark.localPortNum.index
		m.add(column(rem[0], idx, constant(gosnmp.Integer, 4))) // macAddress
		m.add(column(rem[1], idx, constant(gosnmp.OctetString, []byte(n.MAC))))
		m.add(column(rem[2], idx, constant(gosnmp.Integer, 3))) // macAddress
		m.add(column(rem[3], idx, constant(gosnmp.OctetString, []byte(n.MAC))))
		m.add(column(rem[4], idx, constant(gosnmp.OctetString, n.SysName)))
	}

	switch s.cfg.Variant {
	case Standard, Netgear:
		base := oidPethEntry
		if s.cfg.Variant == Netgear {
			base = oidNetgearPeth
		}
		cols := objects(base, 3, 6)
		for _, p := range s.ports {
			idx := []int{p.Group, p.Port}
			m.add(entry{
				oid: cols[0].with(idx...),
				get: func() (gosnmp.Asn1BER, any) {
					if p.admin {
						return gosnmp.Integer, 1
					}
					return gosnmp.Integer, 2
				},
				check: intIn(1, 2),
				apply: func(v any) { s.setAdmin(p, v.(int) == 1) },
			})
			m.add(column(cols[1], idx, func() (gosnmp.Asn1BER, any) {
				switch {
				case !p.admin:
					return gosnmp.Integer, 1 // disabled
				case p.device:
					return gosnmp.Integer, 3 // deliveringPower
				}
				return gosnmp.Integer, 2 // searching
			}))
		}
	case TPLink:
		cols := objects(oidTPLinkPoE, 2, 11)
		for _, p := range s.ports {
			m.add(entry{
				oid: cols[0].with(p.Port),
				get: func() (gosnmp.Asn1BER, any) {
					if p.admin {
						return gosnmp.Integer, 1
					}
					return gosnmp.Integer, 0
				},
				check: intIn(0, 1),
				apply: func(v any) { s.setAdmin(p, v.(int) == 1) },
			})
			m.add(column(cols[1], []int{p.Port}, func() (gosnmp.Asn1BER, any) {
				if p.delivering() {
					return gosnmp.Integer, 2 // on
				}
				return gosnmp.Integer, 0 // off
			}))
		}
	}
	m.sort()
}

// intIn accepts an INTEGER equal to one of values.
func intIn(values ...int) func(gosnmp.Asn1BER, any) gosnmp.SNMPError {
	return func(t gosnmp.Asn1BER, v any) gosnmp.SNMPError {
		if t != gosnmp.Integer {
			return gosnmp.WrongType
		}
		n, ok := v.(int)
		if !ok {
			return gosnmp.WrongType
		}
		for _, ok := range values {
			if n == ok {
				return gosnmp.NoError
			}
		}
		return gosnmp.WrongValue
	}
}
