package servertest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/wiring"
)

// WithPoE is a New modifier that wires the PoE driver as walt-server does
// (hard reboots, rescans, port states, powersave), with SNMP timeouts of
// 200 ms and no retry so that tests of unreachable switches are quick.
func WithPoE(t testing.TB) func(*server.Config) {
	return func(c *server.Config) {
		pc := poe.DefaultConfig()
		pc.Timeout, pc.Retries = 200*time.Millisecond, 0
		if _, _, err := wiring.Drivers(c, pc, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// Community is the SNMP community of the switches AddSwitch starts.
const Community = "s3cret"

// AddSwitch starts a simulated switch on ip (any free UDP port) and
// registers it with the server, its MAC being cfg.ChassisMAC if set, with
// snmp.version=2, the community, snmp.port, then settings. cfg.Ports
// defaults to 8.
func (e *Env) AddSwitch(t testing.TB, name, ip string, cfg snmpswitch.Config, settings ...string) *snmpswitch.Switch {
	t.Helper()
	cfg.Name, cfg.Addr, cfg.Community = name, net.JoinHostPort(ip, "0"), Community
	if cfg.Ports == 0 {
		cfg.Ports = 8
	}
	sim, err := snmpswitch.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	_, port, _ := net.SplitHostPort(sim.Addr())
	if _, err := e.Client.AddDevice(t.Context(), api.AddDevice{Name: name, IP: ip, MAC: cfg.ChassisMAC.String(), Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	settings = append([]string{"snmp.version=2", "snmp.community=" + Community, "snmp.port=" + port}, settings...)
	if _, err := e.Client.SetConfig(t.Context(), api.ConfigRequest{Set: name, Settings: settings}); err != nil {
		t.Fatal(err)
	}
	return sim
}

// Positions returns the recorded links as device name -> "switch:port".
func (e *Env) Positions(t testing.TB) map[string]string {
	t.Helper()
	links, err := e.Store.Links(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	devs, err := e.Store.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	name := map[string]string{}
	for _, d := range devs {
		name[d.MAC] = d.Name
	}
	out := map[string]string{}
	for _, l := range links {
		out[name[l.NodeMAC]] = name[l.SwitchMAC] + ":" + strconv.Itoa(l.Port)
	}
	return out
}
