package poe

import (
	"errors"
	"fmt"
	"slices"
)

// PoEIndex is the index of a port in a switch's PoE table: (group, port) for
// POWER-ETHERNET-MIB and Netgear; for TP-Link, Group is 0 and Port is the
// port number.
type PoEIndex struct {
	Group, Port int
}

func (p PoEIndex) String() string {
	if p.Group == 0 {
		return fmt.Sprint(p.Port)
	}
	return fmt.Sprintf("%d.%d", p.Group, p.Port)
}

// Interface is what the mapping heuristics need from an IF-MIB ifTable row.
type Interface struct {
	Index int    // ifIndex
	Type  int    // ifType
	Speed uint64 // ifSpeed, bits per second
}

const ifTypeEthernet = 6 // ethernetCsmacd

// poePortSpeeds are the link speeds WalT takes for PoE ports.
var poePortSpeeds = []uint64{10_000_000, 100_000_000, 1_000_000_000}

var errNoMapping = errors.New("could not work out how PoE ports correspond to interfaces: set the port map of the switch explicitly")

// guessMapping returns, for POWER-ETHERNET-MIB and Netgear switches, which
// PoE port powers which interface, keyed by ifIndex. It applies WalT's rules
// in order:
//
//  1. the interfaces at 10 Mb/s, 100 Mb/s or 1 Gb/s are as many as the PoE
//     ports: pair them in order;
//  2. else, if the ethernetCsmacd interfaces have contiguous indexes, pair
//     them in order with the PoE ports (right when PoE ports come first);
//  3. else, if every PoE group has the same size N, cut the interfaces of
//     rule 1 into runs of consecutive indexes and give each group, in
//     order, the first N interfaces of the next run of at least N;
//  4. else fail.
//
// ifs and ports may come in any order; they are sorted first.
func guessMapping(ifs []Interface, ports []PoEIndex) (map[int]PoEIndex, error) {
	if len(ports) == 0 {
		return nil, fmt.Errorf("no PoE ports: %w", errNoMapping)
	}
	ifs = slices.SortedFunc(slices.Values(ifs), func(a, b Interface) int { return a.Index - b.Index })
	ports = slices.SortedFunc(slices.Values(ports), func(a, b PoEIndex) int {
		if a.Group != b.Group {
			return a.Group - b.Group
		}
		return a.Port - b.Port
	})
	zip := func(idx []int, ports []PoEIndex) map[int]PoEIndex {
		m := make(map[int]PoEIndex, len(ports))
		for i := range min(len(idx), len(ports)) {
			m[idx[i]] = ports[i]
		}
		return m
	}

	var bySpeed, ether []int
	for _, i := range ifs {
		if slices.Contains(poePortSpeeds, i.Speed) {
			bySpeed = append(bySpeed, i.Index)
		}
		if i.Type == ifTypeEthernet {
			ether = append(ether, i.Index)
		}
	}
	// Rule 1.
	if len(bySpeed) == len(ports) {
		return zip(bySpeed, ports), nil
	}
	// Rule 2.
	if len(ether) > 0 && ether[len(ether)-1]-ether[0] == len(ether)-1 {
		return zip(ether, ports), nil
	}
	// Rule 3.
	var groups [][]PoEIndex
	for i, p := range ports {
		if i == 0 || p.Group != ports[i-1].Group {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], p)
	}
	n := len(groups[0])
	same := true
	for _, g := range groups {
		same = same && len(g) == n
	}
	if same {
		var runs [][]int
		for i, idx := range bySpeed {
			if i == 0 || idx != bySpeed[i-1]+1 {
				runs = append(runs, nil)
			}
			runs[len(runs)-1] = append(runs[len(runs)-1], idx)
		}
		m := make(map[int]PoEIndex, len(ports))
		r := 0
		for _, g := range groups {
			for r < len(runs) && len(runs[r]) < n {
				r++
			}
			if r == len(runs) {
				m = nil
				break
			}
			for i, p := range g {
				m[runs[r][i]] = p
			}
			r++
		}
		if m != nil {
			return m, nil
		}
	}
	return nil, errNoMapping
}
