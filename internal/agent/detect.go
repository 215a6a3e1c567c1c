package agent

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Where detection looks on a real node.
const (
	SysVendorFile = "/sys/class/dmi/id/sys_vendor"
	MountsFile    = "/proc/self/mounts"
)

// DetectVirtual reports whether the machine is a QEMU virtual machine, as
// WalT decides it: the DMI system vendor (read from sysVendorFile) is QEMU.
func DetectVirtual(sysVendorFile string) bool {
	b, err := os.ReadFile(sysVendorFile)
	return err == nil && string(bytes.TrimSpace(b)) == "QEMU"
}

// DetectBootMode finds the boot mode of the node. WalT's init writes it to
// <root>/bin/walt-env (export walt_boot_mode='...'), which wins when present;
// otherwise the mounted ext4 file systems listed in mountsFile are searched
// for a walt_hybrid directory at their root, holding a .persistent file for
// the persistent variant. A node with neither booted from the network.
func DetectBootMode(root, mountsFile string) BootMode {
	if m, ok := bootModeFromEnvFile(filepath.Join(root, "bin/walt-env")); ok {
		return m
	}
	f, err := os.Open(mountsFile)
	if err != nil {
		return Network
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != "ext4" {
			continue
		}
		dir := filepath.Join(unescapeMount(fields[1]), "walt_hybrid")
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ".persistent")); err == nil {
			return HybridPersistent
		}
		return HybridVolatile
	}
	return Network
}

// bootModeFromEnvFile reads the last walt_boot_mode assignment of a
// walt-env file.
func bootModeFromEnvFile(path string) (BootMode, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	var mode BootMode
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
		v, ok := strings.CutPrefix(line, "walt_boot_mode=")
		if !ok {
			continue
		}
		if m, err := ParseBootMode(strings.Trim(v, `'"`)); err == nil {
			mode, found = m, true
		}
	}
	return mode, found
}

// unescapeMount decodes the octal escapes (\040 for a space) of a mount
// point in /proc/self/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
