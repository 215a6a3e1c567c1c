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

// storeDeviceReads returns how many device reads by MAC the server has
// made, as GET /metrics counts them.
func storeDeviceReads(t *testing.T, url string) string {
	t.Helper()
	for line := range strings.Lines(getText(t, url+"/metrics")) {
		if rest, ok := strings.CutPrefix(line, `walt_store_request_duration_seconds_count{op="device"} `); ok {
			return strings.TrimSpace(rest)
		}
	}
	return "0"
}

// beatAccepted reports whether a heartbeat for mac of an unknown boot is
// taken from c's address: taken, the node is asked for a report; refused,
// it is not listed.
func beatAccepted(t *testing.T, c *client.Client, mac string) bool {
	t.Helper()
	reply, err := c.Heartbeats(t.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: mac, BootID: "not-this-boot"}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(reply.Report) == 1
}

// A known node's unchanged report and its heartbeats from its own address
// read nothing from the store; what the inventory says of the node is
// still what the checks and answers use after each change of it: an IP
// change by a report, an owner, a forget and a report from a new address.
func TestNodeTrafficFollowsInventoryChanges(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, nil)
	ctx := t.Context()
	rep := api.NodeReport{MAC: "52:54:00:00:79:11", IP: "127.20.9.11", Name: "mv1", Model: "rpi-b", BootMode: "network", BootID: "boot-1"}
	at11, at12 := boundClient(t, e.URL, "127.20.9.11"), boundClient(t, e.URL, "127.20.9.12")
	if _, err := at11.ReportNode(ctx, rep); err != nil {
		t.Fatal(err)
	}
	reads := storeDeviceReads(t, e.URL)
	for i := range 3 {
		rep.BootID = fmt.Sprintf("boot-%d", i+2)
		if _, err := at11.ReportNode(ctx, rep); err != nil {
			t.Fatal(err)
		}
		if reply, err := at11.Heartbeats(ctx, api.Heartbeats{Beats: []api.Heartbeat{{MAC: rep.MAC, BootID: rep.BootID}}}); err != nil || len(reply.Report) != 0 {
			t.Fatalf("heartbeat of mv1 from its address = %+v, %v", reply, err)
		}
	}
	if got := storeDeviceReads(t, e.URL); got != reads {
		t.Errorf("device reads of the store went from %s to %s over 3 unchanged reports and 3 heartbeats, want none", reads, got)
	}

	// The lab's way (127.0.0.1) moves it to .12: heartbeats follow.
	moved := rep
	moved.IP = "127.20.9.12"
	if _, err := e.Client.ReportNode(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if !beatAccepted(t, at12, rep.MAC) || beatAccepted(t, at11, rep.MAC) {
		t.Errorf("after a report moved mv1 to .12: heartbeat from .12 taken %t, from .11 taken %t; want true, false",
			beatAccepted(t, at12, rep.MAC), beatAccepted(t, at11, rep.MAC))
	}

	if _, err := e.Client.Ownership(ctx, api.OwnershipRequest{Set: "mv1", Action: "acquire", Requester: "bob"}); err != nil {
		t.Fatal(err)
	}
	if n, err := at12.ReportNode(ctx, moved); err != nil || n.Owner != "bob" {
		t.Errorf("report of mv1 after bob acquired it = owner %q, %v; want bob", n.Owner, err)
	}

	// Forgotten, it registers again from wherever it reports.
	if err := e.Client.ForgetDevice(ctx, "mv1", "admin", true); err != nil {
		t.Fatal(err)
	}
	if beatAccepted(t, at12, rep.MAC) {
		t.Error("heartbeat of forgotten mv1 taken")
	}
	if n, err := at11.ReportNode(ctx, rep); err != nil || n.IP != "127.20.9.11" || n.Owner != "" {
		t.Fatalf("report of forgotten mv1 from .11 = %+v, %v; want it registered at .11, free", n, err)
	}
	if !beatAccepted(t, at11, rep.MAC) || beatAccepted(t, at12, rep.MAC) {
		t.Error("after mv1 registered again at .11, heartbeats from .11 are not taken, or from .12 are")
	}
}
