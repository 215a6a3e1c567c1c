package client

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// LocalIdentity returns the IP address a node reports and the MAC address
// of the interface holding it. The IP is listenHost when it is a specific
// address (as with simulated nodes on 127.x.y.z), else the source address
// this machine uses to reach serverURL. mac is empty when the interface has
// none (loopback): the caller must then be given one.
func LocalIdentity(serverURL, listenHost string) (ip, mac string, err error) {
	addr := net.ParseIP(listenHost)
	if addr == nil || addr.IsUnspecified() {
		u, err := url.Parse(serverURL)
		if err != nil || u.Host == "" {
			return "", "", fmt.Errorf("server URL %q: expected http://HOST:PORT", serverURL)
		}
		port := u.Port()
		if port == "" {
			port = "80"
		}
		// A UDP "connection" sends nothing; it only picks the route.
		c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
		if err != nil {
			return "", "", fmt.Errorf("find the local address towards %s: %w", u.Host, err)
		}
		addr = c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return addr.String(), "", fmt.Errorf("list network interfaces: %w", err)
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(addr) || ok && addr.IsLoopback() && n.Contains(addr) {
				return addr.String(), ifc.HardwareAddr.String(), nil
			}
		}
	}
	return addr.String(), "", errors.New("no interface holds " + addr.String())
}
