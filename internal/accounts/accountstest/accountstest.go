// Package accountstest makes API accounts for tests and an HTTP client
// that sends their tokens.
package accountstest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/accounts"
	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/store"
)

// AdminUser is the name of the admin account NewTokens creates.
const AdminUser = "admin"

// LabAdmin is the other admin, made on first use like the plain users:
// the tests' lab manager (their default user, who adds switches); bob,
// carol and the others are plain users.
const LabAdmin = "alice"

// Tokens makes the accounts of a test server and remembers their tokens.
type Tokens struct {
	st    store.Store
	Admin string // the token of AdminUser

	mu     sync.Mutex
	tokens map[string]string // by user name; +checklocks:mu
}

// NewTokens creates the admin account in st.
func NewTokens(t testing.TB, st store.Store) *Tokens {
	t.Helper()
	tok, err := accounts.Add(context.Background(), st, AdminUser, true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return &Tokens{st: st, Admin: tok.Reveal(), tokens: map[string]string{AdminUser: tok.Reveal()}}
}

// Of returns the token of the user name, created on first use: a plain
// user, but for LabAdmin.
func (k *Tokens) Of(t testing.TB, name string) string {
	t.Helper()
	tok, err := k.of(name)
	if err != nil {
		t.Fatalf("token of %s: %v", name, err)
	}
	return tok
}

func (k *Tokens) of(name string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if tok, ok := k.tokens[name]; ok {
		return tok, nil
	}
	tok, err := accounts.Add(context.Background(), k.st, name, name == LabAdmin, time.Time{})
	if err != nil {
		return "", err
	}
	k.tokens[name] = tok.Reveal()
	return tok.Reveal(), nil
}

// HTTPClient returns an HTTP client adding to each request without an
// Authorization header the token of the user its requester field names
// (in the query or the JSON body), else the admin's. A requester that is
// no valid user name gets the admin's token: the server then refuses the
// field itself.
func (k *Tokens) HTTPClient() *http.Client {
	return &http.Client{Transport: requesterTokens{k, http.DefaultTransport}}
}

type requesterTokens struct {
	k    *Tokens
	base http.RoundTripper
}

func (rt requesterTokens) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return rt.base.RoundTrip(req)
	}
	name := req.URL.Query().Get("requester")
	if name == "" && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			var v struct {
				Requester string `json:"requester"`
			}
			b, _ := io.ReadAll(io.LimitReader(body, 2<<20))
			body.Close()
			json.NewDecoder(bytes.NewReader(b)).Decode(&v)
			name = v.Requester
		}
	}
	tok := rt.k.Admin
	if name != "" && auth.CheckUserName(name) == nil {
		if t, err := rt.k.of(name); err == nil {
			tok = t
		}
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	return rt.base.RoundTrip(req)
}

// Get sends GET url with token (none if empty), for tests reading raw
// answers.
func Get(t testing.TB, url, token string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return http.DefaultClient.Do(req)
}
