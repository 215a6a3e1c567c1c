package agent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectBootMode(t *testing.T) {
	t.Parallel()
	// Three fake local partitions, mounted at paths with and without spaces.
	base := t.TempDir()
	plain := filepath.Join(base, "plain")
	volatile := filepath.Join(base, "vol disk")
	persistent := filepath.Join(base, "pers")
	for _, d := range []string{plain, filepath.Join(volatile, "walt_hybrid"), filepath.Join(persistent, "walt_hybrid")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(persistent, "walt_hybrid", ".persistent"), nil, 0o644)
	notExt4 := filepath.Join(base, "nfs")
	os.MkdirAll(filepath.Join(notExt4, "walt_hybrid"), 0o755)

	mounts := func(lines ...string) string {
		p := filepath.Join(t.TempDir(), "mounts")
		os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return p
	}
	line := func(dir, fstype string) string {
		return fmt.Sprintf("/dev/sda1 %s %s rw,relatime 0 0", strings.ReplaceAll(dir, " ", `\040`), fstype)
	}
	emptyRoot := t.TempDir()
	envRoot := t.TempDir()
	os.MkdirAll(filepath.Join(envRoot, "bin"), 0o755)
	os.WriteFile(filepath.Join(envRoot, "bin/walt-env"), []byte("export walt_server_ip='10.0.0.1'\nexport walt_boot_mode='network'\nexport walt_boot_mode='hybrid-persistent'\n"), 0o644)

	tests := []struct {
		name   string
		root   string
		mounts string
		want   BootMode
	}{
		{"no mounts file", emptyRoot, filepath.Join(base, "absent"), Network},
		{"no hybrid partition", emptyRoot, mounts(line(plain, "ext4")), Network},
		{"hybrid directory not on ext4", emptyRoot, mounts(line(notExt4, "nfs")), Network},
		{"volatile", emptyRoot, mounts(line(plain, "ext4"), line(volatile, "ext4")), HybridVolatile},
		{"persistent", emptyRoot, mounts(line(persistent, "ext4")), HybridPersistent},
		{"walt-env wins, last line counts", envRoot, mounts(line(volatile, "ext4")), HybridPersistent},
	}
	for _, tt := range tests {
		if got := DetectBootMode(tt.root, tt.mounts); got != tt.want {
			t.Errorf("%s: DetectBootMode() = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDetectVirtual(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for content, want := range map[string]bool{"QEMU\n": true, "QEMU": true, "Raspberry Pi Foundation\n": false, "": false} {
		p := filepath.Join(dir, "sys_vendor")
		os.WriteFile(p, []byte(content), 0o644)
		if got := DetectVirtual(p); got != want {
			t.Errorf("DetectVirtual(%q) = %v, want %v", content, got, want)
		}
	}
	if DetectVirtual(filepath.Join(dir, "absent")) {
		t.Error("DetectVirtual(absent file) = true")
	}
}

func TestServerAddrFromEnvFile(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "bin"), 0o755)
	env := "export walt_server_ip=192.168.152.1\nwalt_server_ip='not an address'\nexport walt_server_ip=\"::ffff:10.0.0.1\"\n"
	os.WriteFile(filepath.Join(root, "bin", "walt-env"), []byte(env), 0o644)
	if got, ok := ServerAddrFromEnvFile(root); !ok || got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("ServerAddrFromEnvFile() = %v, %v; want 10.0.0.1 (the last valid one, unmapped)", got, ok)
	}
	if got, ok := ServerAddrFromEnvFile(t.TempDir()); ok {
		t.Errorf("ServerAddrFromEnvFile(no walt-env) = %v, true", got)
	}
}

// FuzzEnvValues checks the walt-env reader on any text: every value it
// returns comes from one line of the text assigning the key.
func FuzzEnvValues(f *testing.F) {
	f.Add("export walt_server_ip='192.168.152.1'\nwalt_boot_mode=network\n")
	f.Add("  export   walt_server_ip=\"\"\r\nwalt_server_ip=\n")
	f.Fuzz(func(t *testing.T, text string) {
		for _, v := range envValues([]byte(text), "walt_server_ip") {
			if strings.Contains(v, "\n") || !strings.Contains(text, v) {
				t.Fatalf("envValues(%q) returned %q, not from one line", text, v)
			}
		}
	})
}
