//go:build !race

package cli_test

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server/servertest/vnodetest"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// TestQEMUVnodeCLI runs one QEMU vnode through issue 6's scenario with the
// CLI: create, booted (the guest's agent reports through QEMU's user-mode
// network), soft reboot (the guest reboots itself: new boot id), a ram
// change applied by a hard reboot (the VM is killed, the next one has the
// new size), console, removal (no QEMU left). One VM serves every step.
func TestQEMUVnodeCLI(t *testing.T) {
	b := vnodetest.QEMU(t)
	v := vnodetest.Start(t, b, "127.51.0.0/16", "")
	e := vnodeEnv(t, v)
	if stdout, stderr, code := e.run(t, false, "node", "create", "qv1", "cpu.cores=1", "ram=256M", "boot.delay=0"); code != 0 {
		t.Fatalf("walt node create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	booted := func() bool {
		nl, err := e.c.Nodes(t.Context(), map[string]string{"name": "qv1", "booted": "true"})
		return err == nil && nl.NumNodes == 1
	}
	banners := func() []vmtest.Banner {
		data, err := os.ReadFile(v.Sup.ConsolePath("qv1"))
		if err != nil {
			t.Fatal(err)
		}
		return vmtest.Banners(data)
	}
	testutil.Eventually(t, vnodeBootTimeout, "qv1 to boot and report", booted)
	gen1 := vnodesByName(t, e)
	// The guest reports 10.0.2.15; the inventory shows where the server
	// reaches it.
	addr, _ := v.Sup.Addr("qv1")
	if nl, err := e.c.Nodes(t.Context(), map[string]string{"name": "qv1"}); err != nil || nl.NumNodes != 1 || nl.Nodes[0].IP+":12346" != addr {
		t.Errorf("qv1 in the inventory: %+v, %v; want IP of %s", nl, err, addr)
	}
	if bs := banners(); len(bs) != 1 || bs[0].CPUs != 1 || bs[0].Name != "qv1" {
		t.Fatalf("after the first boot: banners %+v, want one of qv1 with 1 CPU", bs)
	}

	// Soft reboot: the agent in the guest acknowledges and reboots the
	// kernel; QEMU exits (-no-reboot) and the supervisor starts the next VM.
	since := time.Now()
	if r := rebootJSON(t, e, "qv1")["qv1"]; !r.OK || r.Method != api.MethodSoft {
		t.Fatalf("walt node reboot qv1: %+v", r)
	}
	gen2 := waitRebooted(t, e, []string{"qv1"}, gen1, since)
	testutil.Eventually(t, vnodeBootTimeout, "qv1 booted again", booted)
	if got := gen2["qv1"].LastExit; got != "guest rebooted or powered off (qemu exited)" {
		t.Errorf("after the soft reboot, last exit %q", got)
	}
	if bs := banners(); len(bs) != 2 || bs[1].BootID == bs[0].BootID {
		t.Fatalf("after the soft reboot: banners %+v, want 2 with different boot ids", bs)
	}

	// ram change, applied by a hard reboot.
	if stdout, stderr, code := e.run(t, false, "node", "config", "qv1", "ram=384M"); code != 0 || stdout != "Done. Reboot node(s) to see new settings in effect.\n" {
		t.Fatalf("walt node config qv1 ram=384M: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	since = time.Now()
	if r := rebootJSON(t, e, "--hard", "qv1")["qv1"]; !r.OK || r.Method != api.MethodVnodeHard {
		t.Fatalf("walt node reboot --hard qv1: %+v", r)
	}
	if vmtest.Alive(gen2["qv1"].PID) {
		t.Errorf("QEMU pid %d alive after the hard reboot", gen2["qv1"].PID)
	}
	gen3 := waitRebooted(t, e, []string{"qv1"}, gen2, since)
	testutil.Eventually(t, vnodeBootTimeout, "qv1 booted after the hard reboot", booted)
	if got := gen3["qv1"].LastExit; got != "killed by hard reboot" {
		t.Errorf("after the hard reboot, last exit %q", got)
	}
	argv, err := os.ReadFile("/proc/" + strconv.Itoa(gen3["qv1"].PID) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(argv, []byte("\x00-m\x00384\x00")) {
		t.Errorf("new QEMU argv %q has no -m 384", bytes.ReplaceAll(argv, []byte{0}, []byte{' '}))
	}
	bs := banners()
	if len(bs) != 3 || bs[2].BootID == bs[1].BootID {
		t.Fatalf("after the hard reboot: banners %+v, want 3 with different boot ids", bs)
	}
	if bs[2].MemTotalKiB <= bs[1].MemTotalKiB+100*1024 {
		t.Errorf("guest MemTotal %d KiB after ram=384M, %d KiB before: want about 128 MiB more", bs[2].MemTotalKiB, bs[1].MemTotalKiB)
	}

	stdout, _, code := e.run(t, false, "node", "console", "qv1")
	if code != 0 || len(vmtest.Banners([]byte(stdout))) != 3 {
		t.Errorf("walt node console qv1: exit %d, %d banners in %d bytes", code, len(vmtest.Banners([]byte(stdout))), len(stdout))
	}

	if stdout, stderr, code := e.run(t, false, "node", "remove", "qv1"); code != 0 || stdout != "Node qv1 removed.\n" {
		t.Fatalf("walt node remove qv1: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if vmtest.Alive(gen3["qv1"].PID) {
		t.Errorf("QEMU pid %d alive after walt node remove", gen3["qv1"].PID)
	}
	if left := vnodesByName(t, e); len(left) != 0 {
		t.Errorf("vnodes after removal: %+v", left)
	}
}

// BenchmarkQEMUVnodeReboot measures, through the API, the time from a
// reboot request to the node being booted again (its agent reported), for
// one QEMU vnode (cpu.cores=1 ram=256M boot.delay=0): soft and hard
// reboots alternate, one of each per iteration.
func BenchmarkQEMUVnodeReboot(b *testing.B) {
	v := vnodetest.Start(b, vnodetest.QEMU(b), "127.55.0.0/16", "")
	booted := func() bool {
		nl, err := v.Client.Nodes(b.Context(), map[string]string{"name": "bq1", "booted": "true"})
		return err == nil && nl.NumNodes == 1
	}
	waitBooted := func() time.Duration {
		start := time.Now()
		testutil.Eventually(b, 2*time.Minute, "bq1 to boot", booted)
		return time.Since(start)
	}
	start := time.Now()
	if _, err := v.Client.CreateVNode(b.Context(), api.CreateVNode{Name: "bq1", Settings: []string{"cpu.cores=1", "ram=256M", "boot.delay=0"}, Requester: "bench"}); err != nil {
		b.Fatal(err)
	}
	waitBooted()
	created := time.Since(start)
	var soft, hard time.Duration
	for b.Loop() {
		for _, h := range []bool{false, true} {
			t0 := time.Now()
			res, err := v.Client.Reboot(b.Context(), api.RebootRequest{Set: "bq1", Hard: h, Requester: "bench"}, nil)
			if err != nil || len(res) != 1 || !res[0].OK {
				b.Fatalf("reboot (hard %v): %+v, %v", h, res, err)
			}
			waitBooted()
			if h {
				hard += time.Since(t0)
			} else {
				soft += time.Since(t0)
			}
		}
	}
	b.ReportMetric(created.Seconds(), "create-to-booted-s")
	b.ReportMetric(soft.Seconds()/float64(b.N), "soft-to-booted-s")
	b.ReportMetric(hard.Seconds()/float64(b.N), "hard-to-booted-s")
}
