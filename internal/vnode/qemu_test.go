//go:build !race

package vnode

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
)

// qemuBackend returns a QEMU backend on the test image, or skips the test
// when QEMU or the image is missing (never in CI).
func qemuBackend(t *testing.T) *QEMUBackend {
	t.Helper()
	_, err := exec.LookPath("qemu-system-x86_64")
	switch {
	case err != nil && os.Getenv("CI") == "true":
		t.Fatalf("CI=true but qemu-system-x86_64 is missing: %v (install qemu-system-x86)", err)
	case err != nil:
		t.Skip("qemu-system-x86_64 not installed")
	case imageDir == "" && os.Getenv("CI") == "true":
		t.Fatal("CI=true but no vnode image could be built (see scripts/build-vnode-image.sh output above)")
	case imageDir == "":
		t.Skip("no vnode image: run scripts/build-vnode-image.sh or set WALT_VNODE_IMAGE")
	}
	b, err := NewQEMUBackend(QEMUConfig{ImageDir: imageDir, Accel: "auto", ProbeCache: vmtest.ProbeCache(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.ProbeAccel(t.Context()) // the best accelerator from the first machine on
	return b
}

// bootTimeout allows for TCG on 2 busy shared cores (a boot takes about 3-6 s alone).
const bootTimeout = 90 * time.Second

// TestQEMUVnode runs one VM through the scenario of issue 6: boot, soft
// reboot by the real protocol, hard reboot, a ram change, removal.
func TestQEMUVnode(t *testing.T) {
	b := qemuBackend(t)
	s := startSupervisor(t, b, "127.203.0.0/16")
	settings := Settings{CPUCores: 1, RAMMiB: 256, BootDelay: BootDelay{Seconds: 0}}
	if err := s.Create(Spec{Name: "qvn1", Settings: settings}); err != nil {
		t.Fatal(err)
	}
	addr, _ := s.Addr("qvn1")
	console := s.ConsolePath("qvn1")

	st := waitUp(t, s, "qvn1", 1, bootTimeout)
	bs := banners(t, console)
	if len(bs) != 1 {
		t.Fatalf("after first boot: %d boot banners on the console, want 1", len(bs))
	}
	if bs[0].cpus != 1 {
		t.Errorf("guest sees %d CPUs, want 1", bs[0].cpus)
	}

	// Soft reboot: the guest's agent reboots the kernel, QEMU exits
	// (-no-reboot), the supervisor starts a new VM.
	req := &netservice.Requester{ReplyTimeout: 10 * time.Second}
	if line, err := req.Do(t.Context(), addr, netservice.Request{Verb: "REBOOT"}); err != nil || line != "OK" {
		t.Fatalf("REBOOT = %q, %v; want OK", line, err)
	}
	st2 := waitUp(t, s, "qvn1", 2, bootTimeout)
	if st2.Generation != 2 || st2.LastExit != "guest rebooted or powered off (qemu exited)" {
		t.Errorf("after soft reboot: generation %d, last exit %q; want 2, guest rebooted", st2.Generation, st2.LastExit)
	}
	if st2.PID == st.PID || alive(st.PID) {
		t.Errorf("after soft reboot: first QEMU (pid %d) still alive or reused", st.PID)
	}
	bs = banners(t, console)
	if len(bs) != 2 || bs[1].bootID == bs[0].bootID {
		t.Fatalf("after soft reboot: banners %+v, want 2 with different boot ids", bs)
	}

	// Hard reboot with a new ram setting: the VM is killed and the next
	// one gets the new size.
	settings.RAMMiB = 384
	if err := s.Update("qvn1", settings); err != nil {
		t.Fatal(err)
	}
	if err := s.HardReboot(t.Context(), "qvn1"); err != nil {
		t.Fatal(err)
	}
	if alive(st2.PID) {
		t.Errorf("HardReboot returned with QEMU pid %d still alive", st2.PID)
	}
	st3 := waitUp(t, s, "qvn1", 3, bootTimeout)
	if st3.LastExit != "killed by hard reboot" {
		t.Errorf("last exit = %q, want killed by hard reboot", st3.LastExit)
	}
	argv, err := os.ReadFile("/proc/" + strconv.Itoa(st3.PID) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(argv, []byte("\x00-m\x00384\x00")) {
		t.Errorf("new QEMU argv %q has no -m 384", bytes.ReplaceAll(argv, []byte{0}, []byte{' '}))
	}
	bs = banners(t, console)
	if len(bs) != 3 || bs[2].bootID == bs[1].bootID {
		t.Fatalf("after hard reboot: banners %+v, want 3 with different boot ids", bs)
	}
	if bs[2].memTotalKiB <= bs[1].memTotalKiB+100*1024 {
		t.Errorf("guest MemTotal %d KiB after ram=384M, %d KiB before: want about 128 MiB more", bs[2].memTotalKiB, bs[1].memTotalKiB)
	}

	// Remove: no QEMU left.
	if err := s.Remove(t.Context(), "qvn1"); err != nil {
		t.Fatal(err)
	}
	if alive(st3.PID) {
		t.Errorf("QEMU pid %d alive after Remove", st3.PID)
	}
	if ping(addr) {
		t.Errorf("agent at %s still answers after Remove", addr)
	}
	if pids := liveChildren(t, os.Getpid()); len(pids) != 0 {
		t.Errorf("child processes left after Remove: %v", pids)
	}
}
