package server_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// New reads the store on the caller's context: a caller that gave up
// gets its context's error, not a server.
func TestNewReadsOnTheCallersContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if srv, err := server.New(ctx, servertest.Config(t)); !errors.Is(err, context.Canceled) {
		if srv != nil {
			srv.Close()
		}
		t.Fatalf("New(canceled context) = %v, want context.Canceled", err)
	}
}

// Serve returns only once everything it started has stopped and the boot
// tracker has written what it had pending: the store can be closed then.
func TestServeReturnsOnceBootStateIsStored(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	srv, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c, err := client.New("http://"+ln.Addr().String(), accountstest.NewTokens(t, cfg.Store).HTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:04:01", IP: "127.0.0.1", Name: "life1", Model: "rpi-b", BootID: "b1"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	statuses, err := cfg.Store.BootStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 1 || !statuses[0].Booted || statuses[0].BootID != "b1" {
		t.Errorf("boot statuses stored when Serve returned = %+v, want life1 booted in boot b1", statuses)
	}
}

// Serve lists a task's start-up work while it runs and returns only once
// every task has returned.
func TestServeOwnsItsTasks(t *testing.T) {
	t.Parallel()
	srv, err := server.New(t.Context(), servertest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var returned atomic.Bool
	slow := server.Task{Starting: "slow start", Run: func(ctx context.Context) {
		<-ctx.Done()
		returned.Store(true)
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, slow) }()
	c, err := client.New("http://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.WaitHealthy(t.Context(), 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.Starting, "slow start") {
		t.Errorf("health lists %q while the task runs, want it to list slow start", h.Starting)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if !returned.Load() {
		t.Error("Serve returned before its task")
	}
}
