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
	"github.com/walt-testbed/walt/internal/boot"
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

// The experiment test uses 127.67.0.0/16.

// walt-lab --experiment makes each node report done after each boot
// through the client call walt-node done uses, with the status and
// metrics given: the server takes them for the nodes' current boots, and
// again after a reboot. Per-node boot times, the seed and the new faults
// are accepted alongside.
func TestLabExperiments(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, servertest.WithPoE(t))
	type heard struct {
		mac string
		d   boot.Done
	}
	got := make(chan heard, 64)
	e.Server.SetDoneReplier(func(_ context.Context, mac string, d boot.Done) (api.DoneReply, error) {
		got <- heard{mac, d}
		return api.DoneReply{}, nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr testutil.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"--server", e.URL, "--nodes", "3", "--octet", "67", "--boot-time", "10ms", "--snmp-port", "1671",
			"--boot-time-dist", "node02=normal:20ms,2ms", "--seed", "5", "--faults", "node03=flaky:1000",
			"--experiment", "30ms:4:runs=2:score=-1.5"}, func(k string) string { return map[string]string{"WALT_TOKEN": e.AdminToken}[k] }, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("walt-lab exited %d:\n%s", code, stderr.String())
		}
	}()
	// await returns the done report of the node's current boot.
	await := func(name, notBoot string) boot.Done {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case h := <-got:
				nl, err := e.Client.Nodes(t.Context(), map[string]string{"name": name})
				if err != nil || nl.NumNodes != 1 {
					t.Fatalf("node %s: %v", name, err)
				}
				if n := nl.Nodes[0]; h.mac == n.MAC && h.d.BootID == n.Boot.BootID && h.d.BootID != notBoot {
					if h.d.Status != 4 || len(h.d.Metrics) != 2 || h.d.Metrics["runs"] != 2 || h.d.Metrics["score"] != -1.5 {
						t.Errorf("%s's done report %+v", name, h.d)
					}
					return h.d
				}
			case <-timeout:
				t.Fatalf("no done report for %s's current boot; walt-lab stderr:\n%s", name, stderr.String())
			}
		}
	}
	first := await("node01", "")
	// The start line comes once the switches are registered, which may
	// be after the first boots' experiments reported.
	testutil.Eventually(t, 30*time.Second, "walt-lab's start line giving the seed", func() bool {
		return strings.Contains(stdout.String(), "seed 5;")
	})
	res, err := e.Client.Reboot(t.Context(), api.RebootRequest{Set: "node01", Requester: "test"}, nil)
	if err != nil || len(res) != 1 || !res[0].OK {
		t.Fatalf("reboot node01 = %+v, %v", res, err)
	}
	if second := await("node01", first.BootID); second.BootID == first.BootID {
		t.Errorf("node01's experiment reported boot %s again after its reboot", first.BootID)
	}
}

func TestLabBadFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--experiment", "1s:300"}, "status: 300 is out of range"},
		{[]string{"--experiment", "soon"}, `delay "soon"`},
		{[]string{"--boot-time-dist", "node01=poisson:1s"}, `unknown distribution "poisson"`},
		{[]string{"--boot-time", "normal:1s"}, "want normal:MEAN,SD"},
		{[]string{"--faults", "node01=flaky:1"}, "K is 1, want 2 to 1000"},
		{[]string{"--seed", "-3"}, "invalid value"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append([]string{"--register=false"}, tt.args...), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("walt-lab %q: exit %d, %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}
