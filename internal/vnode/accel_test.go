package vnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/testutil"
)

// fakeQEMU writes a qemu-system-x86_64 stand-in into a new directory with
// an image beside it, and returns the binary, the image directory and the
// file where each invocation appends its arguments. A trial boot (an
// invocation with "walt.probe=1") behaves as probe says: "hang" never
// answers, "ok" prints the probe's success line, "fail" exits 1. Any other
// invocation is a machine that runs until killed.
func fakeQEMU(t *testing.T, probe string) (bin, image, calls string) {
	t.Helper()
	dir := t.TempDir()
	image = filepath.Join(dir, "image")
	if err := os.Mkdir(image, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{KernelFile, InitramfsFile} {
		if err := os.WriteFile(filepath.Join(image, f), []byte("fake"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	calls = filepath.Join(dir, "calls")
	onProbe := map[string]string{
		"hang": "exec sleep 600",
		"ok":   "echo 'walt-vnode: probe ok'; exit 0",
		"fail": "echo 'qemu: failed to set MSR 0x10a' >&2; exit 1",
	}[probe]
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\n" +
		"case \"$*\" in *walt.probe=1*) " + onProbe + ";; esac\nexec sleep 600\n"
	bin = filepath.Join(dir, "qemu-system-x86_64")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, image, calls
}

// probes counts the trial boots the fake QEMU was asked for.
func probes(t *testing.T, calls string) int {
	t.Helper()
	b, err := os.ReadFile(calls)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "walt.probe=1")
}

// A host without a KVM device settles on TCG at once, without a trial.
func TestAccelNoKVMDevice(t *testing.T) {
	bin, image, calls := fakeQEMU(t, "ok")
	b, err := NewQEMUBackend(QEMUConfig{Binary: bin, ImageDir: image, KVMDevice: filepath.Join(t.TempDir(), "kvm"), ProbeCache: filepath.Join(t.TempDir(), ProbeCacheFile), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st := b.AccelStatus()
	if st.Accel != AccelTCG || st.Probing || !strings.HasPrefix(st.Reason, "no ") {
		t.Errorf("AccelStatus() = %+v, want tcg, not probing, reason no device", st)
	}
	if got := b.ProbeAccel(t.Context()); got != st {
		t.Errorf("ProbeAccel() = %+v, want %+v unchanged", got, st)
	}
	if n := probes(t, calls); n != 0 {
		t.Errorf("%d trial boots without a KVM device, want 0", n)
	}
}

// A KVM device that opens but runs no guest (the trial never answers): the
// backend is usable at once under TCG, the trial times out in the
// background, and its answer is remembered for the next backend, which
// runs no trial.
func TestAccelHangingProbeIsRemembered(t *testing.T) {
	bin, image, calls := fakeQEMU(t, "hang")
	cfg := QEMUConfig{Binary: bin, ImageDir: image, KVMDevice: os.DevNull, ProbeTimeout: 300 * time.Millisecond,
		ProbeCache: filepath.Join(t.TempDir(), ProbeCacheFile), Logger: testLogger(t)}
	b, err := NewQEMUBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.AccelStatus(); st.Accel != AccelTCG || !st.Probing {
		t.Fatalf("before the trial: AccelStatus() = %+v, want tcg while probing", st)
	}
	if n := probes(t, calls); n != 0 {
		t.Fatalf("NewQEMUBackend ran %d trial boots, want 0 (it must not wait for one)", n)
	}
	if args := strings.Join(b.Args(Machine{Name: "vn1", Settings: Settings{CPUCores: 1, RAMMiB: 128}}), " "); !strings.Contains(args, "-accel tcg") {
		t.Errorf("machine started while probing: args %q, want -accel tcg", args)
	}
	st := b.ProbeAccel(t.Context())
	if st.Accel != AccelTCG || st.Probing || !strings.Contains(st.Reason, "no sign of life in 300ms") {
		t.Errorf("after the trial: %+v, want tcg with the timeout as reason", st)
	}
	if n := probes(t, calls); n != 1 {
		t.Errorf("%d trial boots, want 1", n)
	}

	b2, err := NewQEMUBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st2 := b2.AccelStatus()
	if st2.Accel != AccelTCG || st2.Probing || !strings.Contains(st2.Reason, "same kernel boot") {
		t.Errorf("second backend: AccelStatus() = %+v, want the remembered tcg", st2)
	}
	b2.ProbeAccel(t.Context())
	if n := probes(t, calls); n != 1 {
		t.Errorf("%d trial boots after a second start, want still 1", n)
	}

	// Another QEMU binary (upgraded, say) makes the memory stale.
	if err := os.WriteFile(bin, append(must(os.ReadFile(bin)), "\n# upgraded\n"...), 0o755); err != nil {
		t.Fatal(err)
	}
	b3, err := NewQEMUBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := b3.AccelStatus(); !st.Probing {
		t.Errorf("after a QEMU change: AccelStatus() = %+v, want a new trial pending", st)
	}
}

// A trial that succeeds switches the backend to KVM: a vnode started under
// TCG while the trial ran keeps TCG until its next machine, which runs
// under KVM, and its status says so.
func TestAccelSwitchesAtNextMachine(t *testing.T) {
	bin, image, _ := fakeQEMU(t, "ok")
	b, err := NewQEMUBackend(QEMUConfig{Binary: bin, ImageDir: image, KVMDevice: os.DevNull, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := startSupervisor(t, b, "127.205.0.0/16")
	if err := s.Create(Spec{Name: "avn1", Settings: Settings{CPUCores: 1, RAMMiB: 128}}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "first machine", func() bool { st, _ := s.Status("avn1"); return st.Running })
	if st, _ := s.Status("avn1"); st.Accel != AccelTCG {
		t.Errorf("first machine, started while probing: accel %q, want tcg", st.Accel)
	}
	if st := b.ProbeAccel(t.Context()); st.Accel != AccelKVM || st.Reason != "kvm trial boot succeeded" {
		t.Fatalf("ProbeAccel() = %+v, want kvm", st)
	}
	if st, _ := s.Status("avn1"); st.Accel != AccelTCG {
		t.Errorf("running machine after the trial: accel %q, want still tcg", st.Accel)
	}
	if err := s.HardReboot(t.Context(), "avn1"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "second machine", func() bool { st, _ := s.Status("avn1"); return st.Running && st.Generation == 2 })
	if st, _ := s.Status("avn1"); st.Accel != AccelKVM {
		t.Errorf("second machine: accel %q, want kvm", st.Accel)
	}
}

// A failed trial names what QEMU said.
func TestAccelFailedProbe(t *testing.T) {
	bin, image, _ := fakeQEMU(t, "fail")
	b, err := NewQEMUBackend(QEMUConfig{Binary: bin, ImageDir: image, KVMDevice: os.DevNull, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st := b.ProbeAccel(t.Context())
	if st.Accel != AccelTCG || !strings.Contains(st.Reason, "failed to set MSR") {
		t.Errorf("ProbeAccel() = %+v, want tcg naming QEMU's complaint", st)
	}
}

func TestAccelAskedFor(t *testing.T) {
	bin, image, _ := fakeQEMU(t, "hang")
	for _, a := range []string{AccelKVM, AccelTCG} {
		b, err := NewQEMUBackend(QEMUConfig{Binary: bin, ImageDir: image, Accel: a})
		if err != nil {
			t.Fatal(err)
		}
		if st := b.AccelStatus(); st.Accel != a || st.Probing {
			t.Errorf("Accel %q: AccelStatus() = %+v", a, st)
		}
	}
	if _, err := NewQEMUBackend(QEMUConfig{Binary: bin, ImageDir: image, Accel: "hvf"}); err == nil || !strings.Contains(err.Error(), `"hvf"`) {
		t.Errorf("Accel hvf: err = %v, want one naming it", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzProbeMemo: whatever the memo file holds, parsing never panics and
// accepts only memos naming kvm or tcg with a boot id, a binary and a
// device.
func FuzzProbeMemo(f *testing.F) {
	f.Add([]byte(`{"boot_id":"b","qemu":"/usr/bin/qemu 1 2","device":"/dev/kvm","accel":"kvm","reason":"ok","at":"2026-12-01T00:00:00Z"}`))
	f.Add([]byte(`{"accel":"xen"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseProbeMemo(data)
		if err != nil {
			return
		}
		if (m.Accel != AccelKVM && m.Accel != AccelTCG) || m.BootID == "" || m.QEMU == "" || m.Device == "" || len(m.Reason) > 512 {
			t.Fatalf("parseProbeMemo(%q) accepted %+v", data, m)
		}
	})
}
