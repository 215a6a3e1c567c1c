package cli_test

import (
	"net"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// Topology CLI tests use 127.65.0.0/16.

func newPoEEnv(t *testing.T) *env {
	e := servertest.New(t, addrs, servertest.WithPoE(t))
	for i, n := range []string{"n1", "n2", "n3"} {
		if _, err := e.Client.ReportNode(t.Context(), api.NodeReport{MAC: "02:65:00:00:00:0" + string(rune('1'+i)), IP: "127.65.0." + string(rune('1'+i)), Name: n, Model: "rpi-b"}); err != nil {
			t.Fatal(err)
		}
	}
	return &env{Env: e, url: e.URL, c: e.Client, tokens: e.Tokens}
}

func mac(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}

func TestDeviceTopologyCommands(t *testing.T) {
	t.Parallel()
	e := newPoEEnv(t)
	sim := e.AddSwitch(t, "sw1", "127.65.255.1", snmpswitch.Config{Ports: 4, Neighbours: []snmpswitch.Neighbour{
		{LocalPort: 1, MAC: mac("02:65:00:00:00:01"), SysName: "n1"},
		{LocalPort: 2, MAC: mac("02:65:00:00:00:02"), SysName: "n2"},
		{LocalPort: 3, MAC: mac("02:65:00:00:00:99"), SysName: "printer"},
	}}, "lldp.explore=true", "poe.reboots=true")
	sim.SetEnabled(4, false)
	e.AddSwitch(t, "sw2", "127.65.255.2", snmpswitch.Config{})
	e.AddSwitch(t, "sw3", "127.65.255.3", snmpswitch.Config{}, "lldp.explore=true")
	e.golden(t, "topology",
		step{args: "device tree"},
		step{args: "device rescan"},
		step{args: "device link n3 sw2 4"},
		step{args: "device link n3 sw2 four"},
		step{args: "device link n3 sw9 4"},
		step{args: "device link n3 n2 4"},
		step{args: "device tree"},
		step{args: "device port-config sw1"},
		step{args: "device port-config sw2"},
		step{args: "device rescan n1"},
		step{args: "device rescan sw1"},
	)
}

// A switch that does not answer makes rescan exit 1 after recording what
// the others said, and port-config fail with the switch named.
func TestDeviceTopologyCommandsSwitchDown(t *testing.T) {
	t.Parallel()
	e := newPoEEnv(t)
	e.AddSwitch(t, "sw1", "127.65.255.11", snmpswitch.Config{Neighbours: []snmpswitch.Neighbour{
		{LocalPort: 5, MAC: mac("02:65:00:00:00:01")}}}, "lldp.explore=true")
	down := e.AddSwitch(t, "sw2", "127.65.255.12", snmpswitch.Config{}, "lldp.explore=true")
	down.SetUnreachable(true)
	stdout, stderr, code := e.run(t, false, "device", "rescan")
	if code != 1 || !strings.Contains(stderr, "Switch sw2: scan failed (scan switch sw2: ") ||
		!strings.Contains(stderr, "device unreachable") || strings.Contains(stderr, servertest.Community) ||
		!strings.Contains(stdout, "Node n1: new on sw1 port 5.") {
		t.Errorf("rescan with sw2 down: exit %d\n%s%s\nwant exit 1, sw2's failure on stderr, n1 recorded", code, stdout, stderr)
	}
	stdout, stderr, code = e.run(t, false, "device", "port-config", "sw2")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "Error: read ports of switch sw2: ") || !strings.Contains(stderr, "no answer from sw2") {
		t.Errorf("port-config of a switch down: exit %d\n%s%s\nwant exit 1 and an error naming sw2", code, stdout, stderr)
	}
}
