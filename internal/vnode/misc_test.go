package vnode

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/testutil"
)

// TestWriteInitramfs reads the archive back with a minimal newc parser.
func TestWriteInitramfs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "init"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "data"), []byte("hello"), 0o644)
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	var buf bytes.Buffer
	if err := WriteInitramfs(&buf, root); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		mode, rmaj, rmin uint64
		data             string
	}
	got := map[string]entry{}
	var order []string
	for off := 0; off < len(raw); {
		h := string(raw[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		field := func(i int) uint64 {
			v, _ := strconv.ParseUint(h[6+8*i:14+8*i], 16, 64)
			return v
		}
		size, nameLen := int(field(6)), int(field(11))
		name := string(raw[off+110 : off+110+nameLen-1])
		off = (off + 110 + nameLen + 3) &^ 3
		data := string(raw[off : off+size])
		off = (off + size + 3) &^ 3
		if name == "TRAILER!!!" {
			break
		}
		got[name] = entry{field(1), field(9), field(10), data}
		order = append(order, name)
	}
	for name, want := range map[string]entry{
		"init":        {0o100755, 0, 0, "#!/bin/sh\n"},
		"bin/data":    {0o100644, 0, 0, "hello"},
		"bin/sh":      {0o120777, 0, 0, "busybox"},
		"bin":         {0o040755, 0, 0, ""},
		"dev":         {0o040755, 0, 0, ""},
		"dev/console": {0o020600, 5, 1, ""},
	} {
		if got[name] != want {
			t.Errorf("entry %s = %+v, want %+v", name, got[name], want)
		}
	}
	if len(got) != 6 {
		t.Errorf("entries %v, want 6", order)
	}
}

func TestChooseBackendFallsBackToProcess(t *testing.T) {
	b, err := ChooseBackend(BackendConfig{DataDir: t.TempDir(), QEMUBinary: "/nonexistent/qemu", AgentPath: agentBin, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "process" {
		t.Errorf("backend %s, want process", b.Name())
	}
	if _, err := ChooseBackend(BackendConfig{Kind: "qemu", DataDir: t.TempDir(), QEMUBinary: "/nonexistent/qemu"}); err == nil {
		t.Error("Kind qemu without QEMU succeeded")
	}
	if _, err := ChooseBackend(BackendConfig{Kind: "xen"}); err == nil || !strings.Contains(err.Error(), `"xen"`) {
		t.Errorf("Kind xen: %v", err)
	}
}

// TestFollowConsole follows a process vnode's console across a hard reboot
// and a rotation of the log.
func TestFollowConsole(t *testing.T) {
	s := startSupervisor(t, processBackend(t), "127.209.0.0/16")
	if err := s.Create(Spec{Name: "con1", Settings: zeroDelay()}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, s, "con1", 1, 30*time.Second)
	var out testutil.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- FollowConsole(ctx, s.ConsolePath("con1"), &out, true) }()
	testutil.Eventually(t, 10*time.Second, "machine 1's start line", func() bool {
		return strings.Contains(out.String(), "starting machine 1 (process")
	})
	// Rotate the log by hand, as the supervisor does beyond its limit.
	if err := os.Rename(s.ConsolePath("con1"), s.ConsolePath("con1")+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.HardReboot(t.Context(), "con1"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "machine 2's start line in the new log", func() bool {
		return strings.Contains(out.String(), "starting machine 2 (process")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("FollowConsole = %v, want nil", err)
	}
	if !strings.Contains(out.String(), "machine 1 exited: killed by hard reboot") {
		t.Errorf("console lacks machine 1's exit line:\n%s", out.String())
	}
}
