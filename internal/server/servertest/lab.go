package servertest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/testutil"
)

// StartLab starts a simulated lab (cfg.OnBoot is replaced) whose nodes
// report each boot to the server, with heartbeats, as walt-lab's do, and
// waits until every node has reported: those whose agent refuses
// connections are reported once, without a boot id. The lab's boot times
// default to 30-90 ms.
func (e *Env) StartLab(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	return e.StartLabWith(t, cfg, nil)
}

// StartLabWith is StartLab with, if exp is not nil, a simulated
// experiment on every node: done reported exp.Delay after each boot.
func (e *Env) StartLabWith(t testing.TB, cfg lab.Config, exp *lab.Experiment) *lab.Lab {
	t.Helper()
	rep, err := client.NewReporter(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { rep.Run(ctx) })
	if cfg.BootTime == (lab.BootTime{}) {
		cfg.BootTime = lab.BootTime{Min: 30 * time.Millisecond, Max: 90 * time.Millisecond}
	}
	cfg.OnBoot = func(b lab.Boot) {
		n := b.Node
		host, _, _ := net.SplitHostPort(n.Addr())
		alive := func() bool { return n.State() == lab.Up && n.BootID() == b.BootID }
		if rep.Report(ctx, api.NodeReport{MAC: n.MAC(), IP: host, Name: n.Name(), Model: n.Model(), BootMode: "network", BootID: b.BootID}, alive) != nil || exp == nil {
			return
		}
		exp.Run(ctx, b, func(ctx context.Context, d api.DoneReport) error {
			_, err := rep.Client().ReportDone(ctx, d)
			return err
		})
	}
	l, err := lab.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	// Every node's own report of its first boot must be in, not only a
	// report that says it is booted: a report still on its way would be
	// taken for the boot of the test's first reboot.
	testutil.Eventually(t, 20*time.Second, fmt.Sprintf("%d lab nodes reported", len(l.Nodes)), func() bool {
		nl, err := e.Client.Nodes(t.Context(), map[string]string{"booted": "true"})
		if err != nil || nl.NumNodes < len(l.Nodes) {
			return false
		}
		bootIDs := make(map[string]string, len(nl.Nodes))
		for _, n := range nl.Nodes {
			if n.BootContext != nil {
				bootIDs[n.Name] = n.BootContext.BootID
			}
		}
		for _, n := range l.Nodes {
			if id := n.BootID(); id != "" && bootIDs[n.Name()] != id {
				return false
			}
		}
		return true
	})
	return l
}
