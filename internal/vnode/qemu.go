package vnode

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Files of a vnode image directory, as scripts/build-vnode-image.sh writes them.
const (
	KernelFile    = "vmlinuz"
	InitramfsFile = "initramfs.cpio.gz"
)

// QEMUConfig configures the QEMU backend.
type QEMUConfig struct {
	// Binary is qemu-system-x86_64's path; empty: looked up in PATH.
	Binary string
	// ImageDir holds vmlinuz and initramfs.cpio.gz.
	ImageDir string
	// Accel is "auto" (the default: KVM when a trial boot proves it
	// works, TCG otherwise), "kvm" or "tcg".
	Accel string
	// KVMDevice is the KVM device auto looks for; default /dev/kvm.
	KVMDevice string
	// ProbeTimeout bounds the KVM trial boot; default 20 s.
	ProbeTimeout time.Duration
	// ProbeCache is the file remembering the trial boot's answer for the
	// current kernel boot; empty: nothing is remembered.
	ProbeCache string
	Logger     *slog.Logger
}

// QEMUBackend boots the vnode image in qemu-system-x86_64 with -no-reboot,
// so that a guest reboot makes QEMU exit; the supervisor starts it again.
// The guest has user-mode networking; the vnode's loopback address, port
// 12346, is forwarded to the agent in the guest, and the guest reaches the
// host's 127.0.0.1 as 10.0.2.2. The serial console is appended to the
// node's console log.
type QEMUBackend struct {
	binary, kernel, initrd string
	hostCPUs               int
	log                    *slog.Logger

	kvmDevice, probeCache string
	probeTimeout          time.Duration
	probeOnce             sync.Once
	probed                chan struct{} // closed when ProbeAccel has settled

	mu    sync.Mutex
	accel AccelStatus // +checklocks:mu
}

var (
	_ Backend     = (*QEMUBackend)(nil)
	_ Accelerated = (*QEMUBackend)(nil)
)

// NewQEMUBackend checks the binary and the image and makes a first choice
// of accelerator without running QEMU (see initialAccel). With Accel "auto"
// and a KVM device that opens, machines start under TCG until ProbeAccel
// has run a trial boot under KVM, unless the answer of an earlier trial in
// the same kernel boot is remembered in ProbeCache: /dev/kvm can exist on a
// CPU that cannot run KVM guests, and a trial can take its whole timeout.
func NewQEMUBackend(cfg QEMUConfig) (*QEMUBackend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu backend: %w", err)
	}
	b := &QEMUBackend{
		binary:       path,
		kernel:       filepath.Join(cfg.ImageDir, KernelFile),
		initrd:       filepath.Join(cfg.ImageDir, InitramfsFile),
		hostCPUs:     runtime.NumCPU(),
		log:          log,
		kvmDevice:    cmp.Or(cfg.KVMDevice, "/dev/kvm"),
		probeCache:   cfg.ProbeCache,
		probeTimeout: cmp.Or(cfg.ProbeTimeout, 20*time.Second),
		probed:       make(chan struct{}),
	}
	for _, f := range []string{b.kernel, b.initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("qemu backend: vnode image: %w (build it with scripts/build-vnode-image.sh)", err)
		}
	}
	if b.accel, err = b.initialAccel(cfg.Accel); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *QEMUBackend) Name() string { return "qemu" }

// probeKVM boots the image under KVM with walt.probe=1, which makes init
// print "probe ok" and power off at once.
func (b *QEMUBackend) probeKVM(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.binary,
		"-accel", "kvm", "-machine", "pc", "-cpu", "host", "-m", "128", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", b.kernel, "-initrd", b.initrd,
		"-append", "console=ttyS0 panic=-1 quiet walt.probe=1", "-serial", "stdio")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if bytes.Contains(out.Bytes(), []byte("walt-vnode: probe ok")) {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("kvm trial boot gave no sign of life in %s", timeout)
	}
	last := strings.TrimSpace(out.String())
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	return fmt.Errorf("kvm trial boot failed (%v): %s", err, last)
}

// Args returns QEMU's argument vector for m, under m.Accel (the
// backend's current accelerator when empty).
func (b *QEMUBackend) Args(m Machine) []string {
	accel := cmp.Or(m.Accel, b.Accel())
	cpus := m.Settings.CPUCores
	if accel == AccelTCG && cpus > b.hostCPUs {
		cpus = b.hostCPUs // more vCPUs than host CPUs only slows TCG down
	}
	cpu := "max"
	if accel == AccelKVM {
		cpu = "host"
	}
	cmdline := []string{"console=ttyS0", "panic=-1", "quiet", "walt.node.name=" + m.Name}
	if m.MAC != "" {
		cmdline = append(cmdline, "walt.node.mac="+m.MAC)
	}
	if m.Model != "" {
		cmdline = append(cmdline, "walt.node.model="+m.Model)
	}
	if s := guestURL(m.ServerURL); s != "" {
		cmdline = append(cmdline, "walt.server="+s)
	}
	nic := "virtio-net-pci,netdev=n0"
	if m.MAC != "" {
		nic += ",mac=" + m.MAC
	}
	return []string{
		"-name", "walt-vnode-" + m.Name,
		"-accel", accel, "-machine", "pc", "-cpu", cpu,
		"-m", strconv.Itoa(m.Settings.RAMMiB), "-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", b.kernel, "-initrd", b.initrd, "-append", strings.Join(cmdline, " "),
		"-chardev", "file,id=con,path=" + m.ConsolePath + ",append=on", "-serial", "chardev:con",
		"-netdev", "user,id=n0,hostfwd=tcp:" + net.JoinHostPort(m.Addr.String(), strconv.Itoa(AgentPort)) + "-:" + strconv.Itoa(AgentPort),
		"-device", nic,
	}
}

func (b *QEMUBackend) Command(m Machine) (*exec.Cmd, error) {
	if strings.ContainsAny(m.ConsolePath, ",") {
		return nil, fmt.Errorf("qemu backend: console path %q contains a comma", m.ConsolePath)
	}
	if strings.ContainsAny(m.ServerURL, " \t\n") {
		return nil, fmt.Errorf("qemu backend: server URL %q contains spaces", m.ServerURL)
	}
	cmd := exec.Command(b.binary, b.Args(m)...)
	cmd.Env = cleanEnv()
	return cmd, nil
}

func (b *QEMUBackend) ExitReason(err error) (string, bool) {
	if err == nil {
		return "guest rebooted or powered off (qemu exited)", true
	}
	switch code, sig := exitStatus(err); {
	case sig != 0:
		return "qemu killed by signal " + sig.String(), false
	case code >= 0:
		return "qemu failed (exit status " + strconv.Itoa(code) + ", see console log)", false
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return "qemu stopped", false
	}
	return "qemu failed: " + err.Error(), false
}

// guestURL rewrites a server URL on the host's 127.0.0.1 or localhost to
// 10.0.2.2, which QEMU's user-mode networking maps to the host's 127.0.0.1.
func guestURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		if p := u.Port(); p != "" {
			u.Host = "10.0.2.2:" + p
		} else {
			u.Host = "10.0.2.2"
		}
	}
	return u.String()
}
