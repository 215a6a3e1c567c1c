//go:build !race

package vnode

import (
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// BenchmarkQEMUReboot measures, for one QEMU vnode (cpu.cores=1,
// ram=256M), the time from the request to the agent answering PING: cold
// start (Create), soft reboot (REBOOT over the node protocol), hard reboot
// (HardReboot); and the QEMU process's RSS and CPU use while the guest idles.
//
//	go test -run '^$' -bench QEMUReboot -benchtime 5x ./internal/vnode/
func BenchmarkQEMUReboot(b *testing.B) {
	qb := qemuBackendB(b)
	s := startSupervisor(b, qb, "127.208.0.0/16")
	var cold, soft, hard, idleCPU time.Duration
	var rss int
	i := 0
	for b.Loop() {
		i++
		name := "qb" + string(rune('a'+i%26))
		t0 := time.Now()
		if err := s.Create(Spec{Name: name, Settings: Settings{CPUCores: 1, RAMMiB: 256}}); err != nil {
			b.Fatal(err)
		}
		st := waitUp(b, s, name, 1, bootTimeout)
		cold += time.Since(t0)
		addr, _ := s.Addr(name)

		t0 = time.Now()
		if _, err := (&netservice.Requester{ReplyTimeout: 10 * time.Second}).Do(b.Context(), addr, netservice.Request{Verb: "REBOOT"}); err != nil {
			b.Fatal(err)
		}
		st = waitUp(b, s, name, 2, bootTimeout)
		soft += time.Since(t0)

		t0 = time.Now()
		if err := s.HardReboot(b.Context(), name); err != nil {
			b.Fatal(err)
		}
		st = waitUp(b, s, name, 3, bootTimeout)
		hard += time.Since(t0)

		c0 := cpuTicks(st.PID)
		time.Sleep(3 * time.Second) // the figure is CPU spent while idle
		idleCPU += time.Duration(cpuTicks(st.PID)-c0) * 10 * time.Millisecond
		rss += rssKiB(st.PID)
		if err := s.Remove(b.Context(), name); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(i)
	b.ReportMetric(cold.Seconds()/n, "cold-s")
	b.ReportMetric(soft.Seconds()/n, "soft-s")
	b.ReportMetric(hard.Seconds()/n, "hard-s")
	b.ReportMetric(float64(rss)/1024/n, "qemu-RSS-MiB")
	b.ReportMetric(idleCPU.Seconds()/3/n*100, "qemu-idle-cpu-%")
	b.ReportMetric(0, "ns/op")
}

func qemuBackendB(b *testing.B) *QEMUBackend {
	if imageDir == "" {
		b.Skip("no vnode image")
	}
	qb, err := NewQEMUBackend(QEMUConfig{ImageDir: imageDir, Accel: "auto", ProbeCache: vmtest.ProbeCache()})
	if err != nil {
		b.Skip(err)
	}
	qb.ProbeAccel(b.Context())
	return qb
}
