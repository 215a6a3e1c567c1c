package server_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot/poereboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
)

// portDirectory reaches switches on a port other than 161.
type portDirectory struct {
	poereboot.Directory
	port int
}

func (d portDirectory) Lookup(ctx context.Context, mac string) (poe.SwitchConfig, error) {
	cfg, err := d.Directory.Lookup(ctx, mac)
	cfg.Address = net.JoinHostPort(cfg.Address, strconv.Itoa(d.port))
	return cfg, err
}

// Nodes whose agent does not answer are power-cycled on their switch port,
// through the PoE driver and a simulated SNMP switch on loopback.
func TestPoEFallback(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []string
	sw, err := snmpswitch.Start(snmpswitch.Config{Name: "sw1", Addr: "127.20.254.1:0", Ports: 8, OnPower: func(ev snmpswitch.PowerEvent) {
		mu.Lock()
		events = append(events, fmt.Sprintf("port %d on=%t", ev.IfIndex, ev.On))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	_, port, _ := net.SplitHostPort(sw.Addr())
	snmpPort, _ := strconv.Atoi(port)
	e := newEnv(t, func(c *server.Config) {
		// As cmd/walt-server wires it, with the switch's SNMP port moved.
		dir := portDirectory{poereboot.Directory{Store: c.Store}, snmpPort}
		drv, err := poe.New(poe.DefaultConfig(), dir, poereboot.Journal{Store: c.Store}, c.Logger)
		if err != nil {
			t.Fatal(err)
		}
		c.Reboot.Physical = poereboot.New(c.Store, drv)
	})
	e.addNode(t, "dead", reboottest.Refused)
	e.addNode(t, "lost", reboottest.Refused) // no known port
	e.addNode(t, "ok", reboottest.OK)
	ctx := t.Context()
	if _, err := e.c.AddDevice(ctx, api.AddDevice{Name: "sw1", IP: "127.20.254.1", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.SetLink(ctx, api.Link{Node: "dead", Switch: "sw1", Port: 3}); err != nil {
		t.Fatal(err)
	}

	// poe.reboots is off: forbidden.
	res, err := e.c.Reboot(ctx, api.RebootRequest{Set: "dead"}, nil)
	if err != nil || len(res) != 1 || res[0].OK || res[0].Attempts[1].Code != "forbidden" {
		t.Fatalf("reboot with poe.reboots=false: %+v, %v; want forbidden", res, err)
	}
	if _, err := e.c.SetConfig(ctx, api.ConfigRequest{Set: "sw1", Settings: []string{
		"snmp.version=2", "snmp.community=private", "lldp.explore=true", "poe.reboots=true", "poe.delay=100ms"}}); err != nil {
		t.Fatal(err)
	}
	res, err = e.c.Reboot(ctx, api.RebootRequest{Set: "dead,lost,ok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Node] = fmt.Sprintf("ok=%t method=%s", r.OK, r.Method)
		if !r.OK {
			got[r.Node] += " " + r.Attempts[len(r.Attempts)-1].Code
		}
	}
	want := map[string]string{
		"dead": "ok=true method=PoE-reboot",
		"lost": "ok=false method= unknown-position",
		"ok":   "ok=true method=soft-reboot",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"port 3 on=false", "port 3 on=true"}, events); diff != "" {
		t.Errorf("switch power events (-want +got):\n%s", diff)
	}
	if offs, _ := e.store.PoEOffs(ctx); len(offs) != 0 {
		t.Errorf("power-off journal not cleared: %+v", offs)
	}
}
