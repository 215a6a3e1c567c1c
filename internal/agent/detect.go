package agent

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
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

// bootModeFromEnvFile reads the last valid walt_boot_mode assignment of a
// walt-env file.
func bootModeFromEnvFile(path string) (BootMode, bool) {
	var mode BootMode
	found := false
	for _, v := range envFileValues(path, "walt_boot_mode") {
		if m, err := ParseBootMode(v); err == nil {
			mode, found = m, true
		}
	}
	return mode, found
}

// ServerAddrFromEnvFile returns the WalT server's address that WalT's init
// writes to <root>/bin/walt-env (export walt_server_ip=...): the last valid
// assignment, if any.
func ServerAddrFromEnvFile(root string) (netip.Addr, bool) {
	var addr netip.Addr
	for _, v := range envFileValues(filepath.Join(root, "bin/walt-env"), "walt_server_ip") {
		if a, err := netip.ParseAddr(v); err == nil {
			addr = a.Unmap()
		}
	}
	return addr, addr.IsValid()
}

// envFileValues returns the values assigned to key in a walt-env file
// (key=value or export key=value lines, the value maybe quoted), in order.
// The file is read up to maxEnvFile bytes.
func envFileValues(path, key string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEnvFile))
	if err != nil {
		return nil
	}
	return envValues(b, key)
}

// envValues returns the values assigned to key in the text of a walt-env
// file, in order.
func envValues(b []byte, key string) []string {
	var values []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			values = append(values, strings.Trim(v, `'"`))
		}
	}
	return values
}

// maxEnvFile bounds how much of a walt-env file is read.
const maxEnvFile = 1 << 20

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
