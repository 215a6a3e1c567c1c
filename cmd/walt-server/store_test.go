package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/store/postgres/pgtest"
	"github.com/walt-testbed/walt/internal/testutil"
)

// startServer runs walt-server in this process until the test ends or
// stop is called, and waits until its API answers.
// Its client sends the token of the admin alice (userToken).
func startServer(t *testing.T, addr string, args ...string) (c *client.Client, log *testutil.Buffer, stop func()) {
	t.Helper()
	token := userToken(t, "alice", args...)
	ctx, cancel := context.WithCancel(t.Context())
	log = &testutil.Buffer{}
	var runErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runErr = run(ctx, append([]string{"--listen", addr}, args...), io.Discard, log)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-exited
		if runErr != nil {
			t.Errorf("walt-server stopped with %v\n%s", runErr, log)
		}
	})
	t.Cleanup(stop)
	c, err := client.New("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithToken(token)
	testutil.EventuallyNil(t, 20*time.Second, "walt-server's API on "+addr, func() error {
		select {
		case <-exited:
			t.Fatalf("walt-server exited: %v\n%s", runErr, log)
		default:
		}
		if _, err := c.Devices(t.Context()); err != nil {
			return fmt.Errorf("%w\n%s", err, log)
		}
		return nil
	})
	return c, log, stop
}

// userToken runs walt-server ARGS user add NAME --admin, or user token
// NAME --keep if the account exists, and returns the token printed.
func userToken(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	var errOut testutil.Buffer
	err := run(t.Context(), append(args[:len(args):len(args)], "user", "add", name, "--admin"), &out, &errOut)
	if err != nil && strings.Contains(err.Error(), "exists already") {
		err = run(t.Context(), append(args[:len(args):len(args)], "user", "token", name, "--keep"), &out, &errOut)
	}
	if err != nil {
		t.Fatalf("walt-server user add %s: %v\n%s", name, err, &errOut)
	}
	return strings.TrimSpace(out.String())
}

// postgresSchema starts a throwaway PostgreSQL cluster for the test and
// returns the URL of a new schema in it; the test is skipped without
// PostgreSQL, but under CI=true.
func postgresSchema(t *testing.T, name string) string {
	t.Helper()
	cluster, err := pgtest.Start()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(cluster.Stop)
	u, err := cluster.NewSchema(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The server keeps its inventory in PostgreSQL with --db, across restarts,
// and never logs the database password.
func TestPostgresStore(t *testing.T) {
	u := postgresSchema(t, "server")
	// trust authentication ignores the password: it is here to be hidden.
	u = strings.Replace(u, "postgres:///", "postgres://walt:pg-s3cret@/", 1)
	const addr = "127.39.0.1:12345"
	args := []string{"--data", t.TempDir(), "--db", u}

	c, log, stop := startServer(t, addr, args...)
	if _, err := c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "127.39.255.1", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	stop()
	if !strings.Contains(log.String(), `msg="store opened" postgres="postgres://walt:xxxxx@`) {
		t.Errorf("log does not say the store is PostgreSQL, with the password hidden:\n%s", log)
	}

	c, log, _ = startServer(t, addr, args...)
	list, err := c.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if list.NumDevices != 1 || list.Devices[0].Name != "sw1" {
		t.Errorf("devices after restart = %+v, want sw1", list)
	}
	if strings.Contains(log.String(), "pg-s3cret") {
		t.Errorf("log shows the database password:\n%s", log)
	}
}

func TestBadDatabaseURL(t *testing.T) {
	var log testutil.Buffer
	err := run(t.Context(), []string{"--data", t.TempDir(), "--listen", "127.39.0.2:12345", "--db", "mysql://root:pw-s3cret@db/walt"}, io.Discard, &log)
	if err == nil || !strings.Contains(err.Error(), "want a postgres:// URL") || strings.Contains(err.Error(), "pw-s3cret") {
		t.Errorf("run(--db mysql://...) = %v, want a clear error without the password", err)
	}
}
