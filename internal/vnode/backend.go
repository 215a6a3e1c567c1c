package vnode

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// A Backend turns the spec of one machine start into a command. The
// supervisor starts the command, owns the process (stdout and stderr go to
// the node's console log, the process dies with the supervisor) and waits
// for it. A Backend holds no per-node state.
type Backend interface {
	// Name is "qemu" or "process".
	Name() string
	// Command returns the command that runs one machine: one boot of a VM,
	// or one life of an agent process.
	Command(m Machine) (*exec.Cmd, error)
	// ExitReason says in a few words why a machine exited; err is what
	// exec.Cmd.Wait returned.
	ExitReason(err error) (reason string, normal bool)
}

// Machine is what a Backend needs to start one machine of a vnode.
type Machine struct {
	Name, MAC, Model string
	Addr             netip.Addr // where the agent must be reachable, port AgentPort
	Settings         Settings
	ServerURL        string // where the agent reports its boots; may be empty
	ConsolePath      string // the node's console log, for backends that write it themselves
	// Accel is the accelerator the supervisor chose for this start, from
	// an Accelerated backend; empty for others.
	Accel string
}

// exitStatus returns the exit status in err, or -1 and the signal that
// killed the process.
func exitStatus(err error) (int, syscall.Signal) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1, 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return ee.ExitCode(), 0
}

// cleanEnv is the environment of machine processes: the supervisor's, minus
// WALT_* variables, which walt-node would read as its own settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALT_") {
			env = append(env, kv)
		}
	}
	return env
}

// agentFlags runs "walt-node --help" and returns the optional flags it
// knows among server, name, mac and model, so that images and binaries older
// than self-registration still boot.
func agentFlags(path string) (map[string]bool, error) {
	out, err := exec.Command(path, "--help").CombinedOutput()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("run %s --help: %w", path, err)
	}
	known := map[string]bool{}
	for _, f := range []string{"server", "name", "mac", "model"} {
		known[f] = strings.Contains(string(out), "  -"+f+" ")
	}
	return known, nil
}

// BackendConfig tells ChooseBackend what to run vnodes with.
type BackendConfig struct {
	// Kind is "auto" (or empty), "qemu" or "process". Auto picks QEMU when
	// qemu-system-x86_64 and the image are there, else the process backend
	// with a warning.
	Kind string
	// DataDir is the server's data directory; the image is looked for in
	// DataDir/images/default unless ImageDir is set.
	DataDir, ImageDir string
	// QEMUBinary, Accel and KVMDevice are passed on to QEMUConfig.
	QEMUBinary, Accel, KVMDevice string
	// AgentPath is walt-node for the process backend; empty: walt-node
	// next to the running executable, then in PATH.
	AgentPath string
	Logger    *slog.Logger
}

// DefaultImageDir returns where scripts/build-vnode-image.sh puts the
// default image for a data directory.
func DefaultImageDir(dataDir string) string {
	return filepath.Join(dataDir, "images", "default")
}

// ProbeCacheFile is where, in the data directory, the QEMU backend
// remembers the answer of its KVM trial boot for the current kernel boot.
const ProbeCacheFile = "kvm-probe.json"

// ChooseBackend returns the backend cfg asks for. It runs no machine: a
// QEMU backend's KVM trial boot is left to QEMUBackend.ProbeAccel.
func ChooseBackend(cfg BackendConfig) (Backend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	img := cfg.ImageDir
	if img == "" {
		img = DefaultImageDir(cfg.DataDir)
	}
	qcfg := QEMUConfig{Binary: cfg.QEMUBinary, ImageDir: img, Accel: cfg.Accel, KVMDevice: cfg.KVMDevice, Logger: log}
	if cfg.DataDir != "" {
		qcfg.ProbeCache = filepath.Join(cfg.DataDir, ProbeCacheFile)
	}
	switch cfg.Kind {
	case "qemu":
		return NewQEMUBackend(qcfg)
	case "process":
		return newProcess(cfg.AgentPath)
	case "", "auto":
		b, err := NewQEMUBackend(qcfg)
		if err == nil {
			return b, nil
		}
		log.Warn("vnodes run as walt-node processes, not VMs", "reason", err)
		return newProcess(cfg.AgentPath)
	}
	return nil, fmt.Errorf("vnode backend %q: want auto, qemu or process", cfg.Kind)
}

func newProcess(agentPath string) (Backend, error) {
	if agentPath == "" {
		if exe, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(exe), "walt-node"); isExecutable(p) {
				agentPath = p
			}
		}
	}
	if agentPath == "" {
		p, err := exec.LookPath("walt-node")
		if err != nil {
			return nil, fmt.Errorf("process backend: %w", err)
		}
		agentPath = p
	}
	return NewProcessBackend(agentPath)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
