package main

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/store/sqlite"
)

// A boot report the server answered is in the store, however soon after
// the answer the server is killed: the node, which reports again only
// when it has no answer, would otherwise have its boot (and the boot
// time of the reboot it completes) lost.
func TestKilledAfterReportKeepsTheBoot(t *testing.T) {
	t.Parallel()
	const nodes = 30
	bin := buildServer(t)
	dataDir := t.TempDir()
	p := startProc(t, bin, dataDir)
	c, err := client.New("http://"+p.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for i := range nodes {
		wg.Go(func() {
			rep := api.NodeReport{MAC: fmt.Sprintf("52:54:00:63:00:%02x", i), IP: fmt.Sprintf("127.63.1.%d", i+1),
				Name: fmt.Sprintf("kept%02d", i), Model: "pc-x86-64", BootID: fmt.Sprintf("boot-%d", i)}
			if _, err := c.ReportNode(t.Context(), rep); err != nil {
				errs <- fmt.Errorf("report of %s: %w", rep.Name, err)
			}
		})
	}
	wg.Wait()
	if err := p.cmd.Process.Kill(); err != nil { // at once: within the tracker's flush delay
		t.Fatal(err)
	}
	<-p.done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dataDir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	statuses, err := st.BootStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range statuses {
		if b.Booted {
			got[b.MAC] = b.BootID
		}
	}
	for i := range nodes {
		mac, want := fmt.Sprintf("52:54:00:63:00:%02x", i), fmt.Sprintf("boot-%d", i)
		if got[mac] != want {
			t.Errorf("node %s after the kill: stored boot %q, want %q (booted)", mac, got[mac], want)
		}
	}
}
