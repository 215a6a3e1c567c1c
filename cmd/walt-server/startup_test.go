package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
	"github.com/walt-testbed/walt/internal/vnode"

	_ "modernc.org/sqlite"
)

// The start-up tests use 127.64.0.0/16.

// fakeQEMUHost puts a qemu-system-x86_64 in PATH whose KVM trial boot
// never answers (the host kind whose /dev/kvm opens but runs no guest),
// and a vnode image in dataDir. Machines it starts sleep until killed.
func fakeQEMUHost(t *testing.T, dataDir string) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\nexec sleep 600\n"
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	fakeImage(t, dataDir)
}

// fakeImage puts files where walt-server looks for the vnode image.
func fakeImage(t *testing.T, dataDir string) {
	t.Helper()
	img := vnode.DefaultImageDir(dataDir)
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{vnode.KernelFile, vnode.InitramfsFile} {
		if err := os.WriteFile(filepath.Join(img, f), []byte("fake"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A KVM trial boot that hangs delays nothing: the readiness endpoint
// answers while it runs, says vnodes run under tcg meanwhile, and the
// server stops cleanly (the trial's QEMU killed) before it ends.
func TestReadyWhileKVMTrialHangs(t *testing.T) {
	dataDir := t.TempDir()
	fakeQEMUHost(t, dataDir)
	addr := "127.64.0.1:" + freePort(t, "127.64.0.1")
	token := userToken(t, "alice", "--data", dataDir)
	ctx, cancel := context.WithCancel(t.Context())
	log := &testutil.Buffer{}
	done := make(chan error, 1)
	start := time.Now()
	// /dev/null stands for a KVM device that opens, whatever this host has.
	go func() {
		done <- run(ctx, []string{"--data", dataDir, "--listen", addr, "--vnode-backend", "qemu", "--kvm-device", os.DevNull}, io.Discard, log)
	}()
	c, err := client.New("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithToken(token)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	h, err := c.WaitHealthy(wctx, 5*time.Millisecond)
	wcancel()
	if err != nil {
		t.Fatalf("no readiness answer: %v\n%s", err, log)
	}
	t.Logf("readiness answered %s after start", time.Since(start).Round(time.Millisecond))
	if !slices.Contains(h.Starting, "kvm trial boot") {
		t.Errorf("readiness answer %+v: the trial boot should still be running (it never ends)", h)
	}
	if h.Status != "ok" || h.Store != "sqlite" || h.VNodes.Backend != "qemu" || h.VNodes.Accel != "tcg" || !h.VNodes.AccelProbing {
		t.Errorf("readiness answer %+v, want ok, sqlite, qemu under tcg while probing", h)
	}
	if _, err := c.Devices(ctx); err != nil {
		t.Errorf("the API does not answer while the trial runs: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("walt-server did not stop within 30 s of its context's end:\n%s", log)
	}
	if strings.Contains(log.String(), "kvm works") {
		t.Errorf("the hanging trial was taken for a success:\n%s", log)
	}
}

// A host without a KVM device: vnodes run under tcg at once, no trial.
func TestReadyWithoutKVMDevice(t *testing.T) {
	dataDir := t.TempDir()
	fakeQEMUHost(t, dataDir)
	addr := "127.64.0.2:" + freePort(t, "127.64.0.2")
	c, log, _ := startServer(t, addr, "--data", dataDir, "--vnode-backend", "qemu", "--kvm-device", filepath.Join(t.TempDir(), "kvm"))
	h, err := c.Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.VNodes.Accel != "tcg" || h.VNodes.AccelProbing || !strings.HasPrefix(h.VNodes.AccelReason, "no ") || slices.Contains(h.Starting, "kvm trial boot") {
		t.Errorf("readiness answer %+v, want tcg chosen at once (no device)", h)
	}
	if !strings.Contains(log.String(), "accel=tcg") {
		t.Errorf("the log does not say vnodes run under tcg:\n%s", log)
	}
}

// Each start-up error a new user can meet is one line naming the cause,
// and walt-server exits at once.
func TestStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.64.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	newer := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(newer, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", filepath.Join(newer, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	noImage := t.TempDir()
	fakeQEMUHost(t, t.TempDir()) // QEMU in PATH, but no image in noImage
	emptyPath := t.TempDir()

	for _, tc := range []struct {
		name string
		args []string
		path string // PATH for the case; "" keeps the test's
		want string
	}{
		{"port taken", []string{"--data", t.TempDir(), "--listen", taken.Addr().String()}, "", "address already in use"},
		{"data directory not writable", []string{"--data", filepath.Join(file, "data"), "--listen", "127.64.0.4:0"}, "", "data directory " + filepath.Join(file, "data")},
		{"data directory is a file", []string{"--data", file, "--listen", "127.64.0.4:0"}, "", "data directory " + file},
		{"newer schema", []string{"--data", newer, "--listen", "127.64.0.4:0"}, "", "newer than this program's"},
		{"qemu asked for, missing", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--vnode-backend", "qemu"}, emptyPath, "--vnode-backend qemu: qemu backend"},
		{"qemu asked for, no image", []string{"--data", noImage, "--listen", "127.64.0.4:0", "--vnode-backend", "qemu"}, "", "vnode image"},
		{"too many connections", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--max-conns", "0"}, "", "--max-conns: must be between 1 and"},
		{"fan-out out of bounds", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--fanout", "0"}, "", "--fanout: must be between 1 and 1048576 (got 0)"},
		{"reply timeout out of bounds", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--reply-timeout", "2562047h"}, "", "--reply-timeout: must be between 1ms and 10m"},
		{"powersave out of bounds", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--powersave", "-1s"}, "", "--powersave: must be between 0s and"},
		{"CPU profile in a missing directory", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--cpuprofile", filepath.Join(file, "cpu.prof")}, "", "--cpuprofile: open " + filepath.Join(file, "cpu.prof")},
		{"bad accelerator", []string{"--data", t.TempDir(), "--listen", "127.64.0.4:0", "--vnode-backend", "qemu", "--vnode-accel", "hvf"}, "", `"hvf"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			log := &testutil.Buffer{}
			err := run(ctx, tc.args, io.Discard, log)
			if ctx.Err() != nil {
				t.Fatalf("run() still running after 30 s, want an error at once\n%s", log)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run() = %v, want an error containing %q\n%s", err, tc.want, log)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("run() error spans lines: %q", err)
			}
		})
	}
}

// The data directory is made private, whoever created it.
func TestDataDirPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := prepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("data directory mode %o, want 700", m)
	}
}

// freePort returns a port free on ip at the time of the call.
func freePort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// Started as an unprivileged user, as a service manager would: a data
// directory it cannot create is one clear line, and a KVM device it cannot
// open means tcg at once, not a trial. Runs as root only (CI does), which
// can take another user's identity with setpriv.
func TestStartupAsUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run walt-server as another user")
	}
	if testing.Short() {
		t.Skip("builds walt-server")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	// A tree the user nobody can read but not write, holding the binary.
	root, err := os.MkdirTemp("", "walt-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "walt-server")
	if err := copyFile(buildServer(t), bin); err != nil {
		t.Fatal(err)
	}
	// A QEMU stand-in nobody can run (fakeQEMUHost's is in a private
	// directory).
	qemuDir := filepath.Join(root, "bin")
	if err := os.Mkdir(qemuDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(qemuDir, "qemu-system-x86_64"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(t.Context(), setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Env = append(os.Environ(), "WALT_DB=", "PATH="+qemuDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd
	}

	out, err := nobody("--data", filepath.Join(root, "data"), "--listen", "127.64.0.5:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "data directory "+filepath.Join(root, "data")) || !strings.Contains(string(out), "permission denied") {
		t.Errorf("unwritable data directory: err %v, output %q; want exit 1 naming the directory and the denial", err, out)
	}
	if n := strings.Count(strings.TrimSpace(string(out)), "\n"); n > 0 {
		t.Errorf("unwritable data directory: %d lines of output, want 1:\n%s", n+1, out)
	}

	// A KVM device only root may open, and a data directory with an image.
	data := filepath.Join(root, "data2")
	fakeImage(t, data)
	if err := os.Chown(data, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	kvm := filepath.Join(root, "kvm")
	if err := os.WriteFile(kvm, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.64.0.6:" + freePort(t, "127.64.0.6")
	cmd := nobody("--data", data, "--listen", addr, "--vnode-backend", "qemu", "--kvm-device", kvm)
	log := &testutil.Buffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	c, err := client.New("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	h, err := c.WaitHealthy(wctx, 5*time.Millisecond)
	cancel()
	if err != nil {
		t.Fatalf("no readiness answer from walt-server run as nobody: %v\n%s", err, log)
	}
	if h.VNodes.Accel != "tcg" || h.VNodes.AccelProbing || !strings.Contains(h.VNodes.AccelReason, "permission denied") {
		t.Errorf("readiness answer %+v: want tcg at once, the device's denial as reason", h.VNodes)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

func TestVersion(t *testing.T) {
	var stdout, stderr testutil.Buffer
	if err := run(t.Context(), []string{"--version"}, &stdout, &stderr); err != nil || !strings.HasPrefix(stdout.String(), "walt-server ") {
		t.Errorf("walt-server --version = %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}
