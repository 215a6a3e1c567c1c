package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/auth"
)

// fromLocal returns a plain client of url whose connections leave from
// the loopback address local (seen by remoteListener as 192.0.2.X).
func fromLocal(t *testing.T, url, local string) *client.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New("http://"+url, &http.Client{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// From another host, a node reports from the address it declares and, once
// known, from its inventory address only; heartbeats for a node count
// only from its address. Refusals change nothing and are logged.
func TestNodeTrafficFromItsAddressOnly(t *testing.T) {
	t.Parallel()
	addr, cert, token, log := tlsServer(t, true)
	node1 := fromLocal(t, addr, "127.0.0.1") // 192.0.2.1
	other := fromLocal(t, addr, "127.0.0.2") // 192.0.2.2
	ctx := t.Context()
	rep := api.NodeReport{MAC: "52:54:00:00:78:01", IP: "192.0.2.1", Name: "lan1", Model: "rpi-b", BootMode: "network", BootID: "boot-1"}
	if _, err := node1.ReportNode(ctx, rep); err != nil {
		t.Fatalf("first report from the node's address = %v", err)
	}
	// Another host reporting for lan1, declaring its own address or lan1's.
	for _, ip := range []string{"192.0.2.2", "192.0.2.1"} {
		forged := rep
		forged.IP, forged.BootID = ip, "forged"
		if _, err := other.ReportNode(ctx, forged); !errors.Is(err, api.ErrForbidden) {
			t.Errorf("report for lan1 from 192.0.2.2 declaring %s = %v, want forbidden", ip, err)
		}
	}
	// A new node declaring an address it does not come from.
	if _, err := other.ReportNode(ctx, api.NodeReport{MAC: "52:54:00:00:78:09", IP: "192.0.2.9", Name: "lan9", Model: "rpi-b"}); !errors.Is(err, api.ErrForbidden) ||
		!strings.Contains(err.Error(), "declares 192.0.2.9 but comes from 192.0.2.2") {
		t.Errorf("report declaring another address = %v, want forbidden naming both", err)
	}
	cfg, _ := client.TLSConfig(auth.Fingerprint(cert.Certificate[0]), "")
	reader, _ := client.New("https://"+addr, client.HTTPClient(cfg))
	list, err := reader.WithToken(token).Nodes(ctx, nil)
	if err != nil || list.NumNodes != 1 || list.Nodes[0].IP != "192.0.2.1" || list.Nodes[0].Boot.BootID != "boot-1" {
		t.Fatalf("nodes after the forged reports = %+v, %v; want lan1 alone, at 192.0.2.1 in boot-1", list, err)
	}
	// The forged heartbeat is not counted: lan1 stays in boot-1, and a
	// beat for it from another host does not say "report".
	reply, err := other.Heartbeats(ctx, api.Heartbeats{Beats: []api.Heartbeat{{MAC: rep.MAC, BootID: "forged"}}})
	if err != nil || len(reply.Report) != 0 {
		t.Errorf("forged heartbeat = %+v, %v; want ignored", reply, err)
	}
	if reply, err := node1.Heartbeats(ctx, api.Heartbeats{Beats: []api.Heartbeat{{MAC: rep.MAC, BootID: "boot-1"}}}); err != nil || len(reply.Report) != 0 {
		t.Errorf("heartbeat from the node = %+v, %v; want counted", reply, err)
	}
	// The first refusal is logged; the next ones within a second are
	// counted in the next line.
	if want := "node report refused: it does not come from the node's inventory address"; strings.Count(log.String(), "refused_since_last_line") != 1 || !strings.Contains(log.String(), want) {
		t.Errorf("log: want one line %q:\n%s", want, log)
	}
}
