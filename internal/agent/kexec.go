package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The kexec reboot hook: default PC images link /bin/walt-network-reboot,
// /bin/walt-hybrid-reboot and /bin/walt-reboot to walt-node, which then
// restarts the node into its image's kernel without going through the
// firmware (seconds instead of minutes on server-class machines). Unlike
// WalT's hook it needs no server round trip and no iPXE emulation: the
// server passes kexec.allow in the REBOOT request, and the kernel is the
// image's own, under /boot.
//
// Every reason not to kexec is a decline (exit status HookDeclined), so the
// agent goes on at once with the plain procedure of the boot mode.

// KexecHookNames are the hook paths under which walt-node acts as the kexec
// hook (matched on the base name it was started as).
var KexecHookNames = []string{"walt-network-reboot", "walt-hybrid-reboot", "walt-reboot"}

// KexecBootParam is the parameter the hook adds to the command line of the
// kernel it starts (a fact of walt's, not of WalT's): at boot, walt-node
// finds it in /proc/cmdline and reports node_method kexec, so the server
// and the experiment know this boot skipped the firmware. The hook drops
// any walt.boot= parameter of the running kernel first, so that kexec
// after kexec carries one.
const KexecBootParam = "walt.boot=kexec"

// NodeMethodKexec is the node method of a boot the kexec hook started.
const NodeMethodKexec = "kexec"

// CmdlineFile is the running kernel's command line.
const CmdlineFile = "/proc/cmdline"

// maxCmdline bounds the command line read (Linux's is at most a few KiB).
const maxCmdline = 64 << 10

// withKexecParam returns cmdline with KexecBootParam as its only
// walt.boot= parameter; a command line without any is kept as it is,
// quoted values included, the parameter added at its end.
func withKexecParam(cmdline string) string {
	if cmdline = strings.TrimSpace(cmdline); !strings.Contains(cmdline, "walt.boot=") {
		return strings.TrimSpace(cmdline + " " + KexecBootParam)
	}
	var out []string
	for _, f := range strings.Fields(cmdline) {
		if !strings.HasPrefix(f, "walt.boot=") {
			out = append(out, f)
		}
	}
	return strings.Join(append(out, KexecBootParam), " ")
}

// NodeMethod returns the node method a kernel command line tells:
// NodeMethodKexec when its last walt.boot= parameter is KexecBootParam,
// else empty.
func NodeMethod(cmdline string) string {
	method := ""
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "walt.boot=") {
			method = ""
			if f == KexecBootParam {
				method = NodeMethodKexec
			}
		}
	}
	return method
}

// ReadNodeMethod returns the node method of the command line in path
// (CmdlineFile on a node); empty if it cannot be read.
func ReadNodeMethod(path string) string {
	return NodeMethod(readCmdline(path))
}

func readCmdline(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxCmdline))
	return string(b)
}

// KexecPlan is what the hook loads and how it jumps.
type KexecPlan struct {
	Kernel  string
	Initrd  string // empty: none
	Cmdline string
	// Orderly is true in hybrid boot modes: the OS shuts down its services
	// and systemd jumps into the loaded kernel at the end.
	Orderly bool
}

// Kexecer loads a kernel and jumps into it. Tests use a fake; the hook
// uses the real one only when the agent's reboot action is "system".
type Kexecer interface {
	Load(p KexecPlan) error
	Jump(p KexecPlan) error
}

// errDecline wraps every reason to decline.
var errDecline = errors.New("kexec declined")

func declinef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDecline, fmt.Sprintf(format, args...))
}

// kexecEnv is what the hook reads: the variables the agent sets for hooks
// (walt_boot_mode, vnode_mode, walt_root, walt_reboot_action, and the
// accepted REBOOT arguments, such as WALT_ARG_KEXEC_ALLOW) and the running
// kernel's release and command line. A peer cannot set any of these but
// the WALT_ARG_* ones: the agent filters REBOOT's arguments and sets its
// own variables last (see hookEnv).
type kexecEnv struct {
	getenv  func(string) string
	release string // uname -r
	cmdline string // /proc/cmdline
}

// planKexec decides what to load, or why not to kexec.
func planKexec(e kexecEnv) (KexecPlan, error) {
	if e.getenv("vnode_mode") == "1" {
		return KexecPlan{}, declinef("virtual nodes are restarted with their VM, not kexec")
	}
	if e.getenv(KexecAllowEnv) == "false" {
		return KexecPlan{}, declinef("Kexec is not allowed for this node (cf. walt node config)")
	}
	mode, err := ParseBootMode(e.getenv("walt_boot_mode"))
	if err != nil {
		return KexecPlan{}, declinef("boot mode: %v", err)
	}
	root := e.getenv("walt_root")
	if root == "" {
		root = "/"
	}
	p := KexecPlan{Cmdline: withKexecParam(e.cmdline), Orderly: mode.Hybrid()}
	p.Kernel = firstFile(root, "/boot/vmlinuz-"+e.release, "/boot/vmlinuz", "/vmlinuz")
	if p.Kernel == "" {
		return KexecPlan{}, declinef("no kernel image for release %s in %s (looked for boot/vmlinuz-%s, boot/vmlinuz, vmlinuz)", e.release, root, e.release)
	}
	p.Initrd = firstFile(root, "/boot/initrd.img-"+e.release, "/boot/initrd.img", "/initrd.img")
	if p.Orderly && !systemdRunning(root) {
		return KexecPlan{}, declinef("an orderly kexec in %s mode needs systemd (kexec.service)", mode)
	}
	return p, nil
}

func firstFile(root string, paths ...string) string {
	for _, p := range paths {
		full := filepath.Join(root, p)
		if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
			return full
		}
	}
	return ""
}

func systemdRunning(root string) bool {
	fi, err := os.Stat(filepath.Join(root, "/run/systemd/system"))
	return err == nil && fi.IsDir()
}

// RunKexecHook runs the hook and returns its exit status: 0 after handing
// over to the new kernel (or to systemd in hybrid mode), HookDeclined when
// the plain procedure should run instead, 2 when not run by walt-node.
// The real syscalls are used only when the agent's reboot action is
// "system"; otherwise the hook checks everything, says what it would do,
// and declines.
func RunKexecHook(getenv func(string) string, real Kexecer, out io.Writer) int {
	if getenv("walt_boot_mode") == "" {
		fmt.Fprintln(out, "walt-node kexec hook: run by walt-node's reboot procedure only (walt_boot_mode is not set)")
		return 2
	}
	e := kexecEnv{getenv: getenv, release: kernelRelease(), cmdline: readCmdline(CmdlineFile)}
	p, err := planKexec(e)
	if err == nil && getenv("walt_reboot_action") != "system" {
		err = declinef("dry run (reboot action %q): would load kernel %s initrd %q cmdline %q", getenv("walt_reboot_action"), p.Kernel, p.Initrd, p.Cmdline)
	}
	if err == nil {
		err = kexec(real, p)
	}
	if err != nil {
		fmt.Fprintln(out, "walt-node kexec hook:", err)
		return HookDeclined
	}
	return 0
}

func kexec(k Kexecer, p KexecPlan) error {
	if err := k.Load(p); err != nil {
		return declinef("load %s: %v", p.Kernel, err)
	}
	if err := k.Jump(p); err != nil {
		return declinef("jump into %s: %v", p.Kernel, err)
	}
	return nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// SystemKexec is the real Kexecer: kexec_file_load(2), then reboot(2)
// with LINUX_REBOOT_CMD_KEXEC, or `systemctl kexec` for an orderly jump.
type SystemKexec struct{}

// Load implements Kexecer.
func (SystemKexec) Load(p KexecPlan) error {
	kernel, err := os.Open(p.Kernel)
	if err != nil {
		return err
	}
	defer kernel.Close()
	initrdFd, flags := -1, unix.KEXEC_FILE_NO_INITRAMFS
	if p.Initrd != "" {
		initrd, err := os.Open(p.Initrd)
		if err != nil {
			return err
		}
		defer initrd.Close()
		initrdFd, flags = int(initrd.Fd()), 0
	}
	return unix.KexecFileLoad(int(kernel.Fd()), initrdFd, p.Cmdline, flags)
}

// Jump implements Kexecer.
func (SystemKexec) Jump(p KexecPlan) error {
	if p.Orderly {
		out, err := exec.Command("systemctl", "kexec").CombinedOutput()
		if err != nil {
			return fmt.Errorf("systemctl kexec: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	// Network mode: the root is read-only and the overlay in RAM holds
	// nothing to save, so jump at once.
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
}
