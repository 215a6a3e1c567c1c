package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// The vnode tests use 127.54.0.0/16 for vnode agents.

// waitVNodesBooted polls GET /nodes until n virtual nodes are booted.
func waitVNodesBooted(t *testing.T, c *client.Client, n int) {
	t.Helper()
	testutil.EventuallyNil(t, 30*time.Second, fmt.Sprintf("%d virtual nodes booted", n), func() error {
		nl, err := c.Nodes(t.Context(), map[string]string{"virtual": "true", "booted": "true"})
		if err != nil {
			return err
		}
		if nl.NumNodes != n {
			return fmt.Errorf("%d booted", nl.NumNodes)
		}
		return nil
	})
}

// TestServerRunsVNodes runs walt-server with process vnodes: the vnodes
// created survive a server restart (same addresses and settings, booted
// again), and stopping the server leaves no machine behind.
func TestServerRunsVNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walt-node")
	}
	agentDir := t.TempDir()
	if _, err := vmtest.BuildAgent(agentDir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", agentDir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	t.Setenv("WALT_DB", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	args := []string{"--data", data, "--vnode-backend", "process", "--vnode-addrs", "127.54.0.0/16"}

	c, log, stop := startServer(t, addr, args...)
	for _, name := range []string{"sv1", "sv2"} {
		if _, err := c.CreateVNode(t.Context(), api.CreateVNode{Name: name, Settings: []string{"boot.delay=0", "ram=256M"}, Requester: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	waitVNodesBooted(t, c, 2)
	first, err := c.VNodes(t.Context())
	if err != nil || first.Backend != "process" || len(first.VNodes) != 2 {
		t.Fatalf("VNodes() = %+v, %v; want 2 process vnodes", first, err)
	}
	stop()
	for _, v := range first.VNodes {
		if vmtest.Alive(v.PID) {
			t.Errorf("%s: machine pid %d alive after walt-server stopped\n%s", v.Name, v.PID, log)
		}
	}
	if left, err := vmtest.LiveChildren(os.Getpid()); err != nil || len(left) != 0 {
		t.Errorf("live children after walt-server stopped: %v, %v", left, err)
	}

	// Restart on the same data directory: the vnodes come back.
	c, log, stop = startServer(t, addr, args...)
	waitVNodesBooted(t, c, 2)
	again, err := c.VNodes(t.Context())
	if err != nil || len(again.VNodes) != 2 {
		t.Fatalf("VNodes() after restart = %+v, %v\n%s", again, err, log)
	}
	for i, v := range again.VNodes {
		if old := first.VNodes[i]; v.Name != old.Name || v.Addr != old.Addr || v.MAC != old.MAC || v.Settings["ram"] != "256M" || v.PID == old.PID {
			t.Errorf("vnode after restart %+v, before %+v: want the same name, address, MAC and ram, a new machine", v, old)
		}
	}
	if res, err := c.Reboot(t.Context(), api.RebootRequest{Set: "sv1,sv2", Requester: "alice"}, nil); err != nil || len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Errorf("reboot after restart: %+v, %v", res, err)
	}
	stop()
	if left, err := vmtest.LiveChildren(os.Getpid()); err != nil || len(left) != 0 {
		t.Errorf("live children after the second stop: %v, %v", left, err)
	}
}

func TestAgentServerURL(t *testing.T) {
	for _, tc := range []struct {
		listen, url string
		warn        bool
	}{
		{":12345", "http://127.0.0.1:12345", false},
		{"0.0.0.0:80", "http://127.0.0.1:80", false},
		{"[::]:12345", "http://127.0.0.1:12345", false},
		{"127.0.0.1:12345", "http://127.0.0.1:12345", false},
		{"localhost:12345", "http://127.0.0.1:12345", false},
		{"192.168.152.1:12345", "http://192.168.152.1:12345", false},
		{"127.0.0.5:12345", "http://127.0.0.5:12345", true},
		{"[::1]:12345", "http://[::1]:12345", true},
		{"127.0.0.1:0", "http://127.0.0.1:0", true},
		{"nonsense", "", true},
	} {
		url, warning := agentServerURL(tc.listen)
		if url != tc.url || (warning != "") != tc.warn {
			t.Errorf("agentServerURL(%q) = %q, %q; want %q, warning %v", tc.listen, url, warning, tc.url, tc.warn)
		}
	}
}
