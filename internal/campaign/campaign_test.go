package campaign_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// Loopback blocks of this package's labs (127.<octet>.x.y): one per test,
// none shared with another package's.
const (
	octetRounds = 150 + iota
	octetFree
	octetStop
	octetResume
	octetFlaky
	octetDone
	octetForgotten
	octetTaken
)

// rig is a server with a simulated lab whose nodes report their boots to
// it, as walt-lab's do.
type rig struct {
	env *servertest.Env
	lab *lab.Lab
}

func newRig(t *testing.T, octet, nodes int, faults map[string]lab.Fault) *rig {
	t.Helper()
	r := &rig{env: servertest.New(t, nil, patientAgents)}
	r.lab = r.env.StartLab(t, lab.Config{Nodes: nodes, Octet: octet, Faults: faults})
	return r
}

// patientAgents gives agents 5 s to answer REBOOT: on a loaded machine a
// healthy agent may take more than servertest's 300 ms, and a campaign's
// exact counts must not depend on it.
func patientAgents(c *server.Config) { c.Reboot.ReplyTimeout = 5 * time.Second }

// follow reads the campaign's events until its end, and returns them.
func follow(t *testing.T, c *client.Client, id string) []api.CampaignEvent {
	t.Helper()
	var evs []api.CampaignEvent
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := c.FollowCampaign(ctx, id, true, func(ev api.CampaignEvent) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		// What the campaign was waiting for, for the next run's reader.
		for _, ev := range evs[max(0, len(evs)-10):] {
			t.Logf("event: %+v", ev)
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		if boots, berr := c.CampaignBoots(rctx, id); berr == nil {
			for _, b := range boots {
				t.Logf("row: %+v", b)
			}
		}
		t.Fatalf("follow campaign %s: %v", id, err)
	}
	return evs
}

// rowsByNode groups a campaign's rows by node name.
func rowsByNode(boots []api.CampaignBoot) map[string][]api.CampaignBoot {
	out := map[string][]api.CampaignBoot{}
	for _, b := range boots {
		out[b.Node] = append(out[b.Node], b)
	}
	return out
}

// A campaign in rounds reboots every healthy node once per round, each
// boot proven by a new boot id; a node that never comes back and one that
// cannot be rebooted leave after two failed rounds, quarantined, and the
// others go on.
func TestRoundsCampaign(t *testing.T) {
	t.Parallel()
	faults := map[string]lab.Fault{"node03": lab.NeverBoots, "node07": lab.Refused}
	r := newRig(t, octetRounds, 10, faults)
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Force: true, Name: "warm",
		Repeat: 4, BootTimeout: api.Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if camp.ID != "1" || camp.State != api.CampaignRunning || len(camp.Nodes) != 10 || camp.Mode != api.CampaignRounds || camp.Quarantine != api.DefaultQuarantine {
		t.Fatalf("started campaign = %+v, want campaign 1, running, 10 nodes, rounds, quarantine after 2", camp)
	}
	evs := follow(t, c, camp.ID)
	// The stream starts with the campaign's state (its round then),
	// then says each new round.
	if evs[0].Type != api.CampaignEventState || evs[0].Campaign == nil || evs[len(evs)-1].Type != api.CampaignEventEnd {
		t.Fatalf("events: first %+v, last %+v; want the state first, the end last", evs[0], evs[len(evs)-1])
	}
	rounds := evs[0].Campaign.Round
	for _, ev := range evs {
		if ev.Type == api.CampaignEventRound {
			rounds++
			if ev.Round != rounds {
				t.Errorf("round event says round %d, want %d", ev.Round, rounds)
			}
		}
	}
	if rounds != 4 {
		t.Errorf("the events went up to round %d, want 4", rounds)
	}

	got, err := c.Campaign(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.CampaignDone || got.Round != 4 || got.Finished == nil {
		t.Errorf("campaign at its end = state %s round %d finished %v, want done, round 4, a finish time", got.State, got.Round, got.Finished)
	}
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := rowsByNode(boots)
	for _, n := range got.Nodes {
		rows := byNode[n.Node]
		if _, faulty := faults[n.Node]; faulty {
			if n.State != api.NodeQuarantined || n.Failed != 2 || n.Booted != 0 || len(rows) != 2 || n.Reason == "" {
				t.Errorf("%s: state %s, %d failed, %d booted, %d rows, reason %q; want quarantined after 2 failed rows", n.Node, n.State, n.Failed, n.Booted, len(rows), n.Reason)
			}
			for _, b := range rows {
				if b.Outcome != api.BootFailed || b.Error == "" {
					t.Errorf("%s iteration %d: outcome %s error %q, want failed with a reason", n.Node, b.Iteration, b.Outcome, b.Error)
				}
			}
			continue
		}
		if n.State != api.NodeFinished || n.Booted != 4 || n.Failed != 0 || len(rows) != 4 {
			t.Errorf("%s: state %s, %d booted, %d failed, %d rows; want finished with 4 good boots", n.Node, n.State, n.Booted, n.Failed, len(rows))
		}
		prev := ""
		for i, b := range rows {
			if b.Iteration != i+1 || b.Outcome != api.BootCompleted || b.Method != "soft-reboot" || b.BootID == "" || b.RebootID == "" ||
				b.Booted == nil || b.BootDuration == nil || !b.Booted.After(b.Requested) || b.BootID == prev {
				t.Errorf("%s row %d = %+v, want iteration %d completed by soft-reboot with a new boot id after the request", n.Node, i, b, i+1)
			}
			prev = b.BootID
		}
		// One reboot per round: the first boot, then one per round.
		if ln := r.lab.Node(n.Node); ln.Boots() != 5 {
			t.Errorf("%s booted %d times, want 5 (power on + 4 rounds)", n.Node, ln.Boots())
		}
	}
	qs, err := r.env.Store.Quarantines(t.Context())
	if err != nil || len(qs) != 2 {
		t.Errorf("quarantines = %+v, %v, want node03 and node07", qs, err)
	}
	nl, err := c.Nodes(t.Context(), map[string]string{"name": "node03"})
	if err != nil || nl.NumNodes != 1 || nl.Nodes[0].Quarantine == nil || nl.Nodes[0].Quarantine.Campaign != camp.ID {
		t.Errorf("node03 as listed = %+v, %v, want its quarantine by campaign %s", nl.Nodes, err, camp.ID)
	}

	body := metricsText(t, r.env.URL)
	for _, line := range []string{`walt_campaign_iterations_total{outcome="completed"} 32`, `walt_campaign_iterations_total{outcome="failed"} 4`, "walt_campaigns_running 0"} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("GET /metrics lacks %q", line)
		}
	}

	// A later campaign leaves the quarantined nodes out, until cleared.
	next, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "node03,node07,node01", Requester: "alice", Force: true, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Nodes) != 1 || next.Nodes[0].Node != "node01" {
		t.Errorf("campaign over two quarantined nodes and node01 has nodes %+v, want node01 only", next.Nodes)
	}
	follow(t, c, next.ID)
	if _, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "node03", Requester: "alice", Force: true, Repeat: 1}); err == nil {
		t.Error("a campaign over a quarantined node alone started")
	}
	if err := c.ClearQuarantine(t.Context(), "node07", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.ClearQuarantine(t.Context(), "node07", "alice"); err == nil {
		t.Error("clearing a quarantine twice succeeded")
	}
}

// In free mode each node cycles on its own clock: every node gets its
// iterations, and a slow node does not hold the others back.
func TestFreeCampaign(t *testing.T) {
	t.Parallel()
	r := newRig(t, octetFree, 4, map[string]lab.Fault{"node04": lab.SlowBoot})
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "bob", Force: true, Repeat: 3, Mode: api.CampaignFree})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, c, camp.ID)
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := rowsByNode(boots)
	for _, name := range []string{"node01", "node02", "node03", "node04"} {
		if rows := byNode[name]; len(rows) != 3 || rows[2].Outcome != api.BootCompleted {
			t.Errorf("%s: %d rows (%+v), want 3 completed", name, len(rows), rows)
		}
	}
	// The fast nodes finished their third boot before the slow one its
	// second: nobody waited for it.
	fastEnd := byNode["node01"][2].Booted
	slowSecond := byNode["node04"][1].Booted
	if fastEnd == nil || slowSecond == nil || !fastEnd.Before(*slowSecond) {
		t.Errorf("node01's third boot at %v, node04's second at %v: want the fast node not held back", fastEnd, slowSecond)
	}
}

// A stopped campaign reboots nothing more; its nodes say stopped.
func TestStopCampaign(t *testing.T) {
	t.Parallel()
	r := newRig(t, octetStop, 3, nil)
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "carol", Force: true, Repeat: 1000,
		Hold: api.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopCampaign(t.Context(), camp.ID, api.CampaignStopRequest{Requester: "dave"}); err == nil {
		t.Error("dave stopped carol's campaign without --force")
	}
	// Wait until every node has booted in round 1 (and holds).
	testutil.EventuallyNil(t, 20*time.Second, "round 1 booted", func() error {
		got, err := c.Campaign(t.Context(), camp.ID)
		if err != nil {
			return err
		}
		for _, n := range got.Nodes {
			if n.Phase != api.BootCompleted {
				return fmt.Errorf("%s is %s", n.Node, n.Phase)
			}
		}
		return nil
	})
	got, err := c.StopCampaign(t.Context(), camp.ID, api.CampaignStopRequest{Requester: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.CampaignStopped || got.Round != 1 {
		t.Errorf("stopped campaign: state %s round %d, want stopped in round 1", got.State, got.Round)
	}
	for _, n := range got.Nodes {
		if n.State != api.NodeStopped {
			t.Errorf("%s: state %s, want stopped", n.Node, n.State)
		}
		if b := r.lab.Node(n.Node).Boots(); b != 2 {
			t.Errorf("%s booted %d times, want 2: power on and round 1", n.Node, b)
		}
	}
	if _, err := c.StopCampaign(t.Context(), camp.ID, api.CampaignStopRequest{Requester: "carol"}); err == nil {
		t.Error("a stopped campaign was stopped again")
	}
}

// Bad requests change nothing and name their culprit.
func TestCampaignRequestRefused(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, nil, nil)
	if _, err := e.Client.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:09:01", IP: "127.0.0.1", Name: "n1", Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  api.CampaignRequest
		want string
	}{
		{api.CampaignRequest{Set: "n1", Repeat: 0}, "repeat"},
		{api.CampaignRequest{Set: "n1", Repeat: api.MaxCampaignRepeat + 1}, "repeat"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Mode: "chaos"}, "mode"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Quarantine: -1}, "quarantine"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Hold: api.Duration(-time.Second)}, "hold"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, BootTimeout: api.Duration(time.Millisecond)}, "boot_timeout"},
		{api.CampaignRequest{Set: "nope", Repeat: 1}, "nope"},
		{api.CampaignRequest{Set: "n1", Repeat: 1, Name: "bad\x00name"}, "name"},
	} {
		_, err := e.Client.StartCampaign(t.Context(), tc.req)
		if err == nil || !containsFold(err.Error(), tc.want) {
			t.Errorf("StartCampaign(%+v) = %v, want an error naming %q", tc.req, err, tc.want)
		}
	}
	// A campaign is bounded as a whole: nodes × repeat rows.
	for i := range 100 {
		if _, err := e.Client.ReportNode(t.Context(), api.NodeReport{MAC: fmt.Sprintf("52:54:00:00:0a:%02x", i), IP: "127.0.0.1", Name: fmt.Sprintf("m%03d", i), Model: "rpi-b"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Client.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Repeat: api.MaxCampaignRepeat, Force: true}); err == nil ||
		!strings.Contains(err.Error(), "101 nodes × 10000 reboots") {
		t.Errorf("StartCampaign(101 nodes × %d) = %v, want refused as too many boots", api.MaxCampaignRepeat, err)
	}
	if cs, err := e.Store.Campaigns(t.Context(), store.CampaignFilter{}); err != nil || len(cs) != 0 {
		t.Errorf("campaigns after refused requests = %+v, %v, want none", cs, err)
	}
	if _, err := e.Client.Campaign(t.Context(), "99"); err == nil {
		t.Error("campaign 99 shown")
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// newPoERig is newRig with the lab's switches known to the server, PoE
// reboots allowed (poe.delay 200 ms) and each node linked to its port.
func newPoERig(t *testing.T, octet, nodes int, faults map[string]lab.Fault) *rig {
	t.Helper()
	return newPoERigWith(t, lab.Config{Nodes: nodes, Octet: octet, Faults: faults}, nil)
}

// newPoERigWith is newPoERig on the lab cfg, with a simulated experiment
// on every node if exp is not nil.
func newPoERigWith(t *testing.T, cfg lab.Config, exp *lab.Experiment) *rig {
	t.Helper()
	withPoE := servertest.WithPoE(t)
	r := &rig{env: servertest.New(t, nil, func(c *server.Config) { patientAgents(c); withPoE(c) })}
	r.lab = r.env.StartLabWith(t, cfg, exp)
	c := r.env.Client
	for _, sw := range r.lab.Switches {
		_, port, _ := net.SplitHostPort(sw.Addr())
		if _, err := c.AddDevice(t.Context(), api.AddDevice{Name: sw.Name(), IP: sw.IP, MAC: sw.MAC, Type: "switch"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetConfig(t.Context(), api.ConfigRequest{Set: sw.Name(), Settings: []string{"snmp.version=2", "snmp.community=private",
			"snmp.port=" + port, "lldp.explore=true", "poe.reboots=true", "poe.delay=200ms"}}); err != nil {
			t.Fatal(err)
		}
		for i, n := range sw.Nodes {
			if err := c.SetLink(t.Context(), api.Link{Node: n.Name(), Switch: sw.Name(), Port: i + 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

// 10 rounds on 30 nodes, one flaky (every third boot it starts never
// comes back, until a power cycle) and one that never boots again: exact
// counts per node, the dead node quarantined after two rounds, the flaky
// one never (each failure is followed by a good boot, through PoE); and
// the statistics are those of the stored rows, computed apart.
func TestCampaignFlakyAndDead(t *testing.T) {
	t.Parallel()
	const flaky, dead = "node05", "node17"
	r := newPoERig(t, octetFlaky, 30, map[string]lab.Fault{flaky: lab.Flaky(3), dead: lab.NeverBoots})
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Force: true, Repeat: 10,
		BootTimeout: api.Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, c, camp.ID)
	rows, err := r.env.Store.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string][]store.CampaignBoot{}
	for _, b := range rows {
		byNode[b.Name] = append(byNode[b.Name], b)
	}
	outcomes := func(name string) string {
		var s []string
		for _, b := range byNode[name] {
			o := b.Outcome
			if b.Fallback {
				o += "+fallback"
			}
			s = append(s, o)
		}
		return strings.Join(s, " ")
	}
	// The flaky node: its power-on boot and round 1 are boots 1 and 2 it
	// starts, round 2 the third (dark), round 3 a soft reboot that fails
	// and a power cycle that revives it (not counted), and so on.
	want := map[string]string{
		flaky: "completed failed completed+fallback completed completed failed completed+fallback completed completed failed",
		dead:  "failed failed+fallback", // round 2: the soft reboot fails, the power cycle does not help
	}
	for _, n := range r.lab.Nodes {
		w, special := want[n.Name()]
		if !special {
			w = strings.TrimSpace(strings.Repeat("completed ", 10))
		}
		if got := outcomes(n.Name()); got != w {
			t.Errorf("%s: outcomes %q, want %q", n.Name(), got, w)
		}
	}
	got, err := c.Campaign(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range got.Nodes {
		wantState := api.NodeFinished
		if n.Node == dead {
			wantState = api.NodeQuarantined
		}
		if n.State != wantState {
			t.Errorf("%s: state %s, want %s", n.Node, n.State, wantState)
		}
	}

	// The statistics, against the rows computed here: per node, boots
	// attempted, completed, failed, fallbacks, and the median boot time.
	st, err := c.CampaignStats(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 30 {
		t.Fatalf("stats of %d nodes, want 30", len(st.Nodes))
	}
	all := 0
	for _, ns := range st.Nodes {
		var attempted, completed, failed, fallbacks int
		var times []float64
		for _, b := range byNode[ns.Node] {
			attempted++
			switch b.Outcome {
			case api.BootCompleted:
				completed++
			case api.BootFailed:
				failed++
			}
			if b.Fallback {
				fallbacks++
			}
			if !b.BootedAt.IsZero() {
				times = append(times, b.BootedAt.Sub(b.RequestedAt).Seconds())
			}
		}
		all += attempted
		if ns.Attempted != attempted || ns.Completed != completed || ns.Failed != failed || ns.Fallbacks != fallbacks {
			t.Errorf("%s stats: %d attempted, %d completed, %d failed, %d fallbacks; the rows say %d, %d, %d, %d",
				ns.Node, ns.Attempted, ns.Completed, ns.Failed, ns.Fallbacks, attempted, completed, failed, fallbacks)
		}
		if len(times) == 0 {
			if ns.BootTime != nil {
				t.Errorf("%s: a boot time summary without a boot: %+v", ns.Node, ns.BootTime)
			}
			continue
		}
		sort.Float64s(times)
		median := times[len(times)/2]
		if len(times)%2 == 0 {
			median = (times[len(times)/2-1] + times[len(times)/2]) / 2
		}
		if ns.BootTime == nil || ns.BootTime.N != len(times) || math.Abs(ns.BootTime.Median-median) > 1e-6 ||
			ns.BootTime.Min != times[0] || ns.BootTime.Max != times[len(times)-1] {
			t.Errorf("%s boot time: %+v; the rows say n=%d min=%g median=%g max=%g", ns.Node, ns.BootTime, len(times), times[0], median, times[len(times)-1])
		}
	}
	if st.All.Attempted != all || all != 28*10+10+2 {
		t.Errorf("whole set: %d attempted, the rows say %d, want %d", st.All.Attempted, all, 28*10+10+2)
	}
}

// With --until-done an iteration ends at the experiment's done report,
// whose status and metrics the rows and the statistics keep; a node whose
// experiment never reports is recorded done-timeout.
func TestCampaignUntilDone(t *testing.T) {
	t.Parallel()
	exp := &lab.Experiment{Delay: 300 * time.Millisecond, Status: 3, Metrics: map[string]float64{"score": 2.5}}
	// node03 dies 100 ms after each boot: the experiment never reports
	// done; its next reboot is a power cycle (its agent is gone).
	r := newPoERigWith(t, lab.Config{Nodes: 3, Octet: octetDone, CrashAfter: 100 * time.Millisecond,
		Faults: map[string]lab.Fault{"node03": lab.CrashLoop}}, exp)
	l, c := r.lab, r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Force: true, Repeat: 2,
		UntilDone: true, DoneTimeout: api.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, c, camp.ID)
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, rows := range rowsByNode(boots) {
		for _, b := range rows {
			switch name {
			case "node03": // crashes before its experiment reports, each time
				if b.Outcome != api.BootDoneTimeout || b.Done != nil || b.Booted == nil {
					t.Errorf("node03 iteration %d: %s, booted %v, done %v; want booted, then done-timeout", b.Iteration, b.Outcome, b.Booted, b.Done)
				}
			default:
				if b.Outcome != api.BootCompleted || b.Status == nil || *b.Status != 3 || b.Metrics["score"] != 2.5 ||
					b.Done == nil || b.Booted == nil || b.Done.Sub(*b.Booted) < exp.Delay {
					t.Errorf("%s iteration %d = %+v, want completed by a done report with status 3 and score 2.5, %s after the boot", name, b.Iteration, b, exp.Delay)
				}
			}
		}
	}
	st, err := c.CampaignStats(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := st.All.Metrics["score"]; !ok || m.N != 4 || m.Median != 2.5 || st.All.Statuses["3"] != 4 {
		t.Errorf("whole set's experiment figures: metrics %+v statuses %+v; want score 2.5 four times, status 3 four times", st.All.Metrics, st.All.Statuses)
	}

	// A done report's answer names the iteration it ended.
	single, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "node01", Requester: "alice", Force: true, Repeat: 1,
		UntilDone: true, DoneTimeout: api.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	n := l.Node("node01")
	var reply api.DoneReply
	testutil.EventuallyNil(t, 20*time.Second, "node01's done report ending campaign "+single.ID, func() error {
		if reply, err = c.ReportDone(t.Context(), api.DoneReport{MAC: n.MAC(), BootID: n.BootID(), Status: 0}); err != nil {
			return err
		}
		if reply.Campaign != single.ID {
			return fmt.Errorf("reply %+v", reply)
		}
		return nil
	})
	if reply.Iteration != 1 {
		t.Errorf("done reply = %+v, want campaign %s iteration 1", reply, single.ID)
	}
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A node forgotten during a campaign fails its own iterations; the others
// go on being rebooted.
func TestCampaignNodeForgotten(t *testing.T) {
	t.Parallel()
	r := newRig(t, octetForgotten, 3, nil)
	c := r.env.Client
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Force: true, Repeat: 4,
		Hold: api.Duration(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	waitRoundCompleted(t, c, camp.ID, 1)
	if err := c.ForgetDevice(t.Context(), "node02", "alice", true); err != nil {
		t.Fatal(err)
	}
	follow(t, c, camp.ID)
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := rowsByNode(boots)
	for _, name := range []string{"node01", "node03"} {
		if rows := byNode[name]; len(rows) != 4 || rows[3].Outcome != api.BootCompleted {
			t.Errorf("%s: %d rows, want 4 completed despite node02's absence", name, len(rows))
		}
	}
	rows := byNode["node02"]
	if len(rows) != 3 || rows[0].Outcome != api.BootCompleted || rows[1].Outcome != api.BootFailed || !strings.Contains(rows[1].Error, "no longer in the inventory") {
		t.Errorf("node02's rows = %+v; want round 1 completed, then failed as forgotten until its quarantine", rows)
	}
}

// waitRoundCompleted waits until every node of the campaign has completed
// its iteration it (during the hold that follows).
func waitRoundCompleted(t *testing.T, c *client.Client, id string, it int) {
	t.Helper()
	testutil.EventuallyNil(t, 20*time.Second, fmt.Sprintf("iteration %d booted", it), func() error {
		got, err := c.Campaign(t.Context(), id)
		if err != nil {
			return err
		}
		for _, n := range got.Nodes {
			if n.Iteration != it || n.Phase != api.BootCompleted {
				return fmt.Errorf("%s is %s in iteration %d", n.Node, n.Phase, n.Iteration)
			}
		}
		return nil
	})
}

// A node another user takes during a campaign is not rebooted any more:
// it leaves the campaign before the next round, its reason naming its
// owner, and the others go on. A campaign started with force keeps the
// right to reboot nodes owned by others.
func TestCampaignNodeTaken(t *testing.T) {
	t.Parallel()
	r := newRig(t, octetTaken, 3, nil)
	alice, bob, carol := r.env.ClientAs(t, "alice"), r.env.ClientAs(t, "bob"), r.env.ClientAs(t, "carol")
	hold := api.Duration(1500 * time.Millisecond) // the time to take node02 between rounds
	camp, err := alice.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Repeat: 3, Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	waitRoundCompleted(t, alice, camp.ID, 1)
	if _, err := bob.Ownership(t.Context(), api.OwnershipRequest{Set: "node02", Action: "acquire", Requester: "bob"}); err != nil {
		t.Fatal(err)
	}
	evs := follow(t, alice, camp.ID)
	var left *api.CampaignNode
	for _, ev := range evs {
		if ev.Type == api.CampaignEventNode && ev.Node.Node == "node02" {
			left = ev.Node
		}
	}
	if left == nil || left.State != api.NodeTaken || !strings.Contains(left.Reason, "bob") {
		t.Errorf("node02's node event = %+v, want state taken, the reason naming bob", left)
	}
	got, err := alice.Campaign(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	boots, err := alice.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	byNode := rowsByNode(boots)
	if got.State != api.CampaignDone {
		t.Errorf("campaign ended %s, want done", got.State)
	}
	for _, n := range got.Nodes {
		rows, boots := byNode[n.Node], r.lab.Node(n.Node).Boots()
		if n.Node == "node02" {
			if n.State != api.NodeTaken || n.Failed != 0 || n.Booted != 1 || len(rows) != 1 || rows[0].Outcome != api.BootCompleted ||
				boots != 2 || !strings.Contains(n.Reason, "owned by bob before round 2") {
				t.Errorf("node02: state %s (%s), %d booted, %d failed, %d rows, %d boots; want taken by bob before round 2 after 1 good row, 2 boots",
					n.State, n.Reason, n.Booted, n.Failed, len(rows), boots)
			}
			continue
		}
		if n.State != api.NodeFinished || n.Booted != 3 || len(rows) != 3 || boots != 4 {
			t.Errorf("%s: state %s, %d booted, %d rows, %d boots; want finished after 3 good rounds, 4 boots", n.Node, n.State, n.Booted, len(rows), boots)
		}
	}
	st, err := alice.CampaignStats(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Nodes {
		if ns.Node == "node02" && (ns.State != api.NodeTaken || ns.Reason == "" || ns.Attempted != 1 || ns.Failed != 0) {
			t.Errorf("node02's stats = %+v, want taken with its reason, 1 attempted, none failed", ns)
		}
	}

	// With force, a campaign reboots bob's node02, and node01 that carol
	// takes meanwhile.
	forced, err := alice.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "alice", Force: true, Repeat: 2, Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	waitRoundCompleted(t, alice, forced.ID, 1)
	if _, err := carol.Ownership(t.Context(), api.OwnershipRequest{Set: "node01", Action: "acquire", Requester: "carol"}); err != nil {
		t.Fatal(err)
	}
	follow(t, alice, forced.ID)
	if got, err = alice.Campaign(t.Context(), forced.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range got.Nodes {
		if n.State != api.NodeFinished || n.Booted != 2 {
			t.Errorf("forced campaign: %s %s (%s), %d booted; want finished after 2 good rounds", n.Node, n.State, n.Reason, n.Booted)
		}
	}

	// In free mode, each node's cycle checks its owner.
	free, err := alice.StartCampaign(t.Context(), api.CampaignRequest{Set: "node03", Requester: "alice", Mode: api.CampaignFree, Repeat: 3, Hold: hold})
	if err != nil {
		t.Fatal(err)
	}
	waitRoundCompleted(t, alice, free.ID, 1)
	if _, err := bob.Ownership(t.Context(), api.OwnershipRequest{Set: "node03", Action: "acquire", Requester: "bob"}); err != nil {
		t.Fatal(err)
	}
	follow(t, alice, free.ID)
	if got, err = alice.Campaign(t.Context(), free.ID); err != nil {
		t.Fatal(err)
	}
	if n := got.Nodes[0]; got.State != api.CampaignDone || n.State != api.NodeTaken || n.Booted != 1 || !strings.Contains(n.Reason, "owned by bob before iteration 2") {
		t.Errorf("free campaign %s: node03 %s (%s), %d booted; want done, node03 taken by bob before iteration 2", got.State, n.State, n.Reason, n.Booted)
	}
}
