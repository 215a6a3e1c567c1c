// Package storetest is the conformance suite every store.Store
// implementation runs: storetest.Run(t, newStore).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// NewStore returns an empty store. Reopen, when not nil, closes the store and
// opens the same database again (to check what survives a restart).
type NewStore func(t *testing.T) (s store.Store, reopen func() store.Store)

// Run runs the whole suite, each case on a fresh store.
func Run(t *testing.T, newStore NewStore) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store, reopen func() store.Store)
	}{
		{"AddAndRead", testAddAndRead},
		{"AddConflicts", testAddConflicts},
		{"AddInvalid", testAddInvalid},
		{"Report", testReport},
		{"ApplyChanges", testApplyChanges},
		{"ApplyChangesAtomic", testApplyChangesAtomic},
		{"Forget", testForget},
		{"Links", testLinks},
		{"PoEOff", testPoEOff},
		{"Reboots", testReboots},
		{"SurvivesReopen", testSurvivesReopen},
		{"ConcurrentReports", testConcurrentReports},
		{"BootStatuses", testBootStatuses},
		{"BootStatusLastSeen", testBootStatusLastSeen},
		{"RebootsBooted", testRebootsBooted},
		{"RebootProgress", testRebootProgress},
		{"FinishReplacesAttempts", testFinishReplacesAttempts},
		{"FinishManyReboots", testFinishManyReboots},
		{"RebootInterrupted", testRebootInterrupted},
		{"RebootInterruptedByServer", testRebootInterruptedByServer},
		{"DeleteReboots", testDeleteReboots},
		{"LatestReboots", testLatestReboots},
		{"LogLines", testLogLines},
		{"BootStateFlush", testBootStateFlush},
		{"BootSurvivesReopen", testBootSurvivesReopen},
		{"EndedContext", testEndedContext},
		{"Campaigns", testCampaigns},
		{"CampaignProgress", testCampaignProgress},
		{"Quarantine", testQuarantine},
		{"UnbootedCampaignBoots", testUnbootedCampaignBoots},
		{"Users", testUsers},
		{"UserErrors", testUserErrors},
		{"Audit", testAudit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, reopen := newStore(t)
			c.fn(t, s, reopen)
		})
	}
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)

func node(i int) store.Device {
	return store.Device{
		MAC:       fmt.Sprintf("52:54:00:00:00:%02x", i),
		Name:      fmt.Sprintf("rpi%d", i),
		IP:        fmt.Sprintf("127.0.0.%d", i),
		Type:      store.TypeNode,
		Model:     "rpi-b",
		CreatedAt: t0,
	}
}

func sw(i int) store.Device {
	return store.Device{
		MAC:       fmt.Sprintf("ac:de:48:00:00:%02x", i),
		Name:      fmt.Sprintf("sw%d", i),
		IP:        fmt.Sprintf("127.1.0.%d", i),
		Type:      store.TypeSwitch,
		CreatedAt: t0,
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func mustAdd(t *testing.T, s store.Store, ds ...store.Device) {
	t.Helper()
	for _, d := range ds {
		if err := s.AddDevice(ctx(t), d); err != nil {
			t.Fatalf("AddDevice(%s) = %v", d.Name, err)
		}
	}
}

func testAddAndRead(t *testing.T, s store.Store, _ func() store.Store) {
	n := node(1)
	n.Virtual, n.Owner, n.BootMode = true, "alice", "network"
	mustAdd(t, s, sw(1), n)
	got, err := s.Device(ctx(t), "52-54-00-00-00-01")
	if err != nil {
		t.Fatalf("Device(dash form) = %v", err)
	}
	if diff := cmp.Diff(n, got); diff != "" {
		t.Errorf("Device() mismatch (-want +got):\n%s", diff)
	}
	byName, err := s.DeviceByName(ctx(t), "rpi1")
	if err != nil || byName.MAC != n.MAC {
		t.Errorf("DeviceByName(rpi1) = %v, %v; want mac %s", byName.MAC, err, n.MAC)
	}
	all, err := s.Devices(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range all {
		names = append(names, d.Name)
	}
	if diff := cmp.Diff([]string{"rpi1", "sw1"}, names); diff != "" {
		t.Errorf("Devices() names (-want +got):\n%s", diff)
	}
	if _, err := s.DeviceByName(ctx(t), "nope"); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("DeviceByName(nope) = %v, want ErrNotFound", err)
	}
}

func testAddConflicts(t *testing.T, s store.Store, _ func() store.Store) {
	mustAdd(t, s, node(1))
	sameMAC := node(1)
	sameMAC.Name = "other"
	sameName := node(2)
	sameName.Name = "rpi1"
	for _, d := range []store.Device{sameMAC, sameName} {
		if err := s.AddDevice(ctx(t), d); !errors.Is(err, vocab.ErrConflict) {
			t.Errorf("AddDevice(%s, %s) = %v, want ErrConflict", d.Name, d.MAC, err)
		}
	}
	all, _ := s.Devices(ctx(t))
	if len(all) != 1 {
		t.Errorf("after conflicts, %d devices, want 1", len(all))
	}
}

func testAddInvalid(t *testing.T, s store.Store, _ func() store.Store) {
	bad := map[string]func(*store.Device){
		"mac":   func(d *store.Device) { d.MAC = "52:54:00" },
		"name":  func(d *store.Device) { d.Name = "a,b" },
		"empty": func(d *store.Device) { d.Name = "" },
		"type":  func(d *store.Device) { d.Type = "toaster" },
	}
	for what, f := range bad {
		d := node(1)
		f(&d)
		if err := s.AddDevice(ctx(t), d); !errors.Is(err, vocab.ErrInvalid) {
			t.Errorf("AddDevice(bad %s) = %v, want ErrInvalid", what, err)
		}
	}
	if all, _ := s.Devices(ctx(t)); len(all) != 0 {
		t.Errorf("after invalid adds, %d devices, want 0", len(all))
	}
}

func testReport(t *testing.T, s store.Store, _ func() store.Store) {
	n := node(1)
	n.LastSeen = t0
	if _, err := s.ReportDevice(ctx(t), n); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyChanges(ctx(t), []store.DeviceChange{{MAC: n.MAC, Owner: ptr("bob")}}); err != nil {
		t.Fatal(err)
	}
	n2 := n
	n2.IP, n2.BootMode, n2.Booted, n2.LastSeen = "127.0.0.99", "hybrid-volatile", true, t0.Add(time.Hour)
	n2.CreatedAt = t0.Add(time.Hour) // must be ignored
	got, err := s.ReportDevice(ctx(t), n2)
	if err != nil {
		t.Fatal(err)
	}
	want := n2
	want.Owner, want.CreatedAt = "bob", t0
	stored, _ := s.Device(ctx(t), n.MAC)
	for _, g := range []store.Device{got, stored} {
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("after second report (-want +got):\n%s", diff)
		}
	}
	other := node(2)
	other.Name = n.Name
	if _, err := s.ReportDevice(ctx(t), other); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("ReportDevice(name of another mac) = %v, want ErrConflict", err)
	}
	// A known device reporting another's name (the one-statement report of
	// a known device fails, the transaction says why) changes nothing.
	known := node(2)
	known.LastSeen = t0
	if _, err := s.ReportDevice(ctx(t), known); err != nil {
		t.Fatal(err)
	}
	taking := known
	taking.Name, taking.IP, taking.LastSeen = n.Name, "127.0.0.98", t0.Add(2*time.Hour)
	if _, err := s.ReportDevice(ctx(t), taking); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("ReportDevice(known device, name of another) = %v, want ErrConflict", err)
	}
	if got, err := s.Device(ctx(t), known.MAC); err != nil || got.Name != known.Name || got.IP != known.IP || !got.LastSeen.Equal(t0) {
		t.Errorf("after a refused report, Device(%s) = %+v, %v; want it as first reported", known.MAC, got, err)
	}
	testReportKeepsWhatADeviceIs(t, s, known)
}

// testReportKeepsWhatADeviceIs: a report never renames a node, flips its
// virtual flag or turns a switch into a node, even when the caller's own
// check read the device before another change; a device of unknown type
// becomes the reported node.
func testReportKeepsWhatADeviceIs(t *testing.T, s store.Store, known store.Device) {
	t.Helper()
	for what, change := range map[string]func(*store.Device){
		"rename":       func(d *store.Device) { d.Name = "renamed-by-report" },
		"virtual flip": func(d *store.Device) { d.Virtual = !d.Virtual },
	} {
		d := known
		change(&d)
		d.IP, d.LastSeen = "127.0.0.97", t0.Add(3*time.Hour)
		if _, err := s.ReportDevice(ctx(t), d); !errors.Is(err, vocab.ErrConflict) {
			t.Errorf("ReportDevice(%s of a known node) = %v, want ErrConflict", what, err)
		}
		if got, err := s.Device(ctx(t), known.MAC); err != nil || got.Name != known.Name || got.Virtual != known.Virtual || got.IP != known.IP {
			t.Errorf("after a refused %s, Device(%s) = %+v, %v; want it unchanged", what, known.MAC, got, err)
		}
	}
	switch7 := sw(7)
	mustAdd(t, s, switch7)
	asNode := node(7)
	asNode.MAC, asNode.Name = switch7.MAC, switch7.Name
	if _, err := s.ReportDevice(ctx(t), asNode); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("ReportDevice(a switch's MAC) = %v, want ErrConflict", err)
	}
	if got, err := s.Device(ctx(t), switch7.MAC); err != nil || got.Type != store.TypeSwitch {
		t.Errorf("after a report with its MAC, switch = %+v, %v; want still a switch", got, err)
	}
	unk := switch7
	unk.MAC, unk.Name, unk.Type, unk.IP = "52:54:00:00:07:77", "unknown-777", store.TypeUnknown, "127.0.7.77"
	mustAdd(t, s, unk)
	reg := node(77)
	reg.MAC, reg.Name = unk.MAC, "rpi77"
	if got, err := s.ReportDevice(ctx(t), reg); err != nil || got.Type != store.TypeNode || got.Name != "rpi77" {
		t.Errorf("ReportDevice(device of unknown type) = %+v, %v; want it a node named rpi77", got, err)
	}
}

func ptr[T any](v T) *T { return &v }

func testApplyChanges(t *testing.T, s store.Store, _ func() store.Store) {
	unk := sw(1)
	unk.Type, unk.Name = store.TypeUnknown, "unknown-1"
	mustAdd(t, s, unk, node(2))
	err := s.ApplyChanges(ctx(t), []store.DeviceChange{
		{MAC: unk.MAC, Type: ptr(store.TypeSwitch), Name: ptr("switch-1"), Set: map[string]*string{"snmp.version": ptr("2"), "snmp.community": ptr("private")}},
		{MAC: node(2).MAC, Set: map[string]*string{"kexec.allow": ptr("false")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.DeviceByName(ctx(t), "switch-1")
	if err != nil || d.Type != store.TypeSwitch {
		t.Errorf("after change: DeviceByName(switch-1) = %+v, %v; want a switch", d, err)
	}
	if err := s.ApplyChanges(ctx(t), []store.DeviceChange{{MAC: unk.MAC, Set: map[string]*string{"snmp.community": nil, "snmp.version": ptr("1")}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Settings(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		unk.MAC:     {"snmp.version": "1"},
		node(2).MAC: {"kexec.allow": "false"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Settings() (-want +got):\n%s", diff)
	}
}

func testApplyChangesAtomic(t *testing.T, s store.Store, _ func() store.Store) {
	mustAdd(t, s, node(1), node(2))
	err := s.ApplyChanges(ctx(t), []store.DeviceChange{
		{MAC: node(1).MAC, Set: map[string]*string{"kexec.allow": ptr("false")}, Owner: ptr("alice")},
		{MAC: node(2).MAC, Name: ptr("rpi1")}, // taken: the whole call must fail
	})
	if !errors.Is(err, vocab.ErrConflict) {
		t.Fatalf("ApplyChanges(rename onto taken name) = %v, want ErrConflict", err)
	}
	err = s.ApplyChanges(ctx(t), []store.DeviceChange{
		{MAC: node(1).MAC, Set: map[string]*string{"kexec.allow": ptr("false")}},
		{MAC: "52:54:00:00:00:ff"},
	})
	if !errors.Is(err, vocab.ErrNotFound) {
		t.Fatalf("ApplyChanges(unknown mac) = %v, want ErrNotFound", err)
	}
	settings, _ := s.Settings(ctx(t))
	d, _ := s.Device(ctx(t), node(1).MAC)
	if len(settings) != 0 || d.Owner != "" {
		t.Errorf("after failed changes: settings %v, owner %q; want nothing changed", settings, d.Owner)
	}
}

// populate adds switch sw1 with a setting, node rpi1 on its port 3, and a
// PoE-off record for that port.
func populate(t *testing.T, s store.Store) {
	t.Helper()
	mustAdd(t, s, sw(1), node(1))
	if err := s.ApplyChanges(ctx(t), []store.DeviceChange{{MAC: sw(1).MAC, Set: map[string]*string{"poe.reboots": ptr("true")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLink(ctx(t), store.Link{NodeMAC: node(1).MAC, SwitchMAC: sw(1).MAC, Port: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPoEOff(ctx(t), store.PoEOff{SwitchMAC: sw(1).MAC, Port: 3, Reason: "powersave", At: t0}); err != nil {
		t.Fatal(err)
	}
}

func testForget(t *testing.T, s store.Store, _ func() store.Store) {
	populate(t, s)
	if err := s.ForgetDevice(ctx(t), sw(1).MAC); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetDevice(ctx(t), sw(1).MAC); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("second ForgetDevice = %v, want ErrNotFound", err)
	}
	settings, _ := s.Settings(ctx(t))
	links, _ := s.Links(ctx(t))
	offs, _ := s.PoEOffs(ctx(t))
	if len(settings)+len(links)+len(offs) != 0 {
		t.Errorf("after forget: settings %v, links %v, poe %v; want none", settings, links, offs)
	}
	// The name is free again.
	mustAdd(t, s, sw(1))
}

func testLinks(t *testing.T, s store.Store, _ func() store.Store) {
	mustAdd(t, s, sw(1), sw(2), node(1))
	for _, l := range []store.Link{
		{NodeMAC: node(1).MAC, SwitchMAC: sw(1).MAC, Port: 1},
		{NodeMAC: node(1).MAC, SwitchMAC: sw(2).MAC, Port: 7}, // replaces
	} {
		if err := s.SetLink(ctx(t), l); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Links(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Link{{NodeMAC: node(1).MAC, SwitchMAC: sw(2).MAC, Port: 7}}, got); diff != "" {
		t.Errorf("Links() (-want +got):\n%s", diff)
	}
	if err := s.SetLink(ctx(t), store.Link{NodeMAC: node(1).MAC, SwitchMAC: "ac:de:48:00:00:99", Port: 1}); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("SetLink(unknown switch) = %v, want ErrNotFound", err)
	}
	if err := s.SetLink(ctx(t), store.Link{NodeMAC: node(1).MAC, SwitchMAC: sw(1).MAC, Port: 0}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("SetLink(port 0) = %v, want ErrInvalid", err)
	}
	if err := s.DeleteLink(ctx(t), node(1).MAC); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Links(ctx(t)); len(got) != 0 {
		t.Errorf("after DeleteLink: %v", got)
	}
}

func testPoEOff(t *testing.T, s store.Store, _ func() store.Store) {
	mustAdd(t, s, sw(1))
	for _, p := range []store.PoEOff{
		{SwitchMAC: sw(1).MAC, Port: 4, Reason: "hard-reboot", At: t0},
		{SwitchMAC: sw(1).MAC, Port: 2, Reason: "hard-reboot", At: t0},
		{SwitchMAC: sw(1).MAC, Port: 4, Reason: "powersave", At: t0.Add(time.Second)},
	} {
		if err := s.AddPoEOff(ctx(t), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddPoEOff(ctx(t), store.PoEOff{SwitchMAC: sw(1).MAC, Port: 5}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("AddPoEOff(no reason) = %v, want ErrInvalid", err)
	}
	if err := s.RemovePoEOff(ctx(t), sw(1).MAC, 2); err != nil {
		t.Fatal(err)
	}
	got, err := s.PoEOffs(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.PoEOff{{SwitchMAC: sw(1).MAC, Port: 4, Reason: "powersave", At: t0.Add(time.Second)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PoEOffs() (-want +got):\n%s", diff)
	}
}

func testReboots(t *testing.T, s store.Store, _ func() store.Store) {
	// Attempts keep what the power source said of the cut, or nothing.
	verified, notVerified := true, false
	rs := []store.Reboot{
		{
			Batch: "b1", Requester: "alice", Cause: "reboot requested", NodeMAC: node(1).MAC, NodeName: "rpi1",
			Method: "soft-reboot", OK: true, RequestedAt: t0, AckAt: t0.Add(time.Millisecond), FinishedAt: t0.Add(time.Millisecond),
			Attempts: []store.Attempt{{Method: "soft-reboot", Started: t0, Finished: t0.Add(time.Millisecond)}},
		},
		{
			Batch: "b1", Requester: "alice", Cause: "reboot requested", NodeMAC: node(2).MAC, NodeName: "rpi2",
			RequestedAt: t0, FinishedAt: t0.Add(time.Second),
			Attempts: []store.Attempt{
				{Method: "soft-reboot", Error: "connection refused", Started: t0, Finished: t0.Add(time.Millisecond)},
				{Method: "PoE-reboot", Error: "forbidden on switch", Code: "forbidden", Started: t0.Add(time.Millisecond), Finished: t0.Add(time.Second)},
				{Method: "IPMI-reboot", Started: t0.Add(time.Second), Finished: t0.Add(2 * time.Second), CutVerified: &verified, Cut: "BMC 10.0.0.5:623 read back the power off"},
				{Method: "command-reboot", Started: t0.Add(2 * time.Second), Finished: t0.Add(3 * time.Second), CutVerified: &notVerified, Cut: "a command cannot read the power back"},
			},
		},
	}
	ids, err := s.AddReboots(ctx(t), rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] == "" || ids[0] == ids[1] {
		t.Fatalf("AddReboots ids = %q, want two distinct", ids)
	}
	rs[0].ID, rs[1].ID = ids[0], ids[1]
	rs[0].State, rs[1].State = store.RebootDone, store.RebootDone // the default
	got, err := s.Reboots(ctx(t), store.RebootFilter{Batch: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rs, got); diff != "" {
		t.Errorf("Reboots() (-want +got):\n%s", diff)
	}
	got, _ = s.Reboots(ctx(t), store.RebootFilter{NodeMAC: node(2).MAC, Limit: 5})
	if len(got) != 1 || got[0].NodeName != "rpi2" {
		t.Errorf("Reboots(node 2) = %+v, want rpi2 only", got)
	}
	if _, err := s.AddReboots(ctx(t), []store.Reboot{{ID: ids[0], RequestedAt: t0, FinishedAt: t0}}); !errors.Is(err, vocab.ErrConflict) {
		t.Errorf("AddReboots(same id) = %v, want ErrConflict", err)
	}
}

func testSurvivesReopen(t *testing.T, s store.Store, reopen func() store.Store) {
	if reopen == nil {
		t.Skip("store cannot be reopened")
	}
	populate(t, s)
	if _, err := s.AddReboots(ctx(t), []store.Reboot{{NodeMAC: node(1).MAC, NodeName: "rpi1", RequestedAt: t0, FinishedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	devs, _ := s.Devices(ctx(t))
	settings, _ := s.Settings(ctx(t))
	links, _ := s.Links(ctx(t))
	offs, _ := s.PoEOffs(ctx(t))
	reboots, _ := s.Reboots(ctx(t), store.RebootFilter{})
	if len(devs) != 2 || settings[sw(1).MAC]["poe.reboots"] != "true" || len(links) != 1 || len(offs) != 1 || len(reboots) != 1 {
		t.Errorf("after reopen: %d devices, settings %v, links %v, poe %v, %d reboots; want all kept",
			len(devs), settings, links, offs, len(reboots))
	}
}

func testConcurrentReports(t *testing.T, s store.Store, _ func() store.Store) {
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			d := node(i % 10) // 5 reports per MAC
			_, errs[i] = s.ReportDevice(ctx(t), d)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("report %d: %v", i, err)
		}
	}
	devs, _ := s.Devices(ctx(t))
	if len(devs) != 10 {
		t.Errorf("after concurrent reports: %d devices, want 10", len(devs))
	}
}

// testEndedContext: the writes of a report and of a reboot, given a
// context that has ended, fail with its error and change nothing.
func testEndedContext(t *testing.T, s store.Store, _ func() store.Store) {
	n := node(1)
	n.LastSeen = t0
	if _, err := s.ReportDevice(ctx(t), n); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx(t))
	cancel()
	later := n
	later.IP, later.LastSeen, later.Booted = "127.0.0.77", t0.Add(time.Hour), true
	status := store.BootStatus{MAC: n.MAC, BootID: "b1", Booted: true, Since: t0, RetriesLeft: -1}
	for what, err := range map[string]error{
		"ReportDevice":    func() error { _, err := s.ReportDevice(ended, later); return err }(),
		"SetBooted":       s.SetBooted(ended, []string{n.MAC}, true),
		"SetBootStatuses": s.SetBootStatuses(ended, []store.BootStatus{status}),
		"AddReboots": func() error {
			_, err := s.AddReboots(ended, []store.Reboot{{NodeMAC: n.MAC, NodeName: n.Name, RequestedAt: t0, FinishedAt: t0}})
			return err
		}(),
		"SetRebootsBooted": s.SetRebootsBooted(ended, []store.RebootBoot{{ID: "none", At: t0}}),
		"AddLogLines":      s.AddLogLines(ended, []store.LogLine{{Seq: 1, At: t0, Line: "x"}}),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s(ended context) = %v, want context.Canceled", what, err)
		}
	}
	if got, err := s.Device(ctx(t), n.MAC); err != nil || got.IP != n.IP || got.Booted || !got.LastSeen.Equal(t0) {
		t.Errorf("Device(%s) = %+v, %v; want it as first reported", n.MAC, got, err)
	}
	bs, err := s.BootStatuses(ctx(t))
	if err != nil || len(bs) != 0 {
		t.Errorf("BootStatuses() = %v, %v; want none", bs, err)
	}
	rs, err := s.Reboots(ctx(t), store.RebootFilter{})
	if err != nil || len(rs) != 0 {
		t.Errorf("Reboots() = %v, %v; want none", rs, err)
	}
	ls, err := s.LogLines(ctx(t), 0, 0)
	if err != nil || len(ls) != 0 {
		t.Errorf("LogLines() = %v, %v; want none", ls, err)
	}
}
