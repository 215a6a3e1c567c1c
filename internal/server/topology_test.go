package server_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
)

// Topology tests use 127.61.0.0/16 (switches on 127.61.255.x).

func reportNode(t *testing.T, e *env, name, mac, ip string) {
	t.Helper()
	if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: ip, Name: name, Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
}

func hw(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestRescan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, servertest.WithPoE(t))
	ctx := t.Context()
	for i, n := range []string{"n1", "n2", "n3", "n4", "n5", "n6"} {
		reportNode(t, e, n, "02:61:00:00:00:0"+strconv.Itoa(i+1), "127.61.0."+strconv.Itoa(i+1))
	}
	e.AddSwitch(t, "sw1", "127.61.255.1", snmpswitch.Config{Neighbours: []snmpswitch.Neighbour{
		{LocalPort: 1, MAC: hw("02:61:00:00:00:01"), SysName: "n1"},
		{LocalPort: 2, MAC: hw("02:61:00:00:00:02"), SysName: "n2"},
		{LocalPort: 3, MAC: hw("02:61:00:00:00:99"), SysName: "mystery"},
		{LocalPort: 4, MAC: hw("02:61:00:00:00:04"), SysName: "n4"},
		{LocalPort: 8, MAC: hw("02:61:00:00:ff:02")}, // the uplink to sw2
	}}, "lldp.explore=true", "poe.reboots=true")
	sw2 := e.AddSwitch(t, "sw2", "127.61.255.2", snmpswitch.Config{ChassisMAC: hw("02:61:00:00:ff:02")}, "lldp.explore=true")
	e.AddSwitch(t, "sw3", "127.61.255.3", snmpswitch.Config{}) // lldp.explore=false
	// Before: n2 recorded on port 5 (it moved to 2), n3 on port 4 (now
	// n4's), n5 on port 6 (silent), n6 on sw2 (which will not answer).
	for _, l := range []api.Link{{Node: "n2", Switch: "sw1", Port: 5}, {Node: "n3", Switch: "sw1", Port: 4},
		{Node: "n5", Switch: "sw1", Port: 6}, {Node: "n6", Switch: "sw2", Port: 1}} {
		if err := e.c.SetLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	sw2.SetUnreachable(true)

	res, err := e.c.Rescan(ctx, api.RescanRequest{Requester: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Switches) != 2 || !res.Switches[0].OK || res.Switches[0].Neighbours != 5 || res.Switches[1].OK ||
		!strings.Contains(res.Switches[1].Error, "sw2") || !strings.Contains(res.Switches[1].Error, "device unreachable") ||
		strings.Contains(res.Switches[1].Error, servertest.Community) {
		t.Errorf("switches = %+v, want sw1 read (5 neighbours), sw2 failed naming itself, without the community", res.Switches)
	}
	want := []api.LinkChange{
		{Change: api.LinkNew, Device: "n1", MAC: "02:61:00:00:00:01", Type: "node", Switch: "sw1", Port: 1, SysName: "n1"},
		{Change: api.LinkMoved, Device: "n2", MAC: "02:61:00:00:00:02", Type: "node", Switch: "sw1", Port: 2, FromSwitch: "sw1", FromPort: 5, SysName: "n2"},
		{Change: api.LinkNew, Device: "unknown-000099", MAC: "02:61:00:00:00:99", Type: "unknown", Switch: "sw1", Port: 3, Added: true, SysName: "mystery"},
		{Change: api.LinkGone, Device: "n3", MAC: "02:61:00:00:00:03", Type: "node", Switch: "sw1", Port: 4, ReplacedBy: "n4"},
		{Change: api.LinkNew, Device: "n4", MAC: "02:61:00:00:00:04", Type: "node", Switch: "sw1", Port: 4, SysName: "n4"},
		{Change: api.LinkUnseen, Device: "n5", MAC: "02:61:00:00:00:05", Type: "node", Switch: "sw1", Port: 6},
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	wantLinks := map[string]string{"n1": "sw1:1", "n2": "sw1:2", "unknown-000099": "sw1:3", "n4": "sw1:4", "n5": "sw1:6", "n6": "sw2:1"}
	if diff := cmp.Diff(wantLinks, e.Positions(t)); diff != "" {
		t.Errorf("links after rescan (-want +got):\n%s", diff)
	}
	if d, err := e.store.DeviceByName(ctx, "unknown-000099"); err != nil || d.Type != store.TypeUnknown {
		t.Errorf("device seen by LLDP: %+v, %v; want it added as unknown", d, err)
	}

	// A second rescan finds nothing new; the silent node is still reported.
	sw2.SetUnreachable(false)
	res, err = e.c.Rescan(ctx, api.RescanRequest{Set: "sw1,sw2"})
	if err != nil {
		t.Fatal(err)
	}
	want = []api.LinkChange{
		{Change: api.LinkUnseen, Device: "n5", MAC: "02:61:00:00:00:05", Type: "node", Switch: "sw1", Port: 6},
		{Change: api.LinkUnseen, Device: "n6", MAC: "02:61:00:00:00:06", Type: "node", Switch: "sw2", Port: 1},
	}
	if diff := cmp.Diff(want, res.Changes); diff != "" {
		t.Errorf("changes of the second rescan (-want +got):\n%s", diff)
	}

	// Bad sets change nothing and say why.
	for _, tc := range []struct{ set, msg string }{
		{"n1", "n1 is not a switch, it is a node."},
		{"sw3", `cannot detect switch ports of sw3 because "lldp.explore" config option is not enabled.`},
		{"nope", "No device with name 'nope' found."},
	} {
		_, err := e.c.Rescan(ctx, api.RescanRequest{Set: tc.set})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Message != tc.msg {
			t.Errorf("rescan %s: %v, want %q", tc.set, err, tc.msg)
		}
	}
	if diff := cmp.Diff(wantLinks, e.Positions(t)); diff != "" {
		t.Errorf("links after refused rescans (-want +got):\n%s", diff)
	}
}

func TestTopologyAndPortConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, servertest.WithPoE(t))
	ctx := t.Context()
	reportNode(t, e, "n1", "02:61:01:00:00:01", "127.61.1.1")
	reportNode(t, e, "n2", "02:61:01:00:00:02", "127.61.1.2")
	reportNode(t, e, "n3", "02:61:01:00:00:03", "127.61.1.3")
	sim := e.AddSwitch(t, "sw1", "127.61.255.11", snmpswitch.Config{Ports: 4}, "lldp.explore=true", "poe.reboots=true")
	e.AddSwitch(t, "sw2", "127.61.255.12", snmpswitch.Config{Ports: 4})
	for _, l := range []api.Link{{Node: "n1", Switch: "sw1", Port: 1}, {Node: "n2", Switch: "sw1", Port: 3}} {
		if err := e.c.SetLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	sw1, _ := e.store.DeviceByName(ctx, "sw1")
	if err := e.store.AddPoEOff(ctx, store.PoEOff{SwitchMAC: sw1.MAC, Port: 3, Reason: "powersave", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	sim.SetEnabled(3, false)

	topo, err := e.c.Topology(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTopo := api.Topology{
		Switches: []api.SwitchTree{
			{Name: "sw1", MAC: sw1.MAC, IP: "127.61.255.11", Ports: []api.PortInfo{
				{Port: 1, Devices: []api.PortDevice{{Name: "n1", Type: "node"}}},
				{Port: 3, Devices: []api.PortDevice{{Name: "n2", Type: "node"}}, PoEOff: "powersave"},
			}},
			{Name: "sw2", MAC: "02:00:7f:3d:ff:0c", IP: "127.61.255.12", Ports: []api.PortInfo{}},
		},
		Unplaced: []string{"n3"},
	}
	if diff := cmp.Diff(wantTopo, topo); diff != "" {
		t.Errorf("topology (-want +got):\n%s", diff)
	}

	pc, err := e.c.SwitchPorts(ctx, "sw1")
	if err != nil {
		t.Fatal(err)
	}
	if !pc.PoEReboots || pc.Switch != "sw1" || len(pc.Ports) != 8 { // 4 PoE ports, 4 uplinks
		t.Fatalf("port-config sw1 = %+v, want 8 ports, poe.reboots true", pc)
	}
	wantPorts := []api.PortInfo{
		{Port: 1, Name: "Gi1/0/1", PoE: api.PoEOn, Delivering: true, Devices: []api.PortDevice{{Name: "n1", Type: "node"}}},
		{Port: 2, Name: "Gi1/0/2", PoE: api.PoEOn, Delivering: true},
		{Port: 3, Name: "Gi1/0/3", PoE: api.PoEOff, Devices: []api.PortDevice{{Name: "n2", Type: "node"}}, PoEOff: "powersave"},
		{Port: 4, Name: "Gi1/0/4", PoE: api.PoEOn, Delivering: true},
	}
	if diff := cmp.Diff(wantPorts, pc.Ports[:4]); diff != "" {
		t.Errorf("port-config sw1 PoE ports (-want +got):\n%s", diff)
	}
	if pc.Ports[4].PoE != api.PoEUnavailable {
		t.Errorf("uplink port %+v, want PoE unavailable", pc.Ports[4])
	}

	// Errors: not a switch, lldp.explore off, switch not answering.
	sim.SetUnreachable(true)
	for _, tc := range []struct {
		name string
		kind error
		msg  string
	}{
		{"n1", api.ErrInvalid, "n1 is not a switch, it is a node."},
		{"sw2", api.ErrInvalid, `cannot detect switch ports of sw2 because "lldp.explore" config option is not enabled.`},
		{"sw9", api.ErrNotFound, "No device with name 'sw9' found."},
		{"sw1", api.ErrUnavailable, "read ports of switch sw1: "},
	} {
		_, err := e.c.SwitchPorts(ctx, tc.name)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), servertest.Community) {
			t.Errorf("port-config %s: %v, want %v containing %q", tc.name, err, tc.kind, tc.msg)
		}
	}
}

func TestTopologyWithoutPoEDriver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "n1", reboottest.OK)
	if _, err := e.c.Rescan(t.Context(), api.RescanRequest{}); !errors.Is(err, api.ErrUnavailable) {
		t.Errorf("rescan without PoE driver: %v, want unavailable", err)
	}
	topo, err := e.c.Topology(t.Context())
	if err != nil || len(topo.Switches) != 0 || len(topo.Unplaced) != 1 {
		t.Errorf("topology = %+v, %v; want n1 unplaced", topo, err)
	}
}
