package dashboard_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/server/servertest/vnodetest"
)

// A virtual node's page follows its console, live: a hard reboot from the
// page shows there as its machine killed and started again.
func TestDashboardFollowsAVNodeConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walt-node, runs agents")
	}
	t.Parallel()
	v := vnodetest.Start(t, vnodetest.Process(t), "127.174.0.0/16", "")
	token := v.Tokens.Of(t, "erin")
	erin, err := client.New(v.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := erin.WithToken(token).CreateVNode(t.Context(), api.CreateVNode{Name: "vn1"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.run(t, "open the vnode's page", chromedp.Navigate(v.URL+"/#/node/vn1"))
	b.login(t, token)
	b.waitJS(t, "the node's table and buttons", `document.getElementById('console-follow') && document.getElementById('hard-reboot')`)
	top := `document.getElementById('hard-reboot').getBoundingClientRect().top`
	before := eval[float64](t, b, top)
	b.click(t, "#console-follow")
	b.waitJS(t, "the console", `document.getElementById('console').textContent.includes('== walt vnode vn1: starting machine 1 ')`)
	// The console streams below the buttons: they stay under the pointer.
	if after := eval[float64](t, b, top); after != before {
		t.Errorf("the hard reboot button moved from %vpx to %vpx from the top when the console showed", before, after)
	}
	b.run(t, "hard-reboot it",
		chromedp.Click(chromedp.CSS("#hard-reboot")),
		chromedp.WaitVisible(chromedp.CSS("#reboot-confirm")),
		chromedp.Click(chromedp.CSS("#reboot-confirm")))
	b.waitJS(t, "the reboot on the console", `document.getElementById('console').textContent.includes('== walt vnode vn1: machine 1 exited: killed by hard reboot ==')`)
	b.waitJS(t, "the outcome", `document.querySelector('.outcomes li[data-node="vn1"]').textContent === '✔ vn1 rebooted by `+api.MethodVnodeHard+`'`)
	b.screenshot(t, "console")
}
