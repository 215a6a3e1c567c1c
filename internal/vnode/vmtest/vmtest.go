// Package vmtest holds helpers for tests that run machines (walt-node
// processes, QEMU VMs): building walt-node, finding the vnode image, telling
// live processes from dead ones, reading boot banners from a console log. It
// does not import package vnode, so vnode's own tests can use it.
package vmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// BuildAgent builds a static walt-node into dir and returns its path.
func BuildAgent(dir string) (string, error) {
	bin := filepath.Join(dir, "walt-node")
	build := exec.Command("go", "build", "-o", bin, "github.com/walt-testbed/walt/cmd/walt-node")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build walt-node: %v\n%s", err, out)
	}
	return bin, nil
}

// Image file names, as scripts/build-vnode-image.sh writes them.
const (
	kernelFile    = "vmlinuz"
	initramfsFile = "initramfs.cpio.gz"
)

// FindImage returns the vnode image in $WALT_VNODE_IMAGE or in walt-server's
// default data directory; in CI (CI=true) with QEMU installed and no image,
// it builds one with scripts/build-vnode-image.sh into tmp, logging to
// stderr. It returns "" when there is no image.
func FindImage(tmp string) string {
	dirs := []string{os.Getenv("WALT_VNODE_IMAGE")}
	if os.Getuid() == 0 {
		dirs = append(dirs, "/var/lib/walt/images/default")
	} else if d, err := os.UserHomeDir(); err == nil {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			base = filepath.Join(d, ".local", "share")
		}
		dirs = append(dirs, filepath.Join(base, "walt", "images", "default"))
	}
	for _, d := range dirs {
		if d != "" && isFile(filepath.Join(d, kernelFile)) && isFile(filepath.Join(d, initramfsFile)) {
			return d
		}
	}
	if os.Getenv("CI") != "true" {
		return ""
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "" // the QEMU tests fail on their own, saying so
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build vnode image: %v\n", err)
		return ""
	}
	start := time.Now()
	data := filepath.Join(tmp, "data")
	cmd := exec.Command(filepath.Join(root, "scripts", "build-vnode-image.sh"), "--data", data)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build vnode image: %v\n", err)
		return ""
	}
	fmt.Fprintf(os.Stderr, "built vnode image in %s\n", time.Since(start).Round(time.Second))
	return filepath.Join(data, "images", "default")
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// ProcState returns the state letter of pid from /proc/<pid>/stat ("R",
// "S", "Z", ...) and its command name, or "" when the process is gone.
func ProcState(pid int) (state, comm string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", ""
	}
	s := string(data)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i || j+2 >= len(s) {
		return "", ""
	}
	return s[j+2 : j+3], s[i+1 : j]
}

// Alive reports whether pid runs: it exists and is not a zombie (PID 1 on
// these machines does not reap orphans, so kill -0 proves nothing).
func Alive(pid int) bool {
	st, _ := ProcState(pid)
	return st != "" && st != "Z" && st != "X"
}

// LiveChildren returns the live processes whose parent is ppid.
func LiveChildren(ppid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		j := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[j+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) && f[0] != "Z" && f[0] != "X" {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Banner is the line the vnode image's init prints on the serial console
// at each boot.
type Banner struct {
	BootID      string
	Name        string
	MemTotalKiB int
	CPUs        int
}

var bannerRE = regexp.MustCompile(`walt-vnode: boot_id=(\S+) name=(\S*) memtotal_kb=(\d+) cpus=(\d+)`)

// Banners returns the boot banners of a console log, oldest first.
func Banners(console []byte) []Banner {
	var out []Banner
	for _, m := range bannerRE.FindAllSubmatch(console, -1) {
		kb, _ := strconv.Atoi(string(m[3]))
		cpus, _ := strconv.Atoi(string(m[4]))
		out = append(out, Banner{BootID: string(m[1]), Name: string(m[2]), MemTotalKiB: kb, CPUs: cpus})
	}
	return out
}

// ProbeCache is the file where the QEMU backends of tests remember their
// KVM trial boot, shared by every test process: on a host whose /dev/kvm
// cannot run guests, only the first QEMU test after a kernel boot waits for
// the trial to time out.
func ProbeCache() string { return filepath.Join(os.TempDir(), "walt-test-kvm-probe.json") }
