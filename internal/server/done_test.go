package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/testutil"
)

// doneLog records the done reports the server accepted, as the campaign
// engine's replier would hear them, and answers with a campaign iteration.
type doneLog struct {
	mu   sync.Mutex
	got  []boot.Done
	macs []string
}

func (l *doneLog) reply(_ context.Context, mac string, d boot.Done) (api.DoneReply, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, d)
	l.macs = append(l.macs, mac)
	return api.DoneReply{Campaign: "c-test", Iteration: len(l.got)}, nil
}

func (l *doneLog) all() ([]string, []boot.Done) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.macs), slices.Clone(l.got)
}

// newDoneEnv is a boot env whose done reports go to a doneLog, with one
// healthy lab node.
func newDoneEnv(t *testing.T, node string) (*bootEnv, *doneLog, *lab.Node) {
	t.Helper()
	e := newBootEnv(t, false)
	dl := &doneLog{}
	e.Server.SetDoneReplier(dl.reply)
	return e, dl, e.addLabNode(t, node, lab.Healthy)
}

// wantAPIError checks that err is an *api.Error of code naming culprit.
func wantAPIError(t *testing.T, what string, err error, code api.Code, culprit, msg string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Errorf("%s: error %v, want an API error %s", what, err, code)
		return
	}
	if ae.Code != code || !slices.Contains(ae.Culprits, culprit) || !strings.Contains(ae.Message, msg) {
		t.Errorf("%s: %s %q culprits %q; want %s naming %q, message with %q", what, ae.Code, ae.Message, ae.Culprits, code, culprit, msg)
	}
}

// TestNodeDoneCurrentBoot reports done for a simulated node's boot over
// HTTP: the current boot is accepted and reaches the replier (the campaign
// engine's spot), whose answer the node gets; after a real reboot the old
// boot is a conflict naming it, and the new one is accepted.
func TestNodeDoneCurrentBoot(t *testing.T) {
	t.Parallel()
	e, dl, n := newDoneEnv(t, "done1")
	first := n.BootID()
	reply, err := e.Client.ReportDone(t.Context(), api.DoneReport{MAC: strings.ToUpper(n.MAC()), BootID: first, Status: 3, Metrics: map[string]float64{"boot_s": 1.5, "run.count-2": -7}})
	if err != nil || reply != (api.DoneReply{Campaign: "c-test", Iteration: 1}) {
		t.Fatalf("done for the current boot = %+v, %v; want the replier's answer", reply, err)
	}
	macs, got := dl.all()
	if len(got) != 1 || macs[0] != n.MAC() || got[0].BootID != first || got[0].Status != 3 || got[0].Metrics["boot_s"] != 1.5 || got[0].Metrics["run.count-2"] != -7 {
		t.Fatalf("replier heard %q %+v", macs, got)
	}

	e.reboot(t, "done1", false)
	testutil.Eventually(t, time.Minute, "the new boot's report", func() bool {
		bc, ok := e.rep.BootContext(n.MAC())
		return ok && bc.BootID != first && bc.BootID == n.BootID()
	})
	_, err = e.Client.ReportDone(t.Context(), api.DoneReport{MAC: n.MAC(), BootID: first})
	wantAPIError(t, "done for the previous boot", err, api.CodeConflict, first, "is not its current boot "+n.BootID())
	if reply, err := e.Client.ReportDone(t.Context(), api.DoneReport{MAC: n.MAC(), BootID: n.BootID()}); err != nil || reply.Iteration != 2 {
		t.Fatalf("done for the new boot = %+v, %v", reply, err)
	}
	if _, got := dl.all(); len(got) != 2 {
		t.Errorf("replier heard %d done reports, want 2 (the stale one must not reach it)", len(got))
	}
}

// TestNodeDoneRefusals sends hostile done reports over HTTP: each is
// refused whole, naming its culprit, and none reaches the replier.
func TestNodeDoneRefusals(t *testing.T) {
	t.Parallel()
	e, dl, n := newDoneEnv(t, "done2")
	id := n.BootID()
	// A node added by hand never reported a boot; a switch is no node.
	if _, err := e.Client.AddDevice(t.Context(), api.AddDevice{Name: "quiet", IP: "127.42.9.1", MAC: "52:54:00:42:09:01", Type: "node"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.AddDevice(t.Context(), api.AddDevice{Name: "sw9", IP: "127.42.9.2", MAC: "52:54:00:42:09:02", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	many := map[string]float64{}
	for i := range api.MaxDoneMetrics + 1 {
		many[fmt.Sprintf("m%02d", i)] = float64(i)
	}
	long := strings.Repeat("k", api.MaxMetricKey+1)
	for _, tt := range []struct {
		name    string
		r       api.DoneReport
		code    api.Code
		culprit string
		msg     string
	}{
		{"malformed mac", api.DoneReport{MAC: "52:54:00", BootID: id}, api.CodeInvalid, "52:54:00", "mac"},
		{"broadcast mac", api.DoneReport{MAC: "ff:ff:ff:ff:ff:ff", BootID: id}, api.CodeInvalid, "ff:ff:ff:ff:ff:ff", "broadcast"},
		{"unknown mac", api.DoneReport{MAC: "52:54:00:42:09:99", BootID: id}, api.CodeNotFound, "52:54:00:42:09:99", "no such node"},
		{"a switch", api.DoneReport{MAC: "52:54:00:42:09:02", BootID: id}, api.CodeInvalid, "sw9", "is a switch, not a node"},
		{"no boot yet", api.DoneReport{MAC: "52:54:00:42:09:01", BootID: id}, api.CodeNotFound, "quiet", "no boot reported"},
		{"no boot id", api.DoneReport{MAC: n.MAC()}, api.CodeInvalid, "boot_id", "boot_id: empty"},
		{"long boot id", api.DoneReport{MAC: n.MAC(), BootID: strings.Repeat("b", 129)}, api.CodeInvalid, "boot_id", "129 bytes, at most 128"},
		{"control in boot id", api.DoneReport{MAC: n.MAC(), BootID: "a\nb"}, api.CodeInvalid, "boot_id", "not allowed"},
		{"negative status", api.DoneReport{MAC: n.MAC(), BootID: id, Status: -1}, api.CodeInvalid, "status", "-1 is out of range (0 to 255"},
		{"status 256", api.DoneReport{MAC: n.MAC(), BootID: id, Status: 256}, api.CodeInvalid, "status", "256 is out of range"},
		{"too many metrics", api.DoneReport{MAC: n.MAC(), BootID: id, Metrics: many}, api.CodeInvalid, "metrics", "33 given, at most 32"},
		{"slash in key", api.DoneReport{MAC: n.MAC(), BootID: id, Metrics: map[string]float64{"a/b": 1}}, api.CodeInvalid, "a/b", "byte '/' at 1 not allowed"},
		{"quote in key", api.DoneReport{MAC: n.MAC(), BootID: id, Metrics: map[string]float64{"ok": 1, "x'y": 1}}, api.CodeInvalid, "x'y", "not allowed"},
		{"long key", api.DoneReport{MAC: n.MAC(), BootID: id, Metrics: map[string]float64{long: 1}}, api.CodeInvalid, long[:api.MaxMetricKey], "65 bytes, at most 64"},
		{"empty key", api.DoneReport{MAC: n.MAC(), BootID: id, Metrics: map[string]float64{"": 1}}, api.CodeInvalid, "metrics", "a key is empty"},
	} {
		_, err := e.Client.ReportDone(t.Context(), tt.r)
		wantAPIError(t, tt.name, err, tt.code, tt.culprit, tt.msg)
	}
	if _, got := dl.all(); len(got) != 0 {
		t.Errorf("refused reports reached the replier: %+v", got)
	}
	// Without a replier the answer is empty.
	e.Server.SetDoneReplier(nil)
	if reply, err := e.Client.ReportDone(t.Context(), api.DoneReport{MAC: n.MAC(), BootID: id, Status: 255}); err != nil || reply != (api.DoneReply{}) {
		t.Errorf("done without a replier = %+v, %v; want an empty answer", reply, err)
	}
}

// TestNodeMethodReported: a boot report's node method reaches the boot
// context the server answers with; a method out of bounds or of other
// characters is refused naming node_method, before anything changes.
func TestNodeMethodReported(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, false)
	rep := api.NodeReport{MAC: "52:54:00:42:0a:01", IP: "127.42.10.1", Name: "kx1", Model: "pc", BootMode: "network", BootID: "boot-1", NodeMethod: "kexec"}
	nd, err := e.Client.ReportNode(t.Context(), rep)
	if err != nil || nd.BootContext == nil || nd.BootContext.NodeMethod != "kexec" || nd.BootContext.BootID != "boot-1" || nd.BootContext.Cause != api.BootCauseUnknown {
		t.Fatalf("report with node method kexec = %+v, %v", nd.BootContext, err)
	}
	for _, m := range []string{"ke xec", "kexec;reboot", strings.Repeat("k", api.MaxNodeMethodLen+1), "kéxec"} {
		bad := rep
		bad.BootID, bad.NodeMethod = "boot-2", m
		_, err := e.Client.ReportNode(t.Context(), bad)
		wantAPIError(t, fmt.Sprintf("node method %q", m), err, api.CodeInvalid, "node_method", "node_method: ")
	}
	if got := e.node(t, "kx1"); got.Boot.BootID != "boot-1" {
		t.Errorf("after refused reports, boot id %q; want boot-1 still", got.Boot.BootID)
	}
}

// TestReporterKeepsBootContext: the Reporter keeps the boot context of
// each node's last accepted report, and tells OnContext: a first boot's
// cause is unknown, a user's reboot says who asked for it.
func TestReporterKeepsBootContext(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, false)
	heard := make(chan api.BootContext, 16)
	e.rep.OnContext = func(mac string, bc api.BootContext) { heard <- bc }
	n := e.addLabNode(t, "ctx1", lab.Healthy)
	if bc := <-heard; bc.BootID != n.BootID() || bc.Cause != api.BootCauseUnknown {
		t.Fatalf("first boot's context = %+v", bc)
	}
	e.reboot(t, "ctx1", false)
	bc := <-heard
	if bc.BootID != n.BootID() || bc.Cause != api.BootCauseUser || bc.Requester != "alice" || bc.RebootID == "" || bc.RequestedAt == nil {
		t.Fatalf("context after alice's reboot = %+v", bc)
	}
	if kept, ok := e.rep.BootContext(strings.ToUpper(n.MAC())); !ok || kept.BootID != bc.BootID || kept.Cause != bc.Cause {
		t.Errorf("BootContext = %+v, %v; want %+v", kept, ok, bc)
	}
}

// TestFlakyNodeRescued: a lab node whose every second boot never comes
// back (flaky:2) fails one reboot, is rescued by the boot watchdog's power
// cycle, and boots on the next reboot: it fails sometimes but is not dead.
// The boot context its Reporter keeps says which boot was a rescue.
func TestFlakyNodeRescued(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, true)
	n := e.addLabNode(t, "flaky1", lab.Flaky(2))
	if _, err := e.Client.SetConfig(t.Context(), api.ConfigRequest{Set: "flaky1", Settings: []string{"boot.timeout=60", "boot.retries=2"}, Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	first := n.BootID()
	e.reboot(t, "flaky1", false) // its second boot: never comes back
	// The agent answers OK, then goes down.
	testutil.Eventually(t, time.Minute, "the flaky node down", func() bool { return n.State() != lab.Up })
	e.clock.Advance(59 * time.Second)
	if n.State() != lab.Booting || n.BootID() != first {
		t.Fatalf("flaky node %s, boot %s before the watchdog; want dark in boot %s", n.State(), n.BootID(), first)
	}
	e.clock.Advance(2 * time.Second) // the watchdog power-cycles it
	testutil.Eventually(t, time.Minute, "the rescued boot's context", func() bool {
		bc, ok := e.rep.BootContext(n.MAC())
		return ok && bc.BootID != first && bc.BootID == n.BootID()
	})
	if bc, _ := e.rep.BootContext(n.MAC()); bc.Cause != api.BootCauseWatchdog || bc.WatchdogTry != 1 || bc.WatchdogTries != 2 || bc.Method != api.MethodPoE {
		t.Errorf("rescued boot's context %+v; want the watchdog's try 1 of 2, PoE", bc)
	}
	rescued := n.BootID()
	e.reboot(t, "flaky1", false) // the next counted boot comes back
	testutil.Eventually(t, time.Minute, "the next boot's context", func() bool {
		bc, ok := e.rep.BootContext(n.MAC())
		return ok && bc.BootID != rescued && bc.BootID == n.BootID()
	})
	if bc, _ := e.rep.BootContext(n.MAC()); bc.Cause != api.BootCauseUser || bc.Requester != "alice" || bc.WatchdogTry != 0 {
		t.Errorf("next boot's context %+v; want alice's reboot", bc)
	}
	e.mu.Lock()
	cycles := e.cycles["flaky1"]
	e.mu.Unlock()
	if cycles != 1 {
		t.Errorf("%d power cycles, want 1 (the one rescue)", cycles)
	}
}
