package dashboard_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// Loopback blocks of the labs of these tests (127.170 to 127.175).
const (
	octetFaulty   = 170
	octetCampaign = 171
	octetOwners   = 172
	octetQuaran   = 175
)

// startLab starts a server with PoE and a lab of n nodes on its switches.
func startLab(t *testing.T, octet, n int, faults map[string]lab.Fault) (*servertest.Env, *lab.Lab) {
	t.Helper()
	env := servertest.New(t, nil, servertest.WithPoE(t))
	l := env.StartLab(t, lab.Config{Nodes: n, Octet: octet, Faults: faults})
	env.RegisterLabSwitches(t, l)
	return env, l
}

// js quotes s for a JavaScript expression.
func js(s string) string { return fmt.Sprintf("%q", s) }

// The lab's nodes are on their switch ports, booted, with PoE; a user
// logs in, reboots a node whose agent refuses connections, confirms, and
// watches it fall back to PoE and boot again, the method shown; the log
// and the node table follow.
func TestDashboardRebootsAFaultyNode(t *testing.T) {
	t.Parallel()
	const faulty = "node03"
	env, l := startLab(t, octetFaulty, 5, map[string]lab.Fault{faulty: lab.Refused})
	base, rec := serve(t, env.Server.Handler())
	b := newBrowser(t)

	// Nothing but the login before a token; then the topology: every
	// node on its port, booted, the port's PoE on.
	token := env.Token(t, "alice")
	b.run(t, "open the topology", chromedp.Navigate(base+"/#/topology"))
	b.login(t, token)
	want := servertest.LabPositions(l)
	b.waitJS(t, "every node booted on its port, PoE read", fmt.Sprintf(`document.querySelectorAll('section.switch td[data-node] [data-state="booted"]').length === %d &&
		[...document.querySelectorAll('td.poe')].every(td => td.dataset.poe === 'on')`, len(want)))
	got := eval[[]string](t, b, `[...document.querySelectorAll('section.switch')].flatMap(s => [...s.querySelectorAll('tr[data-port]')].flatMap(tr =>
		[...tr.querySelectorAll('td[data-node]')].map(td => td.dataset.node + '=' + s.dataset.switch + ':' + tr.dataset.port + ' ' + tr.querySelector('td.poe').textContent + ' ' + td.querySelector('.st').textContent)))`)
	var wantRows []string
	for name, pos := range want {
		wantRows = append(wantRows, name+"="+pos+" PoE on, delivering ✔ booted")
	}
	slices.Sort(got)
	slices.Sort(wantRows)
	if !slices.Equal(got, wantRows) {
		t.Fatalf("topology shows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	b.screenshot(t, "topology")

	// Open the faulty node's page from its port.
	b.click(t, `td[data-node="`+faulty+`"] a`)
	b.run(t, "open the node's page", chromedp.WaitVisible(chromedp.CSS(`#node-info [data-state="booted"]`)))
	// Every state the page shows, in order.
	eval[bool](t, b, `window.seen = []; new MutationObserver(() => { const s = document.querySelector('#node-info .st');
		if (s && window.seen.at(-1) !== s.textContent) window.seen.push(s.textContent); }).observe(document.getElementById('main'), {subtree: true, childList: true}); true`)
	eval[bool](t, b, `window.lastBoot = () => document.getElementById('node-info').dataset.since; true`)
	before := eval[string](t, b, `lastBoot()`)
	b.run(t, "reboot, confirmed",
		chromedp.Click(chromedp.CSS("#reboot")),
		chromedp.WaitVisible(chromedp.CSS("#reboot-confirm")),
		chromedp.Click(chromedp.CSS("#reboot-confirm")))
	b.waitJS(t, "the outcome", `(document.querySelector('.outcomes li[data-node="`+faulty+`"]') || {}).textContent === '✔ `+faulty+` rebooted by `+api.MethodPoE+`'`)
	// The node may show booting in between (if the reboot's outcome
	// comes before the new boot), or go from booted to booted again.
	b.waitJS(t, "the node booted again after its PoE reboot", `window.seen.at(-1) === '✔ booted' && lastBoot() !== `+js(before)+` &&
		[...document.querySelectorAll('#node-info tr')].some(tr => tr.textContent === 'Last reboot method`+api.MethodPoE+`')`)
	b.waitJS(t, "the history's PoE reboot with its boot time", `(() => { const r = document.querySelector('#history tbody tr');
		return r && r.dataset.method === '`+api.MethodPoE+`' && /✖ soft-reboot: .* → ✔ PoE-reboot/.test(r.children[4].textContent) && /^[0-9.]+ s$/.test(r.children[5].textContent); })()`)
	b.waitJS(t, "the boot context and the port's PoE", `(() => { const rows = [...document.querySelectorAll('#node-info tr')].map(tr => tr.textContent);
		return rows.includes('Boot contextreboot requested by `+api.MethodPoE+`') && rows.includes('Switch portswitch1 port 3, PoE on, delivering'); })()`)
	if n := eval[int](t, b, `document.querySelectorAll('svg.plot rect.pt-square').length`); n != 1 {
		t.Errorf("the boot-time plot has %d fallback points, want 1", n)
	}
	if got := eval[string](t, b, `document.querySelector('.reboot-out p').textContent`); got != "Done: 1 rebooted, 0 failed." {
		t.Errorf("the reboot's summary: %q", got)
	}
	seen := eval[[]string](t, b, `window.seen`)
	t.Logf("states shown: %q", seen)
	if auth := rec.auth(api.Prefix + "/reboots"); !slices.Equal(auth, []string{"Bearer " + token}) {
		t.Errorf("the reboot's Authorization headers: %d, want the token as a bearer token", len(auth)) // never print a token
	}
	// The event stream opens at the login, with the token.
	if auth := rec.auth(api.Prefix + "/events"); !slices.Equal(auth, []string{"Bearer " + token}) {
		t.Errorf("the event streams' Authorization headers are not the token (%d streams)", len(auth))
	}
	b.screenshot(t, "rebooted")

	// The platform log tells the node's boot, and new lines live.
	b.run(t, "open the log", chromedp.Click(chromedp.CSS(`a[href="#/log"]`)))
	b.waitJS(t, "the node's boot in the log", `[...document.querySelectorAll('#log li')].some(li => li.textContent.endsWith('node `+faulty+` is booted'))`)
	if _, err := env.Client.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:aa:bb:01", IP: "127.170.9.1", Name: "extra1", Model: "rpi-b"}); err != nil {
		t.Fatal(err)
	}
	b.waitJS(t, "a new line, live", `(document.querySelector('#log li:last-child') || {}).textContent?.endsWith('node extra1 is booted')`)

	// The node table: all nodes, then those of a set the server resolves.
	b.run(t, "open the node table", chromedp.Click(chromedp.CSS(`a[href="#/nodes"]`)))
	b.waitJS(t, "6 nodes", `document.getElementById('node-count').textContent === '6 of 6 nodes'`)
	b.run(t, "search a set", chromedp.SendKeys(chromedp.CSS("#node-set"), "node[01-02],extra1\r"))
	b.waitJS(t, "3 nodes", `document.getElementById('node-count').textContent === '3 of 6 nodes'`)
	names := eval[[]string](t, b, `[...document.querySelectorAll('#node-table .vt-row')].map(r => r.dataset.node)`)
	if !slices.Equal(names, []string{"extra1", "node01", "node02"}) {
		t.Errorf("the set's rows: %q", names)
	}
	b.screenshot(t, "nodes")
}

// A logged-in user starts a campaign from its page and follows it live
// to its end, with its statistics and plot; then starts another and
// stops it.
func TestDashboardRunsAndStopsCampaigns(t *testing.T) {
	t.Parallel()
	env, _ := startLab(t, octetCampaign, 3, nil)
	base, _ := serve(t, env.Server.Handler())
	b := newBrowser(t)
	b.run(t, "open the campaigns", chromedp.Navigate(base+"/#/campaigns"))
	b.login(t, env.Token(t, "bob"))
	b.run(t, "the campaign form", chromedp.WaitVisible(chromedp.CSS("#camp-set")))
	b.run(t, "start a campaign",
		chromedp.SendKeys(chromedp.CSS("#camp-set"), "all-nodes"),
		chromedp.SendKeys(chromedp.CSS("#camp-name"), "two-rounds"),
		chromedp.SetValue(chromedp.CSS("#camp-repeat"), "2"),
		chromedp.Click(chromedp.CSS(`.campaign-form button[type="submit"]`)))
	b.waitJS(t, "the campaign's end", `document.getElementById('campaign-state').dataset.state === 'done'`)
	b.waitJS(t, "its progress, statistics and plot", `document.getElementById('campaign-progress').textContent.includes('6 of 6 iterations: 6 booted, 0 failed') &&
		[...document.querySelectorAll('#campaign-stats tr')].some(tr => tr.textContent === 'Completed6') &&
		document.querySelectorAll('svg.plot circle.pt').length === 6`)
	if got := eval[[]string](t, b, `[...document.querySelectorAll('#campaign-nodes tbody tr')].map(tr => tr.dataset.node + ' ' + tr.children[1].textContent + ' ' + tr.children[3].textContent)`); !slices.Equal(got,
		[]string{"node01 ✔ finished 2 booted, 0 failed", "node02 ✔ finished 2 booted, 0 failed", "node03 ✔ finished 2 booted, 0 failed"}) {
		t.Errorf("campaign nodes: %q", got)
	}
	b.screenshot(t, "campaign-done")

	b.run(t, "start a long campaign",
		chromedp.Click(chromedp.CSS(`a[href="#/campaigns"]`)),
		chromedp.WaitVisible(chromedp.CSS("#camp-set")),
		chromedp.SendKeys(chromedp.CSS("#camp-set"), "node01"),
		chromedp.SetValue(chromedp.CSS("#camp-repeat"), "1000"),
		chromedp.Click(chromedp.CSS(`.campaign-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#campaign-stop")))
	b.click(t, "#campaign-stop") // the head is drawn again at each state
	b.waitJS(t, "the campaign stopped", `document.getElementById('campaign-state').dataset.state === 'stopped'`)
	list, err := env.Client.Campaigns(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, c := range list.Campaigns {
		states = append(states, c.Name+":"+c.Requester+":"+c.State)
	}
	slices.Sort(states)
	if !slices.Equal(states, []string{":bob:stopped", "two-rounds:bob:done"}) {
		t.Errorf("campaigns: %q", states)
	}
	b.screenshot(t, "campaign-stopped")

	// Text from the server is text: a campaign named as HTML shows as
	// written, and adds no element.
	const hostile = `<img src=x id=injected onerror="document.title='pwned'">`
	c, err := env.ClientAs(t, "bob").StartCampaign(t.Context(), api.CampaignRequest{Set: "node02", Name: hostile, Repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.run(t, "open the campaigns", chromedp.Click(chromedp.CSS(`header a[href="#/campaigns"]`)))
	b.waitJS(t, "the hostile name as text", `document.querySelector('tr[data-campaign="`+c.ID+`"] a').textContent === '#`+c.ID+` ' + `+js(hostile))
	if n := eval[int](t, b, `document.querySelectorAll('#injected, img').length`); n != 0 {
		t.Errorf("%d elements injected", n)
	}
}

// A hard reboot of a set with another user's node is refused, naming it;
// done anyway (force) once the user says so, each node's outcome shown.
func TestDashboardHardRebootFollowsOwnership(t *testing.T) {
	t.Parallel()
	env, _ := startLab(t, octetOwners, 3, nil)
	if _, err := env.ClientAs(t, "carol").Ownership(t.Context(), api.OwnershipRequest{Set: "node02", Action: "acquire"}); err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, env.Server.Handler())
	b := newBrowser(t)
	b.run(t, "open the node table", chromedp.Navigate(base+"/#/nodes"))
	b.login(t, env.Token(t, "bob"))
	b.run(t, "the reboot buttons", chromedp.WaitVisible(chromedp.CSS("#hard-reboot")))
	b.waitJS(t, "node02's owner", `document.querySelector('#node-table .vt-row[data-node="node02"] .c-owner').textContent === 'carol'`)
	b.run(t, "hard-reboot a set, confirmed",
		chromedp.SendKeys(chromedp.CSS("#node-set"), "node[01-02]\r"))
	b.waitJS(t, "2 nodes", `document.getElementById('node-count').textContent === '2 of 3 nodes'`)
	b.run(t, "confirm", chromedp.Click(chromedp.CSS("#hard-reboot")), chromedp.WaitVisible(chromedp.CSS("#reboot-confirm")))
	if got := eval[string](t, b, `document.querySelector('.reboot-out .confirm').textContent`); got != "Hard reboot (power cycle) node[01-02]?" {
		t.Errorf("confirmation: %q", got)
	}
	b.run(t, "yes", chromedp.Click(chromedp.CSS("#reboot-confirm")), chromedp.WaitVisible(chromedp.CSS("#reboot-force")))
	if msg := eval[string](t, b, `document.querySelector('.reboot-out .error').textContent`); !strings.Contains(msg, "node02") {
		t.Errorf("refusal %q does not name node02", msg)
	}
	b.screenshot(t, "refused")
	b.run(t, "anyway", chromedp.Click(chromedp.CSS("#reboot-force")))
	b.waitJS(t, "both hard-rebooted", `[...document.querySelectorAll('.outcomes li')].map(li => li.textContent).sort().join('|') ===
		'✔ node01 rebooted by `+api.MethodPoE+`|✔ node02 rebooted by `+api.MethodPoE+`'`)
	b.waitJS(t, "both booted again, by PoE", `['node01', 'node02'].every(n => { const r = document.querySelector('#node-table .vt-row[data-node="' + n + '"]');
		return r.querySelector('[data-state="booted"]') && r.querySelector('.c-method').textContent === '`+api.MethodPoE+`'; })`)
	b.screenshot(t, "hard-rebooted")
}

// A node a campaign quarantined says so, with the campaign and why, in
// the node table and on its port; its neighbour stays booted.
func TestDashboardShowsQuarantine(t *testing.T) {
	t.Parallel()
	env, _ := startLab(t, octetQuaran, 2, map[string]lab.Fault{"node02": lab.NeverBoots})
	c, err := env.ClientAs(t, "dave").StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Repeat: 3, Quarantine: 1,
		BootTimeout: api.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, env.Server.Handler())
	b := newBrowser(t)
	b.run(t, "open the campaign", chromedp.Navigate(base+"/#/campaign/"+c.ID))
	b.login(t, env.Token(t, "dave"))
	b.waitJS(t, "the campaign's end", `document.getElementById('campaign-state').dataset.state === 'done'`)
	b.run(t, "open the node table", chromedp.Click(chromedp.CSS(`header a[href="#/nodes"]`)))
	b.waitJS(t, "node02 quarantined", `document.querySelector('#node-table .vt-row[data-node="node02"] .st').dataset.state === 'quarantined'`)
	states := eval[[]string](t, b, `[...document.querySelectorAll('#node-table .vt-row .st')].map(s => s.textContent)`)
	if len(states) != 2 || states[0] != "✔ booted" || !strings.HasPrefix(states[1], "⚠ quarantined (campaign "+c.ID+": ") {
		t.Errorf("states: %q", states)
	}
	b.run(t, "open the topology", chromedp.Click(chromedp.CSS(`header a[href="#/topology"]`)))
	b.waitJS(t, "node02 quarantined on its port, PoE read", `document.querySelector('tr[data-port="2"] td[data-node="node02"] .st').textContent === `+js(states[1])+` &&
		document.querySelectorAll('td.poe[data-poe="on"]').length === 2`)
	b.screenshot(t, "quarantine")
}
