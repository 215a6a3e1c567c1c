package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/testutil"
)

// BenchmarkIdleFootprint starts the real walt-node binary, lets it answer
// one PING, and reports its resident memory and the binary's size.
func BenchmarkIdleFootprint(b *testing.B) {
	fi, err := os.Stat(binary)
	if err != nil {
		b.Fatal(err)
	}
	var rss float64
	for b.Loop() {
		addr := freeLoopbackAddr(b)
		cmd := exec.Command(binary, "--listen", addr, "--root", b.TempDir(), "--reboot-action", "exit", "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		rq := &netservice.Requester{}
		testutil.Eventually(b, 10*time.Second, "walt-node to listen on "+addr, func() bool {
			_, err = rq.Do(b.Context(), addr, netservice.Request{Verb: netservice.VerbPing})
			return !errors.Is(err, netservice.ErrRefused)
		})
		if err != nil {
			b.Fatal(err)
		}
		rss = vmRSS(b, cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
	}
	b.ReportMetric(rss, "idle-RSS-MB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MB")
}

// vmRSS reads a process's resident set size, in MiB.
func vmRSS(b *testing.B, pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/pid/status")
	return 0
}
