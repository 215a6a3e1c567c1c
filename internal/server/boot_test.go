package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Boot tracking tests use 127.40.0.0/16 for reboottest agents and
// 127.41.0.0/16 for simulated lab nodes.
var (
	bootAddrs = reboottest.NewAddrs(40)
	labNext   atomic.Uint32
)

// bootEnv is a server with simulated physical nodes: agents on real TCP
// that go away when rebooted and come back with a new boot id, reported
// to the server by a client.Reporter as walt-lab does.
type bootEnv struct {
	*servertest.Env
	clock *servertest.Clock // nil: real time
	rep   *client.Reporter
	mu    sync.Mutex
	nodes map[string]*lab.Node // by MAC
	// cycles counts the hard reboots (power cycles) of each node.
	cycles map[string]int
}

// powerCycler is the hard-reboot method of the test's physical nodes.
type powerCycler struct{ e *bootEnv }

func (p powerCycler) Method() string { return api.MethodPoE }

func (p powerCycler) HardReboot(ctx context.Context, n reboot.Node) error {
	p.e.mu.Lock()
	ln := p.e.nodes[n.MAC]
	p.e.cycles[n.Name]++
	p.e.mu.Unlock()
	if ln == nil {
		return fmt.Errorf("no simulated node %s", n.Name)
	}
	ln.PowerOff()
	ln.PowerOn()
	return nil
}

func newBootEnv(t *testing.T, fake bool) *bootEnv {
	e := &bootEnv{nodes: map[string]*lab.Node{}, cycles: map[string]int{}}
	if fake {
		e.clock = servertest.NewClock(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	}
	e.Env = servertest.New(t, bootAddrs, func(c *server.Config) {
		c.Reboot.Physical = powerCycler{e}
		if e.clock != nil {
			c.Boot.Clock = e.clock
		}
	})
	rep, err := client.NewReporter(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	e.rep = rep
	return e
}

// addLabNode starts a simulated node that boots in bootTime and reports
// each boot; it returns once the first boot is reported.
func (e *bootEnv) addLabNode(t *testing.T, name string, fault lab.Fault) *lab.Node {
	t.Helper()
	i := labNext.Add(1)
	mac := fmt.Sprintf("02:41:00:00:%02x:%02x", i>>8, i&0xff)
	ip := fmt.Sprintf("127.41.%d.%d", i>>8, i&0xff)
	reported := make(chan string, 16)
	n := lab.NewNode(lab.NodeConfig{
		Name: name, MAC: mac, Model: "rpi-b", Fault: fault,
		Addr:     net.JoinHostPort(ip, strconv.Itoa(netservice.Port)),
		BootTime: func() time.Duration { return 20 * time.Millisecond },
		OnBoot: func(b lab.Boot) {
			alive := func() bool { return b.Node.State() == lab.Up && b.Node.BootID() == b.BootID }
			rep := api.NodeReport{MAC: mac, IP: ip, Name: name, Model: "rpi-b", BootMode: "network", BootID: b.BootID}
			if err := e.rep.Report(context.Background(), rep, alive); err != nil {
				t.Errorf("report %s: %v", name, err)
			}
			reported <- b.BootID
		},
	})
	e.mu.Lock()
	e.nodes[mac] = n
	e.mu.Unlock()
	t.Cleanup(n.Close)
	n.PowerOn()
	select {
	case <-reported:
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s never reported its first boot", name)
	}
	return n
}

func (e *bootEnv) node(t *testing.T, name string) api.Node {
	t.Helper()
	nl, err := e.Client.Nodes(t.Context(), map[string]string{"name": name})
	if err != nil || nl.NumNodes != 1 {
		t.Fatalf("node %s: %v, %+v", name, err, nl)
	}
	return nl.Nodes[0]
}

func (e *bootEnv) reboot(t *testing.T, set string, hard bool) []api.NodeResult {
	t.Helper()
	res, err := e.Client.Reboot(t.Context(), api.RebootRequest{Set: set, Hard: hard, Requester: "alice"}, nil)
	if err != nil {
		t.Fatalf("reboot %s: %v", set, err)
	}
	return res
}

func (e *bootEnv) logLines(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := e.Client.Logs(t.Context(), 1000, false, func(l api.LogLine) error {
		out = append(out, l.Line)
		return nil
	}); err != nil {
		t.Fatalf("logs: %v", err)
	}
	return out
}

func (e *bootEnv) history(t *testing.T, set string) []api.RebootRecord {
	t.Helper()
	h, err := e.Client.History(t.Context(), set, "alice", 0)
	if err != nil {
		t.Fatalf("history of %s: %v", set, err)
	}
	return h.Reboots
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestRebootCompletesOnNewBootID reboots a simulated node that really goes
// away and comes back: the reboot is complete only once the new boot id
// is reported, and its record gets the boot time.
func TestRebootCompletesOnNewBootID(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, false)
	n := e.addLabNode(t, "boot1", lab.Healthy)
	before := n.BootID()
	if got := e.node(t, "boot1"); !got.Booted || got.Boot.State != api.StateBooted || got.Boot.BootID != before {
		t.Fatalf("after the first report: %+v, want booted with boot id %s", got.Boot, before)
	}
	res := e.reboot(t, "boot1", false)
	if len(res) != 1 || !res[0].OK || res[0].Method != api.MethodSoft {
		t.Fatalf("reboot = %+v, want soft-reboot OK", res)
	}
	testutil.Eventually(t, time.Minute, "the reboot's boot time", func() bool {
		h := e.history(t, "boot1")
		return len(h) == 1 && h[0].Booted != nil
	})
	after := n.BootID()
	if after == before {
		t.Fatalf("simulated node kept boot id %s across a reboot", before)
	}
	h := e.history(t, "boot1")[0]
	if h.BootID != after || h.Requester != "alice" || h.Cause != api.CauseRebootRequested || h.Method != api.MethodSoft ||
		h.Ack == nil || h.BootDuration == nil || *h.BootDuration <= 0 || h.Booted.Before(h.Requested) || len(h.Attempts) != 1 {
		t.Errorf("history row %+v: want requester alice, cause, soft-reboot, ack, boot id %s, positive boot duration", h, after)
	}
	testutil.Eventually(t, time.Minute, "node booted again", func() bool { return e.node(t, "boot1").Booted })
	if got := e.node(t, "boot1").Boot; got.BootID != after || got.LastRebootMethod != api.MethodSoft {
		t.Errorf("boot status %+v, want boot id %s and last method soft-reboot", got, after)
	}
	lines := e.logLines(t)
	for _, want := range []string{"node boot1 is booted", "node boot1 is down (cause: reboot requested, method: soft-reboot)"} {
		if !contains(lines, want) {
			t.Errorf("platform log %q lacks %q", lines, want)
		}
	}
	if nl, _ := e.Client.Nodes(t.Context(), map[string]string{"booted": "true", "name": "boot1"}); nl.NumNodes != 1 {
		t.Errorf("?booted=true does not list boot1 once it is back")
	}
}

// TestOKWithoutNewBootDoesNotCount: an agent acknowledges REBOOT but stays
// up in the same boot; its reboot never completes.
func TestOKWithoutNewBootDoesNotCount(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, false)
	ag := e.AddNode(t, "liar", reboottest.OK) // reports without a boot id: legacy
	host, _, _ := net.SplitHostPort(ag.Addr)
	ip := net.ParseIP(host).To4()
	mac := fmt.Sprintf("52:54:00:%02x:%02x:%02x", ip[1], ip[2], ip[3])
	rep := api.NodeReport{MAC: mac, IP: host, Name: "liar", Model: "rpi-b", BootMode: "network", BootID: "boot-a"}
	if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	if res := e.reboot(t, "liar", false); !res[0].OK {
		t.Fatalf("reboot = %+v, want OK", res)
	}
	// The agent is still alive, in the same boot.
	if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	reply, err := e.Client.Heartbeats(t.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: mac, BootID: "boot-a"}}})
	if err != nil || len(reply.Report) != 0 {
		t.Fatalf("heartbeat = %+v, %v, want accepted", reply, err)
	}
	got := e.node(t, "liar")
	if got.Booted || got.Boot.State != api.StateBooting || got.Boot.Cause != api.CauseRebootRequested {
		t.Errorf("after OK and the same boot id: %+v, want booting (reboot requested)", got.Boot)
	}
	if h := e.history(t, "liar"); len(h) != 1 || h[0].Booted != nil {
		t.Errorf("history %+v, want one reboot without boot time", h)
	}
	if nl, _ := e.Client.Nodes(t.Context(), map[string]string{"booted": "false", "name": "liar"}); nl.NumNodes != 1 {
		t.Errorf("?booted=false does not list the node still in its old boot")
	}
	// The new boot completes it.
	e.newBootCompletes(t, rep, "boot-b")
}

// newBootCompletes reports the node of rep in a new boot, bootID, and
// waits until that boot completes the node's one reboot record.
func (e *bootEnv) newBootCompletes(t *testing.T, rep api.NodeReport, bootID string) {
	t.Helper()
	rep.BootID = bootID
	if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "boot time recorded", func() bool {
		h := e.history(t, rep.Name)
		return h[0].Booted != nil && h[0].BootID == bootID
	})
}

// TestLateReportOfAnEarlierBoot: a report of one of the node's earlier
// boots (retried over a server's restart, sent before the node rebooted)
// is refused as a conflict naming it, and does not complete the node's
// pending reboot; the node's real new boot does.
func TestLateReportOfAnEarlierBoot(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, false)
	ag := e.AddNode(t, "late", reboottest.OK)
	host, _, _ := net.SplitHostPort(ag.Addr)
	ip := net.ParseIP(host).To4()
	mac := fmt.Sprintf("52:54:00:%02x:%02x:%02x", ip[1], ip[2], ip[3])
	rep := api.NodeReport{MAC: mac, IP: host, Name: "late", Model: "rpi-b", BootMode: "network"}
	for _, id := range []string{"boot-a", "boot-b"} {
		rep.BootID = id
		if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
			t.Fatal(err)
		}
	}
	if res := e.reboot(t, "late", false); !res[0].OK {
		t.Fatalf("reboot = %+v, want OK", res)
	}
	rep.BootID = "boot-a"
	_, err := e.Client.ReportNode(t.Context(), rep)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(ae.Message, "boot-a") || !strings.Contains(ae.Message, "boot-b") {
		t.Fatalf("late report of boot-a = %v, want a conflict naming boot-a and the current boot-b", err)
	}
	if got := e.node(t, "late"); got.Booted || got.Boot.State != api.StateBooting || got.Boot.BootID != "boot-b" {
		t.Errorf("after the late report: %+v, want booting from boot-b", got.Boot)
	}
	if h := e.history(t, "late"); len(h) != 1 || h[0].Booted != nil {
		t.Errorf("history %+v, want one reboot without boot time", h)
	}
	e.newBootCompletes(t, rep, "boot-c")
}

// TestSilentNodeGoesDown uses the fake clock: heartbeats keep a node
// booted, silence takes it down, a heartbeat in the same boot brings it
// back, an unknown boot id asks for a report.
func TestSilentNodeGoesDown(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, true)
	n := e.addLabNode(t, "quiet1", lab.Healthy)
	beat := api.Heartbeats{Beats: []api.Heartbeat{{MAC: n.MAC(), BootID: n.BootID()}}}
	for range 3 {
		e.clock.Advance(20 * time.Second)
		reply, err := e.Client.Heartbeats(t.Context(), beat)
		if err != nil || len(reply.Report) != 0 || time.Duration(reply.Interval) != api.DefaultHeartbeatInterval {
			t.Fatalf("heartbeat = %+v, %v", reply, err)
		}
	}
	if !e.node(t, "quiet1").Booted {
		t.Fatal("a node beating every 20s went down")
	}
	n.PowerOff() // the agent goes away
	e.clock.Advance(26 * time.Second)
	got := e.node(t, "quiet1")
	if got.Booted || got.Boot.State != api.StateDown || got.Boot.Cause != api.CauseUnknown {
		t.Fatalf("after 26s of silence: %+v, want down, cause unknown", got.Boot)
	}
	if lines := e.logLines(t); !contains(lines, "node quiet1 is down (cause: unknown, note: no heartbeat for 25s)") {
		t.Errorf("platform log %q lacks the silence line", lines)
	}
	if reply, err := e.Client.Heartbeats(t.Context(), beat); err != nil || len(reply.Report) != 0 {
		t.Fatalf("heartbeat = %+v, %v", reply, err)
	}
	if !e.node(t, "quiet1").Booted {
		t.Error("a heartbeat in the known boot did not bring the silent node back")
	}
	reply, err := e.Client.Heartbeats(t.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: n.MAC(), BootID: "other"}, {MAC: "02:41:ff:ff:ff:ff", BootID: "x"}}})
	if err != nil || len(reply.Report) != 2 {
		t.Errorf("heartbeats in an unknown boot and from an unknown node = %+v, %v; want both asked to report", reply, err)
	}
	if _, err := e.Client.Heartbeats(t.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: "garbage"}}}); err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("heartbeat with MAC garbage = %v, want an error naming it", err)
	}
}

// TestWatchdogRetries: a node that never boots again is hard-rebooted
// boot.retries times, boot.timeout apart, then left alone.
func TestWatchdogRetries(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, true)
	e.addLabNode(t, "stuck1", lab.NeverBoots)
	if _, err := e.Client.SetConfig(t.Context(), api.ConfigRequest{Set: "stuck1", Settings: []string{"boot.timeout=60", "boot.retries=2"}, Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	if res := e.reboot(t, "stuck1", false); !res[0].OK {
		t.Fatalf("reboot = %+v", res)
	}
	e.clock.Advance(59 * time.Second)
	if lines := e.logLines(t); contains(lines, "stuck1: boot timeout reached, trying hard-reboot (1 retries left).") {
		t.Fatal("watchdog fired before boot.timeout")
	}
	for i, want := range []string{"(1 retries left)", "(last try)"} {
		e.clock.Advance(61 * time.Second)
		if lines := e.logLines(t); !contains(lines, "stuck1: boot timeout reached, trying hard-reboot "+want+".") {
			t.Fatalf("retry %d: platform log %q lacks the watchdog line %s", i+1, lines, want)
		}
		testutil.Eventually(t, time.Minute, "the watchdog's reboot recorded", func() bool { return len(e.history(t, "stuck1")) == i+2 })
		testutil.Eventually(t, time.Minute, "the node down again", func() bool { return e.node(t, "stuck1").Boot.Cause == api.CauseBootupTimeout })
	}
	e.clock.Advance(10 * time.Minute)
	e.mu.Lock()
	cycles := e.cycles["stuck1"]
	e.mu.Unlock()
	if h := e.history(t, "stuck1"); cycles != 2 || len(h) != 3 {
		t.Fatalf("after 10 more minutes: %d power cycles, %d history rows; want 2 and 3 (retries exhausted)", cycles, len(h))
	}
	for _, h := range e.history(t, "stuck1")[:2] {
		if h.Requester != api.WatchdogRequester || h.Cause != api.CauseBootupTimeout || h.Method != api.MethodPoE || !h.OK || h.Booted != nil {
			t.Errorf("watchdog row %+v: want requester walt, cause bootup timeout, PoE-reboot OK, no boot", h)
		}
	}
	got := e.node(t, "stuck1").Boot
	if got.State != api.StateBooting || got.Method != api.MethodPoE {
		t.Errorf("status %+v, want booting after PoE-reboot", got)
	}
}

// TestWatchdogDisabled: boot.timeout=none leaves a stuck node alone.
func TestWatchdogDisabled(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, true)
	e.addLabNode(t, "stuck2", lab.NeverBoots)
	if _, err := e.Client.SetConfig(t.Context(), api.ConfigRequest{Set: "stuck2", Settings: []string{"boot.timeout=none"}, Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	e.reboot(t, "stuck2", false)
	e.clock.Advance(time.Hour)
	if h := e.history(t, "stuck2"); len(h) != 1 {
		t.Errorf("boot.timeout=none: %d reboots recorded, want only the user's", len(h))
	}
}

// TestWait: done at once for booted nodes, timeout naming the others,
// and booted events as a rebooted node comes back.
func TestWait(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, false)
	e.addLabNode(t, "w1", lab.Healthy)
	e.addLabNode(t, "w2", lab.NeverBoots)
	ev, err := e.Client.Wait(t.Context(), api.WaitRequest{Set: "w1,w2", Requester: "alice"}, nil)
	if err != nil || ev.Type != api.WaitDone {
		t.Fatalf("wait on booted nodes = %+v, %v; want done", ev, err)
	}
	e.reboot(t, "w1,w2", false)
	var booted []string
	ev, err = e.Client.Wait(t.Context(), api.WaitRequest{Set: "w1,w2", Requester: "alice", Timeout: api.Duration(3 * time.Second)}, func(ev api.WaitEvent) {
		if ev.Type == api.WaitBooted {
			booted = append(booted, ev.Node)
		}
	})
	if err != nil || ev.Type != api.WaitTimeout || len(ev.Nodes) != 1 || ev.Nodes[0] != "w2" {
		t.Fatalf("wait = %+v, %v; want a timeout naming w2", ev, err)
	}
	if len(booted) > 1 || len(booted) == 1 && booted[0] != "w1" {
		t.Errorf("booted events for %v, want at most w1", booted)
	}
	if !e.node(t, "w1").Booted {
		t.Error("w1 not booted after the wait")
	}
	if _, err := e.Client.Wait(t.Context(), api.WaitRequest{Set: "nope", Requester: "alice"}, nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("wait on an unknown node = %v, want an error naming it", err)
	}
	// The powersave hook is called for the nodes not booted.
	var woken []string
	e.Server.SetWakeFunc(func(ctx context.Context, nodes []store.Device) ([]string, error) {
		for _, n := range nodes {
			woken = append(woken, n.Name)
		}
		return woken, nil
	})
	var sawWoken bool
	e.Client.Wait(t.Context(), api.WaitRequest{Set: "w1,w2", Requester: "alice", Timeout: api.Duration(100 * time.Millisecond)}, func(ev api.WaitEvent) {
		sawWoken = sawWoken || ev.Type == api.WaitWoken && len(ev.Nodes) == 1 && ev.Nodes[0] == "w2"
	})
	if !sawWoken || len(woken) != 1 || woken[0] != "w2" {
		t.Errorf("wake hook called with %v (woken event %t), want w2", woken, sawWoken)
	}
}

// TestPowersaveDownIsLeftAlone: a node powersave took down is down with
// cause powersave, and the boot watchdog does not reboot it.
func TestPowersaveDownIsLeftAlone(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, true)
	n := e.addLabNode(t, "saved1", lab.Healthy)
	n.PowerOff()
	e.Server.MarkDown(n.MAC(), api.CausePowersave, "PoE")
	e.clock.Advance(time.Hour)
	got := e.node(t, "saved1").Boot
	if got.State != api.StateDown || got.Cause != api.CausePowersave {
		t.Errorf("status %+v, want down (powersave)", got)
	}
	if h := e.history(t, "saved1"); len(h) != 0 {
		t.Errorf("history %+v: the watchdog rebooted a node in powersave", h)
	}
	if lines := e.logLines(t); !contains(lines, "node saved1 is down (cause: powersave, method: PoE)") {
		t.Errorf("platform log %q lacks the powersave line", lines)
	}
}

// A failed reboot is a boot's cause only if it may have reached the node
// (the request went out and no reply came: the node may reboot anyway),
// and only within the node's boot wait (boot.timeout × (boot.retries +
// 1), 24 h with the watchdog off). A boot it did not cause gets cause
// unknown, and its record no boot time.
func TestFailedRebootBootContext(t *testing.T) {
	t.Parallel()
	e := newBootEnv(t, true)
	reps := map[string]api.NodeReport{}
	for _, n := range []struct {
		name     string
		b        reboottest.Behaviour
		settings []string
	}{
		{"refused", reboottest.Refused, nil},                                          // nothing reached it
		{"late", reboottest.BlackHole, []string{"boot.timeout=60", "boot.retries=0"}}, // waited for 60 s
		{"soon", reboottest.BlackHole, []string{"boot.timeout=none"}},                 // waited for 24 h
	} {
		ag := e.AddNode(t, n.name, n.b)
		host, _, _ := net.SplitHostPort(ag.Addr)
		ip := net.ParseIP(host).To4()
		rep := api.NodeReport{MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", ip[1], ip[2], ip[3]), IP: host, Name: n.name, Model: "rpi-b", BootID: "boot-1"}
		if _, err := e.Client.ReportNode(t.Context(), rep); err != nil {
			t.Fatal(err)
		}
		reps[n.name] = rep
		if _, err := e.Client.SetConfig(t.Context(), api.ConfigRequest{Set: n.name, Settings: append(n.settings, "power.method=none"), Requester: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range e.reboot(t, "refused,late,soon", false) {
		if r.OK {
			t.Fatalf("reboot of %s = %+v, want failed", r.Node, r)
		}
	}
	report := func(name string) *api.BootContext {
		t.Helper()
		rep := reps[name]
		rep.BootID = "boot-2"
		n, err := e.Client.ReportNode(t.Context(), rep)
		if err != nil || n.BootContext == nil {
			t.Fatalf("report of %s: %+v, %v", name, n, err)
		}
		return n.BootContext
	}
	if bc := report("refused"); bc.Cause != api.BootCauseUnknown || bc.RebootID != "" {
		t.Errorf("refused: boot context %+v, want cause unknown: the reboot reached nothing", bc)
	}
	e.clock.Advance(61 * time.Second)
	if bc := report("late"); bc.Cause != api.BootCauseUnknown || bc.RebootID != "" {
		t.Errorf("late: boot context %+v, want cause unknown: the boot came after the node's boot wait", bc)
	}
	if bc := report("soon"); bc.Cause != api.BootCauseUser || bc.Requester != "alice" || bc.RebootID == "" {
		t.Errorf("soon: boot context %+v, want alice's reboot: it may have reached the node, and the boot is within its wait", bc)
	}
	// Boot times are written in the order of the boots: once soon's is
	// there, the others would be too.
	testutil.Eventually(t, time.Minute, "soon's boot time", func() bool {
		h := e.history(t, "soon")
		return len(h) == 1 && h[0].Booted != nil
	})
	for _, name := range []string{"refused", "late"} {
		if h := e.history(t, name); len(h) != 1 || h[0].Booted != nil || h[0].BootID != "" {
			t.Errorf("%s: history %+v, want one failed reboot without boot", name, h)
		}
	}
}
