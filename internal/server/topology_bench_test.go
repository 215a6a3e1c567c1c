package server_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab/snmpswitch"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// BenchmarkRescan1000: walt device rescan of 21 simulated 48-port switches
// seeing 1000 registered nodes (switches on 127.68.255.k). first-ms is the
// first rescan, which records 1000 links; ns/op is a rescan that changes
// nothing.
func BenchmarkRescan1000(b *testing.B) {
	e := servertest.NewB(b, nil, servertest.WithPoE(b))
	const nodes, perSwitch = 1000, 48
	register(b, e.Store, nodes, func(i int) string { return fmt.Sprintf("127.68.%d.%d", byte(i>>8), byte(i)) })
	for k := 0; k*perSwitch < nodes; k++ {
		var nb []snmpswitch.Neighbour
		for p := 1; p <= perSwitch && k*perSwitch+p <= nodes; p++ {
			i := k*perSwitch + p - 1
			nb = append(nb, snmpswitch.Neighbour{LocalPort: p, MAC: net.HardwareAddr{0x52, 0x54, 0x01, byte(i >> 16), byte(i >> 8), byte(i)}})
		}
		e.AddSwitch(b, fmt.Sprintf("sw%02d", k+1), fmt.Sprintf("127.68.255.%d", k+1), snmpswitch.Config{Ports: perSwitch, Neighbours: nb}, "lldp.explore=true")
	}
	start := time.Now()
	res, err := e.Client.Rescan(b.Context(), api.RescanRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Switches) != 21 || len(res.Changes) != nodes {
		b.Fatalf("first rescan: %d switches, %d changes; want 21, %d", len(res.Switches), len(res.Changes), nodes)
	}
	first := time.Since(start)
	for b.Loop() {
		res, err := e.Client.Rescan(b.Context(), api.RescanRequest{})
		if err != nil || len(res.Changes) != 0 {
			b.Fatalf("rescan: %d changes, %v; want none", len(res.Changes), err)
		}
	}
	b.ReportMetric(float64(first.Milliseconds()), "first-ms")
}
