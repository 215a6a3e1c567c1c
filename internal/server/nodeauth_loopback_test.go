package server_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// boundClient is a client whose connections come from the loopback
// address local.
func boundClient(t *testing.T, url, local string) *client.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New(url, &http.Client{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// On the server's own host, a process that reports from another loopback
// address than 127.0.0.1 is another host: its report, heartbeat and done
// report for a node at another address are refused and change nothing;
// from the node's own address they are taken.
func TestNodeTrafficFromAnotherLoopbackAddress(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, nil)
	ctx := t.Context()
	rep := api.NodeReport{MAC: "52:54:00:00:79:01", IP: "127.20.9.1", Name: "lo1", Model: "rpi-b", BootMode: "network", BootID: "boot-1"}
	if _, err := e.Client.ReportNode(ctx, rep); err != nil { // from 127.0.0.1: the lab's way
		t.Fatal(err)
	}
	forger := boundClient(t, e.URL, "127.0.0.5")
	forged := rep
	forged.BootID = "forged"
	if _, err := forger.ReportNode(ctx, forged); !errors.Is(err, api.ErrForbidden) || !strings.Contains(err.Error(), "comes from 127.0.0.5") {
		t.Errorf("report for lo1 from 127.0.0.5 = %v, want forbidden naming the source", err)
	}
	if reply, err := forger.Heartbeats(ctx, api.Heartbeats{Beats: []api.Heartbeat{{MAC: rep.MAC, BootID: "forged"}}}); err != nil || len(reply.Report) != 0 {
		t.Errorf("heartbeat from 127.0.0.5 = %+v, %v; want ignored", reply, err)
	}
	if _, err := forger.ReportDone(ctx, api.DoneReport{MAC: rep.MAC, BootID: "boot-1"}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("done report for lo1 from 127.0.0.5 = %v, want forbidden", err)
	}
	nl, err := e.Client.Nodes(ctx, map[string]string{"name": "lo1"})
	if err != nil || nl.NumNodes != 1 || nl.Nodes[0].Boot.BootID != "boot-1" {
		t.Fatalf("lo1 after the forgeries = %+v, %v; want boot-1 still", nl.Nodes, err)
	}
	own := boundClient(t, e.URL, "127.20.9.1")
	if _, err := own.ReportDone(ctx, api.DoneReport{MAC: rep.MAC, BootID: "boot-1"}); err != nil {
		t.Errorf("done report from lo1's own address = %v", err)
	}
}

// A known node's report that changes nothing but its sign of life is not
// a device write of its own: the boot tracker's flush stores its last
// sign of life, and its booted flag, with the others'.
func TestReportLastSeenStored(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, nil)
	rep := api.NodeReport{MAC: "52:54:00:00:79:02", IP: "127.20.9.2", Name: "seen1", Model: "rpi-b", BootMode: "network", BootID: "boot-1"}
	if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	first, err := e.Store.Device(t.Context(), "52:54:00:00:79:02")
	if err != nil {
		t.Fatal(err)
	}
	rep.BootID = "boot-2"
	if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyNil(t, 10*time.Second, "the second report's time stored", func() error {
		d, err := e.Store.Device(t.Context(), "52:54:00:00:79:02")
		if err != nil {
			return err
		}
		if !d.LastSeen.After(first.LastSeen) || !d.Booted {
			return fmt.Errorf("last seen %v (first report %v), booted %t", d.LastSeen, first.LastSeen, d.Booted)
		}
		return nil
	})
}
