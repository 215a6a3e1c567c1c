// Package vnodetest runs walt-server with virtual nodes for tests: an
// in-process server on a real SQLite file, served on 127.0.0.1, whose vnode
// supervisor runs walt-node processes or QEMU VMs that report their boots
// back to it.
package vnodetest

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/vnode"
	"github.com/walt-testbed/walt/internal/vnode/vmtest"
	"github.com/walt-testbed/walt/internal/wiring"
)

// Process returns a process backend running a walt-node built for the test.
func Process(t testing.TB) *vnode.ProcessBackend {
	t.Helper()
	bin, err := vmtest.BuildAgent(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := vnode.NewProcessBackend(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// QEMU returns a QEMU backend on the vnode image (vmtest.FindImage), or
// skips the test when QEMU or the image is missing, except in CI (CI=true)
// where it fails.
func QEMU(t testing.TB) *vnode.QEMUBackend {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if ci {
			t.Fatalf("CI=true but qemu-system-x86_64 is missing: %v (install qemu-system-x86)", err)
		}
		t.Skip("qemu-system-x86_64 not installed")
	}
	img := vmtest.FindImage(t.TempDir())
	if img == "" {
		if ci {
			t.Fatal("CI=true but no vnode image could be built (see scripts/build-vnode-image.sh output above)")
		}
		t.Skip("no vnode image: run scripts/build-vnode-image.sh or set WALT_VNODE_IMAGE")
	}
	b, err := vnode.NewQEMUBackend(vnode.QEMUConfig{ImageDir: img, Accel: "auto", ProbeCache: vmtest.ProbeCache(), Logger: Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.ProbeAccel(t.Context()) // the best accelerator from the first machine on
	return b
}

// Logger logs to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Env is a running server with virtual nodes.
type Env struct {
	URL     string
	Client  *client.Client
	Store   store.Store
	Sup     *vnode.Supervisor
	Server  *server.Server
	DataDir string
	// Tokens makes the accounts Client sends tokens of (the admin's
	// without a requester field, as servertest.Env.Client).
	Tokens *accountstest.Tokens

	once sync.Once
	stop func()
}

// Start runs a server whose vnodes run on b with agent addresses in prefix
// (a /16 of the test's own), on the SQLite file and vnode directories of
// dataDir (t.TempDir() when empty; a directory used before brings back its
// vnodes). The server and its vnodes stop at the end of the test, or at
// Stop.
func Start(t testing.TB, b vnode.Backend, prefix, dataDir string) *Env {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	pfx, err := netip.ParsePrefix(prefix)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dataDir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	log := Logger(t)
	sup, err := wiring.VNodes(wiring.VNodeConfig{Backend: b, DataDir: dataDir, AddrPrefix: pfx, ServerURL: url, StopGrace: 2 * time.Second, Logger: log})
	if err != nil {
		st.Close()
		ln.Close()
		t.Fatal(err)
	}
	rc := reboot.DefaultConfig()
	rc.ConnectTimeout = 2 * time.Second
	cfg := server.Config{Store: st, Reboot: rc, Logger: log}
	_, _, err = wiring.Drivers(&cfg, poe.DefaultConfig(), sup)
	var srv *server.Server
	if err == nil {
		srv, err = server.New(t.Context(), cfg)
	}
	if err == nil {
		err = srv.StartVNodes(t.Context())
	}
	if err != nil {
		st.Close()
		ln.Close()
		t.Fatal(err)
	}
	tokens := accountstest.NewTokens(t, st)
	c, err := client.New(url, tokens.HTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	supervise := server.Task{Run: func(ctx context.Context) {
		if err := sup.Run(ctx); err != nil {
			t.Errorf("supervisor Run() = %v, want nil", err)
		}
	}}
	wg.Go(func() {
		if err := srv.Serve(ctx, ln, supervise); err != nil { // as walt-server runs it
			t.Errorf("server Serve() = %v, want nil", err)
		}
	})
	e := &Env{URL: url, Client: c, Store: st, Sup: sup, Server: srv, DataDir: dataDir, Tokens: tokens}
	e.stop = func() {
		cancel()
		wg.Wait()
		st.Close()
	}
	t.Cleanup(e.Stop)
	return e
}

// Stop stops the server and the supervisor, and returns once every
// machine has exited. It may be called more than once.
func (e *Env) Stop() { e.once.Do(e.stop) }
