package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

// The campaign crash test's lab uses 127.66.0.0/16, its server 127.63.0.2.

// labServer is a walt-server binary serving on addr from dataDir, and a
// lab whose boots a reporter sends to it, retried quickly while the
// server is down.
type labServer struct {
	bin, dataDir, addr string
	first              *serverProc
	rep                *client.Reporter
	lab                *lab.Lab
	c                  *client.Client // user "test"
}

// startLabServer starts walt-server on ip and the lab, and waits until
// every node of the lab booted.
func startLabServer(t *testing.T, ip string, cfg lab.Config) *labServer {
	t.Helper()
	ls := &labServer{bin: buildServer(t), dataDir: t.TempDir(), addr: ip + ":" + freePort(t, ip)}
	ls.first = startProcAt(t, ls.bin, ls.dataDir, ls.addr)
	rep, err := client.NewReporter("http://" + ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	rep.Backoff = 200 * time.Millisecond
	ls.rep = rep
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { rep.Run(ctx) })
	cfg.OnBoot = func(b lab.Boot) {
		n := b.Node
		host, _, _ := net.SplitHostPort(n.Addr())
		alive := func() bool { return n.State() == lab.Up && n.BootID() == b.BootID }
		rep.Report(ctx, api.NodeReport{MAC: n.MAC(), IP: host, Name: n.Name(), Model: n.Model(), BootMode: "network", BootID: b.BootID}, alive)
	}
	if ls.lab, err = lab.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ls.lab.Close)
	c, err := client.New("http://"+ls.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls.c = c.WithToken(userToken(t, "test", "--data", ls.dataDir))
	testutil.Eventually(t, 20*time.Second, "the lab's nodes booted", func() bool {
		nl, err := ls.c.Nodes(t.Context(), map[string]string{"booted": "true"})
		return err == nil && nl.NumNodes == cfg.Nodes
	})
	// Their boots stored too: a server killed next restarts knowing
	// each node's boot, as the tests of a kill mean it to.
	awaitBootsStored(t, ls.dataDir, ls.lab.Nodes)
	return ls
}

// awaitBootsStored waits until the store in dataDir holds the current
// boot of each of nodes.
func awaitBootsStored(t *testing.T, dataDir string, nodes []*lab.Node) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dataDir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testutil.EventuallyNil(t, 20*time.Second, "the nodes' boots stored", func() error {
		bs, err := st.BootStatuses(t.Context())
		if err != nil {
			return err
		}
		stored := map[string]string{}
		for _, b := range bs {
			if b.Booted {
				stored[b.MAC] = b.BootID
			}
		}
		for _, n := range nodes {
			if stored[n.MAC()] != n.BootID() {
				return fmt.Errorf("%s: stored boot %q, booted %q", n.Name(), stored[n.MAC()], n.BootID())
			}
		}
		return nil
	})
}

// awaitPhase waits until every node of campaign id is in phase.
func awaitPhase(t *testing.T, c *client.Client, id, phase string) {
	t.Helper()
	testutil.EventuallyNil(t, 30*time.Second, "the campaign's nodes "+phase, func() error {
		got, err := c.Campaign(t.Context(), id)
		if err != nil {
			return err
		}
		for _, n := range got.Nodes {
			if n.Phase != phase {
				return fmt.Errorf("%s: %s", n.Node, n.Phase)
			}
		}
		return nil
	})
}

// awaitCampaignDone waits until campaign id is done.
func awaitCampaignDone(t *testing.T, c *client.Client, id string) {
	t.Helper()
	testutil.EventuallyNil(t, 60*time.Second, "the campaign done", func() error {
		got, err := c.Campaign(t.Context(), id)
		if err != nil {
			return err
		}
		if got.State != api.CampaignDone {
			return fmt.Errorf("campaign %s", got.State)
		}
		return nil
	})
}

// stamp shows an optional time in failure messages.
func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.StampMicro)
}

// A server killed with SIGKILL in the middle of a campaign resumes it at
// its next start: every node gets each of its iterations, none twice.
func TestKilledDuringCampaignResumes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	const nodes, repeat = 12, 6
	ls := startLabServer(t, "127.63.0.2", lab.Config{Nodes: nodes, Octet: 66, BootTime: lab.BootTime{Min: 100 * time.Millisecond, Max: 300 * time.Millisecond}})
	bin, dataDir, addr, first, l, c := ls.bin, ls.dataDir, ls.addr, ls.first, ls.lab, ls.c
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "test", Repeat: repeat,
		BootTimeout: api.Duration(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyNil(t, 60*time.Second, "the campaign in round 3", func() error {
		got, err := c.Campaign(t.Context(), camp.ID)
		if err != nil {
			return err
		}
		if got.Round < 3 {
			return fmt.Errorf("round %d", got.Round)
		}
		return nil
	})
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done

	second := startProcAt(t, bin, dataDir, addr)
	var end api.Campaign
	fctx, fcancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer fcancel()
	if err := c.FollowCampaign(fctx, camp.ID, true, func(ev api.CampaignEvent) error {
		if ev.Type == api.CampaignEventState {
			end = *ev.Campaign
		}
		return nil
	}); err != nil {
		t.Fatalf("follow the resumed campaign: %v\n%s", err, second.log)
	}
	if end.State != api.CampaignDone || end.Round != repeat {
		t.Fatalf("resumed campaign ended %s in round %d, want done in round %d\n%s", end.State, end.Round, repeat, second.log)
	}
	boots, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]api.CampaignBoot{}
	for _, b := range boots {
		rows[b.Node] = append(rows[b.Node], b)
	}
	for _, n := range l.Nodes {
		rs := rows[n.Name()]
		completed := 0
		for i, b := range rs {
			if b.Iteration != i+1 {
				t.Errorf("%s: row %d is iteration %d", n.Name(), i, b.Iteration)
			}
			if b.Outcome == api.BootCompleted {
				completed++
			}
		}
		// A node whose reboot the killed server had recorded but not
		// sent fails that iteration (at most one); no node is rebooted
		// twice for one iteration.
		if len(rs) != repeat || completed < repeat-1 || n.Boots() != 1+completed {
			var b strings.Builder
			for _, r := range rs {
				fmt.Fprintf(&b, "\n  iteration %d: %s, requested %s, ack %v, down %v, booted %v, boot %s, reboot %s, method %s",
					r.Iteration, r.Outcome, r.Requested.Format(time.StampMicro), stamp(r.Ack), stamp(r.Down), stamp(r.Booted), r.BootID, r.RebootID, r.Method)
			}
			t.Errorf("%s: %d rows, %d completed, %d boots; want %d rows, at most one failed, one boot per completed row after the first:%s", n.Name(), len(rs), completed, n.Boots(), repeat, b.String())
		}
	}
	if !strings.Contains(second.log.String(), "campaign resumed") {
		t.Errorf("the second server did not log the campaign's resumption:\n%s", second.log)
	}
}
