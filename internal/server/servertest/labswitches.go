package servertest

import (
	"net"
	"strconv"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
)

// RegisterLabSwitches registers the lab's switches with the server (SNMP
// v2 on their port, LLDP exploration, PoE reboots with a 200 ms delay,
// then settings) and records where each node is plugged, as a rescan
// would: the server can then hard-reboot the lab's nodes through PoE
// (with WithPoE) and shows them on their ports.
func (e *Env) RegisterLabSwitches(t testing.TB, l *lab.Lab, settings ...string) {
	t.Helper()
	c := e.Client
	for _, sw := range l.Switches {
		_, port, _ := net.SplitHostPort(sw.Addr())
		if _, err := c.AddDevice(t.Context(), api.AddDevice{Name: sw.Name(), IP: sw.IP, MAC: sw.MAC, Type: "switch"}); err != nil {
			t.Fatal(err)
		}
		set := append([]string{"snmp.version=2", "snmp.community=private", "snmp.port=" + port, "lldp.explore=true",
			"poe.reboots=true", "poe.delay=200ms"}, settings...)
		if _, err := c.SetConfig(t.Context(), api.ConfigRequest{Set: sw.Name(), Settings: set}); err != nil {
			t.Fatal(err)
		}
		for i, n := range sw.Nodes {
			if err := c.SetLink(t.Context(), api.Link{Node: n.Name(), Switch: sw.Name(), Port: i + 1}); err != nil {
				t.Fatalf("link %s to %s port %d: %v", n.Name(), sw.Name(), i+1, err)
			}
		}
	}
}

// LabPositions returns where the lab plugs its nodes: name ->
// "switch:port", as Positions says once RegisterLabSwitches has run.
func LabPositions(l *lab.Lab) map[string]string {
	out := map[string]string{}
	for _, sw := range l.Switches {
		for i, n := range sw.Nodes {
			out[n.Name()] = sw.Name() + ":" + strconv.Itoa(i+1)
		}
	}
	return out
}
