package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// BootMode is how the node booted: from the network with a RAM overlay, or
// from a local copy of the image.
type BootMode string

const (
	Network          BootMode = "network"
	HybridVolatile   BootMode = "hybrid-volatile"
	HybridPersistent BootMode = "hybrid-persistent"
)

// ParseBootMode checks a boot mode name.
func ParseBootMode(s string) (BootMode, error) {
	switch m := BootMode(s); m {
	case Network, HybridVolatile, HybridPersistent:
		return m, nil
	}
	return "", fmt.Errorf("invalid boot mode %q: want network, hybrid-volatile or hybrid-persistent", s)
}

// Hybrid reports whether the node runs from a local disk, where services
// must be shut down in order before rebooting.
func (m BootMode) Hybrid() bool { return m == HybridVolatile || m == HybridPersistent }

// Kind is a reboot procedure.
type Kind int

const (
	// Force reboots at once, without stopping services ("reboot -f").
	Force Kind = iota + 1
	// Orderly asks the OS to shut down and reboot, forcing it after a deadline.
	Orderly
	// Hook runs the image's reboot hook.
	Hook
)

func (k Kind) String() string {
	switch k {
	case Force:
		return "force"
	case Orderly:
		return "orderly"
	case Hook:
		return "hook"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Step is one decided reboot procedure.
type Step struct {
	Kind Kind
	Path string   // hook path inside the image (Hook only)
	Args []string // REBOOT arguments passed to the hook (Hook only)
}

// String renders the step as written in a log:FILE journal: "force",
// "orderly" or "hook <path> [args...]".
func (s Step) String() string {
	if s.Kind != Hook {
		return s.Kind.String()
	}
	return strings.Join(append([]string{"hook", s.Path}, s.Args...), " ")
}

// Hook paths, inside the image.
const (
	NetworkHook       = "/bin/walt-network-reboot"
	LegacyNetworkHook = "/bin/walt-reboot"
	HybridHook        = "/bin/walt-hybrid-reboot"
)

// plainStep is the procedure used when there is no hook or a hook declined:
// a network-booted node has nothing worth saving (RAM overlay), a hybrid one
// shuts its services down.
func plainStep(mode BootMode) Step {
	if mode.Hybrid() {
		return Step{Kind: Orderly}
	}
	return Step{Kind: Force}
}

// NotExecutableError is returned by FirstStep when the hook to use exists but
// cannot be executed. The node then refuses to reboot and the server
// hard-reboots it, as WalT does.
type NotExecutableError struct{ Path string }

func (e *NotExecutableError) Error() string {
	return e.Path + " is not executable on image"
}

// FirstStep decides how to start a reboot. Hooks are looked up under root,
// first existing one wins: network mode tries NetworkHook then
// LegacyNetworkHook, hybrid modes try HybridHook. Virtual nodes never use
// hooks: a real restart of the VM process is what applies new VM settings.
func FirstStep(root string, mode BootMode, virtual bool, args []string) (Step, error) {
	if virtual {
		return plainStep(mode), nil
	}
	candidates := []string{NetworkHook, LegacyNetworkHook}
	if mode.Hybrid() {
		candidates = []string{HybridHook}
	}
	for _, p := range candidates {
		fi, err := os.Stat(filepath.Join(root, p))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return Step{}, fmt.Errorf("cannot check %s: %w", p, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return Step{}, &NotExecutableError{Path: p}
		}
		return Step{Kind: Hook, Path: p, Args: args}, nil
	}
	return plainStep(mode), nil
}
