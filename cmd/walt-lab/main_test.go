package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The lab test uses 127.66.0.0/16.

// walt-lab registers its switches with lldp.explore=true and the SNMP port
// they listen on, and the server learns every node's port from a rescan; a
// hard reboot then goes through that port.
func TestLabTopologyFromRescan(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, servertest.WithPoE(t))
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"--server", e.URL, "--nodes", "3", "--octet", "66", "--boot-time", "10ms",
			"--snmp-port", "1661", "--poe-delay", "100ms"}, func(k string) string { return map[string]string{"WALT_TOKEN": e.AdminToken}[k] }, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("walt-lab exited %d:\n%s", code, stderr.String())
		}
	}()

	want := map[string]string{"node01": "switch1:1", "node02": "switch1:2", "node03": "switch1:3"}
	testutil.EventuallyNil(t, 30*time.Second, "the lab's nodes booted on their ports", func() error {
		if diff := cmp.Diff(want, booted(t, e)); diff != "" {
			return fmt.Errorf("booted nodes and their ports (-want +got):\n%s\nwalt-lab stderr:\n%s", diff, stderr.String())
		}
		return nil
	})
	cfg, err := e.Client.Config(t.Context(), "switch1", "test", false)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range cfg.Devices[0].Settings {
		settings[s.Name] = s.Value
	}
	if settings["snmp.port"] != "1661" || settings["lldp.explore"] != "true" {
		t.Errorf("switch1 settings %v, want snmp.port=1661 lldp.explore=true", settings)
	}
	res, err := e.Client.Reboot(t.Context(), api.RebootRequest{Set: "node02", Hard: true, Requester: "test"}, nil)
	if err != nil || len(res) != 1 || !res[0].OK || res[0].Method != api.MethodPoE {
		t.Errorf("hard reboot of node02 = %+v, %v; want PoE-reboot OK", res, err)
	}
}

// booted returns the booted nodes with their recorded port.
func booted(t *testing.T, e *servertest.Env) map[string]string {
	t.Helper()
	devs, err := e.Store.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	at := e.Positions(t)
	out := map[string]string{}
	for _, d := range devs {
		if d.Booted && at[d.Name] != "" {
			out[d.Name] = at[d.Name]
		}
	}
	return out
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "walt-lab ") {
		t.Errorf("walt-lab --version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
