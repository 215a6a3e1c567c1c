// Package servertest runs an in-process walt-server on a real SQLite file,
// with simulated node agents on loopback addresses, for tests of the
// server, the client and the CLI.
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
)

// Env is a running server.
type Env struct {
	URL string
	// Client sends, with each request, the token of the user its
	// requester field names (query or body), that user being created on
	// first use, else AdminToken's: tests written before tokens keep their
	// meaning. ClientAs gives a client of one user.
	Client *client.Client
	Store  store.Store
	Server *server.Server
	// AdminToken is the token of the admin account "admin".
	AdminToken string
	// Tokens makes the accounts and keeps their tokens.
	Tokens *accountstest.Tokens
	addrs  *reboottest.Addrs
}

// New starts a server for t, with short soft-reboot deadlines (1 s connect,
// 300 ms reply). Agents get addresses from addrs. mod may change the
// configuration before the server starts.
func New(t testing.TB, addrs *reboottest.Addrs, mod func(*server.Config)) *Env {
	t.Helper()
	cfg := Config(t)
	st := cfg.Store
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(srv.StartBootTracking())
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	tokens := accountstest.NewTokens(t, st)
	c, err := client.New(hs.URL, tokens.HTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	return &Env{URL: hs.URL, Client: c, Store: st, Server: srv, addrs: addrs, Tokens: tokens, AdminToken: tokens.Admin}
}

// Token returns the token of a user, created on first use: a plain user,
// but for accountstest.LabAdmin (alice), an admin.
func (e *Env) Token(t testing.TB, name string) string {
	t.Helper()
	return e.Tokens.Of(t, name)
}

// ClientAs returns a client sending the token of the user name (Token),
// whatever its requests' requester fields say.
func (e *Env) ClientAs(t testing.TB, name string) *client.Client {
	t.Helper()
	c, err := client.New(e.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.WithToken(e.Token(t, name))
}

// Config is the configuration New starts from: a SQLite store in a
// temporary directory, closed at cleanup, short soft-reboot deadlines, and
// warnings logged to the test's output.
func Config(t testing.TB) server.Config {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rc := reboot.DefaultConfig()
	rc.ConnectTimeout, rc.ReplyTimeout = time.Second, 300*time.Millisecond
	return server.Config{Store: st, Reboot: rc, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

// NewB is New for benchmarks.
func NewB(b *testing.B, addrs *reboottest.Addrs, mod func(*server.Config)) *Env {
	return New(b, addrs, mod)
}

// AddNode starts a simulated node and registers it as its agent would,
// with a MAC derived from its address.
func (e *Env) AddNode(t *testing.T, name string, b reboottest.Behaviour) *reboottest.Agent {
	t.Helper()
	ag := e.addrs.StartT(t, b)
	host, _, _ := net.SplitHostPort(ag.Addr)
	ip := net.ParseIP(host).To4()
	_, err := e.Client.ReportNode(t.Context(), api.NodeReport{
		MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", ip[1], ip[2], ip[3]), IP: host, Name: name, Model: "rpi-b", BootMode: "network",
	})
	if err != nil {
		t.Fatalf("report node %s: %v", name, err)
	}
	return ag
}
