package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/agent"
	"github.com/walt-testbed/walt/internal/testutil"
	"golang.org/x/sys/unix"
)

// kexecImage builds an image root whose network-mode hook is walt-node, as
// on default PC images, with a (fake) kernel for the running release, and
// returns the root and the kernel's path.
func kexecImage(t *testing.T) (root, kernel string) {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	root = t.TempDir()
	for _, dir := range []string{"bin", "boot"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(binary, filepath.Join(root, "bin", "walt-network-reboot")); err != nil {
		t.Fatal(err)
	}
	kernel = filepath.Join(root, "boot", "vmlinuz-"+release)
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, kernel
}

// TestKexecHookThroughAgent installs walt-node as an image's network-mode
// hook and reboots under the log action: the hook finds the image's
// kernel, says what it would load, and declines, so the agent goes on at
// once with the forced reboot it records.
func TestKexecHookThroughAgent(t *testing.T) {
	root, kernel := kexecImage(t)
	journal := filepath.Join(t.TempDir(), "journal")
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(binary, "--listen", addr, "--root", root, "--reboot-action", "log:"+journal, "--boot-mode", "network", "--virtual", "false")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	rebootWhenUp(t, addr, "kexec.allow=true")
	want := "hook /bin/walt-network-reboot kexec.allow=true\nforce\n"
	testutil.EventuallyNil(t, 10*time.Second, "the reboot journal", func() error {
		if b, _ := os.ReadFile(journal); string(b) != want {
			return fmt.Errorf("journal = %q, want %q\nstderr:\n%s", b, want, &stderr)
		}
		return nil
	})
	if out := stderr.String(); !strings.Contains(out, "dry run") || !strings.Contains(out, kernel) || !strings.Contains(out, "hook declined") {
		t.Errorf("agent log does not show the hook's dry run with %s and its decline:\n%s", kernel, out)
	}
}

// TestKexecHookCannotBeRedirected sends an agent configured never to
// reboot (exit action) a REBOOT naming another action and another root,
// one holding no kernel (so that even the old, vulnerable agent could not
// load anything here). The hook must keep the agent's action and root: a
// dry run of the image's own kernel, then the exit reboot.
func TestKexecHookCannotBeRedirected(t *testing.T) {
	root, kernel := kexecImage(t)
	evilRoot := t.TempDir()
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(binary, "--listen", addr, "--root", root, "--reboot-action", "exit", "--boot-mode", "network", "--virtual", "false")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	rebootWhenUp(t, addr, "walt_reboot_action=system", "PATH=/tmp/evil", "walt_root="+evilRoot, "LD_PRELOAD=/x.so", "kexec.allow=true")
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != agent.ExitRebooted {
		t.Errorf("walt-node ended with %v, want exit status %d", err, agent.ExitRebooted)
	}
	out := stderr.String()
	if !strings.Contains(out, `dry run (reboot action \"exit\")`) || !strings.Contains(out, kernel) {
		t.Errorf("hook did not dry-run the image's kernel %s under the exit action:\n%s", kernel, out)
	}
	if strings.Contains(out, "no kernel image") || strings.Contains(out, "not found") {
		t.Errorf("hook was redirected to %s or lost its PATH:\n%s", evilRoot, out)
	}
}

func TestKexecHookByHand(t *testing.T) {
	cmd := exec.Command(binary, "kexec-reboot")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "run by walt-node's reboot procedure only") {
		t.Errorf("walt-node kexec-reboot by hand = %v, %q; want status 2 and a clear message", err, out)
	}
}
