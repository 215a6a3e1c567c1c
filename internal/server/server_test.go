package server_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Package tests use 127.20.0.0/16 for agents.
var addrs = reboottest.NewAddrs(20)

type env struct {
	*servertest.Env
	c     *client.Client
	store store.Store
}

func newEnv(t *testing.T, mod func(*server.Config)) *env {
	e := servertest.New(t, addrs, mod)
	return &env{Env: e, c: e.Client, store: e.Store}
}

func (e *env) addNode(t *testing.T, name string, b reboottest.Behaviour) *reboottest.Agent {
	t.Helper()
	return e.AddNode(t, name, b)
}

func resultsByNode(rs []api.NodeResult) map[string]api.NodeResult {
	m := make(map[string]api.NodeResult)
	for _, r := range rs {
		m[r.Node] = r
	}
	return m
}

func TestRebootMixedFleet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	okAgent := e.addNode(t, "ok1", reboottest.OK)
	e.addNode(t, "ok2", reboottest.OK)
	e.addNode(t, "refused", reboottest.Refused)
	e.addNode(t, "hole", reboottest.BlackHole)
	e.addNode(t, "ko", reboottest.KO)
	e.addNode(t, "garbage", reboottest.Garbage)

	var events []string
	res, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "all-nodes", Requester: "alice"}, func(ev api.RebootEvent) {
		events = append(events, ev.Type)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 8 || events[0] != api.EventStart || events[7] != api.EventDone {
		t.Errorf("events %v, want start, 6 node events, done", events)
	}
	type short struct {
		OK    bool
		Soft  string
		Codes []string
	}
	got := map[string]short{}
	for n, r := range resultsByNode(res) {
		s := short{OK: r.OK}
		for _, a := range r.Attempts {
			s.Codes = append(s.Codes, a.Code)
		}
		if !r.OK {
			s.Soft = r.Attempts[0].Error
		}
		got[n] = s
	}
	want := map[string]short{
		"ok1":     {OK: true, Codes: []string{""}},
		"ok2":     {OK: true, Codes: []string{""}},
		"refused": {Soft: "connection refused", Codes: []string{"refused", "no-method"}},
		"hole":    {Soft: "timed out waiting for reply", Codes: []string{"reply-timeout", "no-method"}},
		"ko":      {Soft: reboottest.KOReason, Codes: []string{"ko", "no-method"}},
		"garbage": {Soft: `node did not respond properly: "` + reboottest.GarbageReply + `"`, Codes: []string{"bad-reply", "no-method"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	<-okAgent.Rebooted()
	if diff := cmp.Diff([][]string{{"kexec.allow=true"}}, okAgent.Reboots()); diff != "" {
		t.Errorf("REBOOT args (-want +got):\n%s", diff)
	}

	// Recorded, and rebooted nodes are no longer booted.
	hist, err := e.c.Reboots(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Reboots) != 6 {
		t.Fatalf("history has %d records, want 6", len(hist.Reboots))
	}
	for _, r := range hist.Reboots {
		if r.Requester != "alice" || r.Cause != server.DefaultCause || (r.OK != (r.Ack != nil)) {
			t.Errorf("record %+v: want requester alice, default cause, ack iff OK", r)
		}
	}
	nl, err := e.c.Nodes(t.Context(), map[string]string{"booted": "true"})
	if err != nil {
		t.Fatal(err)
	}
	var booted []string
	for _, n := range nl.Nodes {
		booted = append(booted, n.Name)
	}
	if diff := cmp.Diff([]string{"garbage", "hole", "ko", "refused"}, booted); diff != "" {
		t.Errorf("booted nodes after reboot (-want +got):\n%s", diff)
	}
}

func TestKexecSettingReachesAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ag := e.addNode(t, "pc1", reboottest.OK)
	if _, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "pc1", Settings: []string{"kexec.allow=False"}, NodesOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "pc1"}, nil); err != nil {
		t.Fatal(err)
	}
	<-ag.Rebooted()
	if diff := cmp.Diff([][]string{{"kexec.allow=false"}}, ag.Reboots()); diff != "" {
		t.Errorf("REBOOT args (-want +got):\n%s", diff)
	}
}

func TestRebootBadSets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ag := e.addNode(t, "rpi1", reboottest.OK)
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "127.20.255.1", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		set  string
		kind error
		msg  string
	}{
		{"rpi1,nope", api.ErrNotFound, "No device with name 'nope' found."},
		{"rpi1,sw1", api.ErrInvalid, "sw1 is not a node, it is a switch."},
		{"rpi[1-", api.ErrInvalid, `invalid device set "rpi[1-": '[' not closed`},
		{"my-nodes", api.ErrNotFound, "No matching devices found! (tip: walt help show node-ownership)"},
	}
	for _, c := range cases {
		_, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: c.set, Requester: "bob"}, nil)
		if !errors.Is(err, c.kind) || err.Error() != c.msg {
			t.Errorf("Reboot(%q) = %v, want %v %q", c.set, err, c.kind, c.msg)
		}
	}
	if len(ag.Reboots()) != 0 {
		t.Errorf("a failed request rebooted rpi1")
	}
	if hist, _ := e.c.Reboots(t.Context(), "rpi1", 0); len(hist.Reboots) != 0 {
		t.Errorf("failed requests were recorded: %+v", hist.Reboots)
	}
}

func TestOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a1 := e.addNode(t, "a1", reboottest.OK)
	e.addNode(t, "a2", reboottest.OK)
	if _, err := e.c.Ownership(t.Context(), api.OwnershipRequest{Set: "a1,a2", Action: "acquire", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "a[1-2]", Requester: "bob"}, nil)
	var ae *api.Error
	if !errors.Is(err, api.ErrNotOwned) || !errors.As(err, &ae) || !cmp.Equal(ae.Culprits, []string{"a1", "a2"}) {
		t.Fatalf("Reboot(others' nodes) = %v, want ErrNotOwned naming a1, a2", err)
	}
	if len(a1.Reboots()) != 0 {
		t.Errorf("refused request rebooted a1")
	}
	res, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "a1", Requester: "bob", Force: true}, nil)
	if err != nil || len(res) != 1 || !res[0].OK {
		t.Errorf("Reboot(force) = %+v, %v; want a1 rebooted", res, err)
	}
	if _, err := e.c.Ownership(t.Context(), api.OwnershipRequest{Set: "a1", Action: "release", Requester: "bob"}); !errors.Is(err, api.ErrNotOwned) {
		t.Errorf("release of another's node = %v, want ErrNotOwned", err)
	}
	if _, err := e.c.Ownership(t.Context(), api.OwnershipRequest{Set: "my-nodes", Action: "release", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	nl, _ := e.c.Nodes(t.Context(), map[string]string{"owner": ""})
	if nl.NumNodes != 2 {
		t.Errorf("after release, %d free nodes, want 2", nl.NumNodes)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "rpi1", reboottest.OK)
	for _, d := range []api.AddDevice{{Name: "sw1", IP: "127.20.255.1", Type: "switch"}, {Name: "unknown-7", IP: "127.20.255.7"}} {
		if _, err := e.c.AddDevice(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		set      string
		settings []string
		msg      string
	}{
		{"sw1", []string{"snmp.version=2", "poe.reboots"}, "Please provide settings as `<setting name>=<setting value>` arguments (got \"poe.reboots\")."},
		{"sw1", []string{"color=red"}, "Unknown setting 'color'. See: 'walt help show device-config'"},
		{"sw1", []string{"snmp.version=2", "poe.reboots=yes"}, "setting 'poe.reboots' only allows values 'true' or 'false'."},
		{"sw1", []string{"snmp.version=3"}, "value of setting 'snmp.version' should be '1' or '2'."},
		{"sw1", []string{"snmp.version=2", "poe.reboots=true"}, "cannot set 'poe.reboots' to true unless 'lldp.explore' is set to true too (device sw1)."},
		{"sw1", []string{"lldp.explore=true", "snmp.version=2"}, "cannot set 'lldp.explore' to true unless 'snmp.version' and 'snmp.community' are defined too (device sw1)."},
		{"rpi1,sw1", []string{"kexec.allow=false"}, "device sw1 is not a node, so it does not support the 'kexec.allow' setting."},
		{"rpi1", []string{"poe.reboots=false"}, "device rpi1 is not a switch, so 'poe.reboots' setting cannot be applied."},
		{"rpi1", []string{"boot.timeout=abc"}, "'abc' is not a valid value for option 'boot.timeout'.\n        Use for example '180' for waiting 3 minutes before considering the node is stuck and force-rebooting it, or 'none' to disable."},
		{"rpi1", []string{"boot.timeout=30"}, "A boot timeout of 30s is probably too small for some OS images.\n        Only \"none\" and values higher than 60 are allowed for this setting."},
		{"rpi1", []string{"boot.retries=-1"}, "'-1' is not a valid value for option 'boot.retries'.\n        Use for example '2' for retrying twice after a failed boot, '0' to disable."},
		{"sw1", []string{"type=switch"}, "setting 'type' can only be applied to unknown devices (device sw1 is not)."},
		{"unknown-7", []string{"type=node"}, "setting 'type' only allows value 'switch'."},
		{"sw1", []string{"poe.delay=1h"}, "poe.delay: must be between 100ms and 1m (got 1h)"},
	}
	for _, c := range cases {
		_, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: c.set, Settings: c.settings})
		if !errors.Is(err, api.ErrInvalid) || err.Error() != c.msg {
			t.Errorf("SetConfig(%s, %q) =\n%v\nwant invalid:\n%s", c.set, c.settings, err, c.msg)
		}
	}
	settings, err := e.store.Settings(t.Context())
	if err != nil || len(settings) != 0 {
		t.Errorf("after invalid commands, stored settings %v (%v), want none", settings, err)
	}

	// A valid sequence, with the type change and its rename.
	res, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "unknown-7", Settings: []string{"type=switch", "snmp.version=2", "snmp.community=private", "lldp.explore=true", "poe.reboots=true", "poe.delay=1500ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Renaming unknown-7 to switch-7 for clarity.", "Done."}, res.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	want := []api.Setting{
		{Name: "lldp.explore", Value: "true"}, {Name: "poe.delay", Value: "1.5s"}, {Name: "poe.reboots", Value: "true"},
		{Name: "snmp.community", Value: "********"}, {Name: "snmp.port", Value: "161", Default: true},
		{Name: "snmp.version", Value: "2"},
	}
	if len(res.Devices) != 1 || res.Devices[0].Name != "switch-7" {
		t.Fatalf("devices %+v, want switch-7", res.Devices)
	}
	if diff := cmp.Diff(want, res.Devices[0].Settings); diff != "" {
		t.Errorf("switch-7 settings (-want +got):\n%s", diff)
	}
	// The whole configuration stays consistent.
	if _, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "switch-7", Settings: []string{"lldp.explore=false"}}); err == nil {
		t.Errorf("lldp.explore=false with poe.reboots=true accepted")
	}
}

func TestNodeReports(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rep := api.NodeReport{MAC: "52-54-00-AA-BB-CC", IP: "127.20.250.1", Name: "vm1", Model: "pc-x86-64", Virtual: true, BootMode: "hybrid-volatile"}
	if _, err := e.c.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	// A new report updates the IP, never the name of a known node.
	rep.IP, rep.Name = "127.20.250.2", "vm1b"
	if _, err := e.c.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	nl, err := e.c.Nodes(t.Context(), map[string]string{"model": "pc-x86-64", "virtual": "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := api.NodeList{NumNodes: 1, Nodes: []api.Node{{
		Name: "vm1", Model: "pc-x86-64", Virtual: true, Booted: true, IP: "127.20.250.2", MAC: "52:54:00:aa:bb:cc", BootMode: "hybrid-volatile",
		Config:      map[string]string{"boot.delay": "random", "boot.retries": "9", "boot.timeout": "180", "cpu.cores": "4", "kexec.allow": "true", "ram": "512M"},
		BootContext: &api.BootContext{Cause: api.BootCauseUnknown}, // reports without a boot id: every one is a new boot
	}}}
	if diff := cmp.Diff(want, nl, cmpopts.IgnoreFields(api.Node{}, "Boot")); diff != "" {
		t.Errorf("Nodes() (-want +got):\n%s", diff)
	}
	if b := nl.Nodes[0].Boot; b == nil || b.State != api.StateBooted {
		t.Errorf("Nodes()[0].Boot = %+v, want state booted", b)
	}
	bad := []api.NodeReport{
		{MAC: "nope", IP: "127.0.0.1", Name: "x"},
		{MAC: "52:54:00:00:00:01", IP: "300.1.1.1", Name: "x"},
		{MAC: "52:54:00:00:00:01", IP: "127.0.0.1", Name: "x", BootMode: "floppy"},
		{MAC: "52:54:00:00:00:01", IP: "127.0.0.1", Name: "a,b"},
	}
	for _, b := range bad {
		if _, err := e.c.ReportNode(t.Context(), b); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("ReportNode(%+v) = %v, want ErrInvalid", b, err)
		}
	}
	if _, err := e.c.Nodes(t.Context(), map[string]string{"colour": "red"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("Nodes(unknown filter) = %v, want ErrInvalid", err)
	}
	if devs, _ := e.c.Devices(t.Context()); devs.NumDevices != 1 {
		t.Errorf("after bad reports, %d devices, want 1", devs.NumDevices)
	}
}

// Concurrent requests on overlapping sets: each node is rebooted, shared
// nodes are reported OK to both requests, and nothing is lost.
func TestConcurrentOverlappingReboots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for i := range 6 {
		e.addNode(t, fmt.Sprintf("c%d", i), reboottest.OK)
	}
	sets := []string{"c[0-3]", "c[2-5]", "c1,c4", "all-nodes"}
	var wg sync.WaitGroup
	results := make([][]api.NodeResult, len(sets))
	errs := make([]error, len(sets))
	for i, set := range sets {
		wg.Go(func() {
			results[i], errs[i] = e.c.Reboot(context.Background(), api.RebootRequest{Set: set, Requester: "alice"}, nil)
		})
	}
	wg.Wait()
	for i, set := range sets {
		if errs[i] != nil {
			t.Errorf("Reboot(%s) = %v", set, errs[i])
			continue
		}
		var names []string
		for _, r := range results[i] {
			if !r.OK {
				t.Errorf("Reboot(%s): %s failed: %+v", set, r.Node, r.Attempts)
			}
			names = append(names, r.Node)
		}
		sort.Strings(names)
		if len(names) == 0 || len(names) != map[int]int{0: 4, 1: 4, 2: 2, 3: 6}[i] {
			t.Errorf("Reboot(%s) results for %v", set, names)
		}
	}
	// One record per reboot done, none for the nodes a request joined
	// (their results have no ID), none left running.
	ids := map[string]bool{}
	for _, rs := range results {
		for _, r := range rs {
			if r.ID != "" {
				ids[r.ID] = true
			}
		}
	}
	hist, err := e.c.Reboots(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range hist.Reboots {
		got[r.ID] = true
		if r.State != api.RebootDone {
			t.Errorf("record of %s: state %q, want done", r.Node, r.State)
		}
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("history IDs vs the results' (-results +history):\n%s", diff)
	}
}

func TestDevicesAddForget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	d, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", Type: "switch"})
	if err != nil {
		t.Fatal(err)
	}
	if d.MAC != "02:00:c0:a8:98:02" {
		t.Errorf("made-up MAC %s, want 02:00:c0:a8:98:02", d.MAC)
	}
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.3"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("AddDevice(same name) = %v, want ErrConflict", err)
	}
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw2", IP: "192.168.152"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("AddDevice(bad ip) = %v, want ErrInvalid", err)
	}
	if err := e.c.ForgetDevice(t.Context(), "sw1", "", false); err != nil {
		t.Fatal(err)
	}
	if err := e.c.ForgetDevice(t.Context(), "sw1", "", false); !errors.Is(err, api.ErrNotFound) || err.Error() != "No device with name 'sw1' found." {
		t.Errorf("second ForgetDevice = %v, want not found", err)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _ := client.New(e.URL+"/api/v2/../../api/v9", nil)
	if _, err := c.Devices(t.Context()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Devices() on unknown version = %v, want ErrNotFound", err)
	}
	unreachable, _ := client.New("http://127.20.255.254:1", nil)
	if _, err := unreachable.Devices(t.Context()); !errors.Is(err, client.ErrServerUnreachable) {
		t.Errorf("Devices() on dead server = %v, want ErrServerUnreachable", err)
	}
}

// The history shows each reboot as the reboot stream did, field for field
// (times included: both are cut to the microsecond), error codes included.
func TestHistoryIsWhatTheRebootSaid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "h-ok", reboottest.OK)
	e.addNode(t, "h-refused", reboottest.Refused)
	e.addNode(t, "h-ko", reboottest.KO)
	res, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "h-ok,h-refused,h-ko", Requester: "alice", Cause: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := e.c.Reboots(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []api.NodeResult
	for _, r := range hist.Reboots {
		if r.State != api.RebootDone {
			t.Errorf("record of %s: state %q, want %q", r.Node, r.State, api.RebootDone)
		}
		got = append(got, r.NodeResult)
	}
	for _, r := range res {
		if r.ID == "" || r.Batch == "" || r.State != api.RebootDone || r.Requester != "alice" || r.Cause != "test" {
			t.Errorf("streamed result of %s: id %q, batch %q, state %q, requester %q, cause %q; want all set",
				r.Node, r.ID, r.Batch, r.State, r.Requester, r.Cause)
		}
	}
	byNode := cmpopts.SortSlices(func(a, b api.NodeResult) bool { return a.Node < b.Node })
	if diff := cmp.Diff(res, got, byNode); diff != "" {
		t.Errorf("history vs reboot stream (-stream +history):\n%s", diff)
	}
	for _, r := range got {
		if r.Node == "h-refused" && (len(r.Attempts) == 0 || r.Attempts[0].Code != "refused") {
			t.Errorf("history of h-refused: attempts %+v, want the first with code refused", r.Attempts)
		}
	}
}

// The records of a batch are there, running, before any node is touched:
// a node still waiting for a fan-out slot has its row (a kill then leaves
// it interrupted, not missing).
func TestQueuedNodeHasItsRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *server.Config) { c.Reboot.Fanout = 1 })
	e.addNode(t, "q1", reboottest.BlackHole) // holds the one slot for the reply timeout
	e.addNode(t, "q2", reboottest.BlackHole)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := e.c.Reboot(context.WithoutCancel(t.Context()), api.RebootRequest{Set: "q1,q2", Requester: "alice"}, nil); err != nil {
			t.Error(err)
		}
	}()
	var rows []api.RebootRecord
	testutil.Eventually(t, 10*time.Second, "the batch's first record", func() bool {
		hist, err := e.c.Reboots(t.Context(), "", 0)
		rows = hist.Reboots
		return err == nil && len(rows) > 0
	})
	states := map[string]string{}
	for _, r := range rows {
		states[r.Node] = r.State
	}
	// q1 holds the slot for 300 ms: q2 has not started yet.
	if diff := cmp.Diff(map[string]string{"q1": api.RebootRunning, "q2": api.RebootRunning}, states); diff != "" {
		t.Errorf("records once the first is there (-want +got):\n%s", diff)
	}
	<-done
	hist, err := e.c.Reboots(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range hist.Reboots {
		if r.State != api.RebootDone {
			t.Errorf("%s after the batch: state %q, want done", r.Node, r.State)
		}
	}
}
