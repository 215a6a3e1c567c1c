package vnode

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// AgentPort is the TCP port of WalT's node protocol. Each vnode serves it on
// an address of its own, so every vnode uses the same port.
const AgentPort = 12346

// DefaultAddrPrefix is where vnode addresses are taken from when Config says
// nothing: 127.1.0.0/16 is loopback on Linux without any configuration.
var DefaultAddrPrefix = netip.MustParsePrefix("127.1.0.0/16")

// allocAddr returns the first address of prefix that no vnode uses, that
// does not end in .0 or .255, and on whose agent port nothing else listens
// (another program, or a vnode of another supervisor).
func allocAddr(prefix netip.Prefix, used map[netip.Addr]string) (netip.Addr, error) {
	for a := prefix.Masked().Addr().Next(); prefix.Contains(a); a = a.Next() {
		b := a.As4()
		if b[3] == 0 || b[3] == 255 || used[a] != "" {
			continue
		}
		if !portFree(a) {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("no free address left in %s", prefix)
}

// portFree tells whether the agent port can be bound on a.
func portFree(a netip.Addr) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(AgentPort)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
