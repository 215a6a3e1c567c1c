package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
)

// The done test's lab uses 127.83.0.0/16, its server 127.63.0.5.

// A server killed with SIGKILL right after answering a done report that
// ended a campaign iteration has stored it: the row has the report's
// status and metric (not done-timeout after the restart). The next server
// answers the node that reports it again (its answer lost) with the same
// iteration, and a done report it gets for an iteration it resumed ends
// that iteration.
func TestKilledAfterDoneAnswerKeepsDone(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	ls := startLabServer(t, "127.63.0.5", lab.Config{Nodes: 2, Octet: 83, BootTime: lab.BootTime{Min: 100 * time.Millisecond, Max: 300 * time.Millisecond}})
	c := ls.c
	camp, err := c.StartCampaign(t.Context(), api.CampaignRequest{Set: "all-nodes", Requester: "test", Repeat: 1, UntilDone: true,
		DoneTimeout: api.Duration(time.Minute), BootTimeout: api.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	awaitPhase(t, c, camp.ID, api.BootBooted)
	awaitBootsStored(t, ls.dataDir, ls.lab.Nodes) // the next server knows the boots the reports name
	n1, n2 := ls.lab.Node("node01"), ls.lab.Node("node02")
	done1 := api.DoneReport{MAC: n1.MAC(), BootID: n1.BootID(), Status: 6, Metrics: map[string]float64{"score": 2.5}}
	reply, err := c.ReportDone(t.Context(), done1)
	if kerr := ls.first.cmd.Process.Kill(); kerr != nil {
		t.Fatal(kerr)
	}
	<-ls.first.done
	if err != nil || reply != (api.DoneReply{Campaign: camp.ID, Iteration: 1}) {
		t.Fatalf("done report of node01 = %+v, %v; want campaign %s iteration 1", reply, err, camp.ID)
	}

	st, err := sqlite.Open(t.Context(), filepath.Join(ls.dataDir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	boots, err := st.CampaignBoots(t.Context(), camp.ID)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var row store.CampaignBoot
	for _, b := range boots {
		if b.MAC == n1.MAC() {
			row = b
		}
	}
	if row.Outcome != api.BootCompleted || row.DoneAt.IsZero() || row.Status != 6 || row.Metrics["score"] != 2.5 {
		t.Fatalf("node01's row stored by the killed server: %+v; want completed by its done report, status 6, score 2.5", row)
	}

	second := startProcAt(t, ls.bin, ls.dataDir, ls.addr)
	if reply, err := c.ReportDone(t.Context(), done1); err != nil || reply != (api.DoneReply{Campaign: camp.ID, Iteration: 1}) {
		t.Errorf("node01's done report again, to the next server = %+v, %v; want campaign %s iteration 1\n%s", reply, err, camp.ID, second.log)
	}
	done2 := api.DoneReport{MAC: n2.MAC(), BootID: n2.BootID(), Status: 7}
	if reply, err := c.ReportDone(t.Context(), done2); err != nil || reply != (api.DoneReply{Campaign: camp.ID, Iteration: 1}) {
		t.Errorf("node02's done report, to the next server = %+v, %v; want campaign %s iteration 1\n%s", reply, err, camp.ID, second.log)
	}
	awaitCampaignDone(t, c, camp.ID)
	rows, err := c.CampaignBoots(t.Context(), camp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rows {
		want := map[string]int{"node01": 6, "node02": 7}[b.Node]
		if b.Outcome != api.BootCompleted || b.Status == nil || *b.Status != want || b.Done == nil {
			t.Errorf("%s iteration %d: %s, status %v; want completed by its done report, status %d", b.Node, b.Iteration, b.Outcome, b.Status, want)
		}
	}
	if len(rows) != 2 {
		t.Errorf("%d rows, want 2", len(rows))
	}
}
