package dashboard_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// benchNodes is the size of the testbed of the benchmark.
const benchNodes = 10000

// registerNodes reports n nodes named n00000... (booted, never
// contacted), 8 at a time.
func registerNodes(b *testing.B, env *servertest.Env, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := env.Client.ReportNode(b.Context(), nodeReport(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func nodeReport(i int) api.NodeReport {
	return api.NodeReport{MAC: fmt.Sprintf("52:54:01:%02x:%02x:%02x", i>>16, (i>>8)&0xff, i&0xff),
		IP: fmt.Sprintf("127.172.%d.%d", i>>8, i&0xff), Name: fmt.Sprintf("n%05d", i), Model: "rpi-b"}
}

// The node table with 10000 nodes: first-render-ms is the time from the
// page's start to the table drawn (aim: under 1000); boot-to-screen-ms
// the time from a node's boot report to its row showing the new boot
// (aim: under 200), the mean of 5.
func BenchmarkNodeTable10000(b *testing.B) {
	env := servertest.New(b, nil, nil)
	registerNodes(b, env, benchNodes)
	base, _ := serve(b, env.Server.Handler())
	br := newBrowser(b)
	br.run(b, "open the page", chromedp.Navigate(base+"/"))
	br.login(b, env.AdminToken) // kept by the tab (sessionStorage) for the pages opened below
	var render, screen time.Duration
	boots := 0
	for b.Loop() {
		br.run(b, "open the table", chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#/nodes"))
		br.waitJS(b, "10000 nodes", fmt.Sprintf(`document.getElementById('node-count').textContent === '%d of %d nodes' && document.body.dataset.nodesRendered`, benchNodes, benchNodes))
		render += time.Duration(eval[float64](b, br, `Number(document.body.dataset.nodesRendered)`) * float64(time.Millisecond))
		for range 5 {
			since := eval[string](b, br, `document.querySelector('#node-table .vt-row[data-node="n00000"]').dataset.since`)
			start := time.Now()
			if _, err := env.Client.ReportNode(b.Context(), nodeReport(0)); err != nil {
				b.Fatal(err)
			}
			br.waitJS(b, "the new boot on screen", `document.querySelector('#node-table .vt-row[data-node="n00000"]').dataset.since !== `+js(since))
			screen += time.Since(start)
			boots++
		}
	}
	b.ReportMetric(float64(render.Milliseconds())/float64(b.N), "first-render-ms")
	b.ReportMetric(float64(screen.Microseconds())/1000/float64(boots), "boot-to-screen-ms")
}
