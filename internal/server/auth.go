package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/dashboard"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Authentication (docs/server.md, "Accounts and tokens"): every route
// needs "Authorization: Bearer TOKEN" but those in openRoutes. The
// token's user is the request's identity: handlers get it from
// identity(ctx), never from the client's "requester" field, which
// bindRequester checks and fills.

// openRoutes are the routes served without a token, by mux pattern:
// readiness, the Prometheus scrape (counts and latencies, no names nor
// settings), the node-facing reports, and the catch-all answering unknown
// endpoints (which says which API version the server speaks). A route
// that nodes call (a "done" report) is added here, in one line.
var openRoutes = map[string]bool{
	"GET " + api.Prefix + "/health":        true,
	"GET /metrics":                         true,
	"POST " + api.Prefix + "/node-reports": true,
	"POST " + api.Prefix + "/heartbeats":   true,
	"POST " + api.Prefix + "/node-done":    true,
	"/api/":                                true,
	// The dashboard's page and files: code, no data (its calls need a token).
	"GET /{$}":                     true,
	"GET " + dashboard.AssetPrefix: true,
}

// Identity is who a request acts for: the user of its token.
type Identity struct {
	Name  string
	Admin bool
}

type identityKey struct{}

type sourceKey struct{}

// sourceOf returns the address the request of ctx came from.
func sourceOf(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(sourceKey{}).(netip.Addr)
	return a, ok
}

// Error kinds of authentication and authorization (errors.go maps them).
var (
	errUnauthenticated = errors.New("unauthenticated")
	errForbidden       = errors.New("forbidden")
)

// identity returns the authenticated user of the request whose context
// is ctx. It is the one way a handler learns who calls: a new handler
// writes `who, err := identity(r.Context())` (or requesterOf, below, where
// a request has a requester field). On an open route it fails.
func identity(ctx context.Context) (Identity, error) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	if !ok {
		return Identity{}, kindf(errUnauthenticated, "this call needs a token: run walt login, or set WALT_TOKEN")
	}
	return id, nil
}

// requesterOf returns the name a request acts under: its identity's. A
// requester field (claimed) naming someone else is refused: a client
// cannot choose who it is.
func requesterOf(ctx context.Context, claimed string) (string, error) {
	id, err := identity(ctx)
	if err != nil {
		return "", err
	}
	if claimed != "" && claimed != id.Name {
		return "", culprits(kindf(errForbidden, "requester '%s' is not the user of this token (%s): requests act as their token's user; drop WALT_USER or log in as %s",
			claimed, id.Name, claimed), []string{"requester"})
	}
	return id.Name, nil
}

// requireAdmin refuses a non-admin identity, saying what the call needs.
func requireAdmin(ctx context.Context, what string) (Identity, error) {
	id, err := identity(ctx)
	if err != nil {
		return id, err
	}
	if !id.Admin {
		return id, kindf(errForbidden, "%s is for admins, and %s is not one: ask an admin to do it (walt-server user add NAME --admin makes one).", what, id.Name)
	}
	return id, nil
}

// bindRequester sets the requester field of a decoded request body to
// the identity (requesterOf); bodies without one are left alone.
func bindRequester(ctx context.Context, v any) error {
	var field *string
	switch r := v.(type) {
	case *api.RebootRequest:
		field = &r.Requester
	case *api.ConfigRequest:
		field = &r.Requester
	case *api.OwnershipRequest:
		field = &r.Requester
	case *api.WaitRequest:
		field = &r.Requester
	case *api.RescanRequest:
		field = &r.Requester
	case *api.CreateVNode:
		field = &r.Requester
	case *api.CampaignRequest:
		field = &r.Requester
	case *api.CampaignStopRequest:
		field = &r.Requester
	default:
		return nil
	}
	name, err := requesterOf(ctx, *field)
	if err != nil {
		return err
	}
	*field = name
	return nil
}

// authenticate serves open routes as they are, and the others only with
// a valid token, whose user goes into the request's context. A refused
// request reaches no handler: it changes nothing.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		r.Pattern = pattern // for the metrics, even when refused here
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), sourceKey{}, ap.Addr().Unmap()))
		}
		if openRoutes[pattern] {
			next.ServeHTTP(w, r)
			return
		}
		if plainRemote(r.Context()) {
			writeError(w, s.log, errPlainHTTP)
			return
		}
		id, err := s.tokenIdentity(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="walt"`)
			writeError(w, s.log, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		s.audited(w, r, id, next) // every other call changes, or tries to
	})
}

// tokenIdentity checks an Authorization header against the store. Its
// errors never repeat the header: it holds a secret, right or wrong.
func (s *Server) tokenIdentity(ctx context.Context, header string) (Identity, error) {
	tok, err := auth.ParseBearer(header)
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		return Identity{}, kindf(errUnauthenticated, "this call needs a token: run walt login, or set WALT_TOKEN (an admin makes one with walt-server user add NAME)")
	case err != nil:
		return Identity{}, kindf(errUnauthenticated, "bad credentials: %v", err)
	}
	u, err := s.store.UserByToken(ctx, tok.Hash())
	if errors.Is(err, vocab.ErrNotFound) || err == nil && (len(u.Tokens) != 1 || !auth.HashesEqual(u.Tokens[0].Hash, tok.Hash())) {
		return Identity{}, kindf(errUnauthenticated, "unknown or revoked token: ask an admin for a new one (walt-server user token NAME), then walt login")
	}
	if err != nil {
		return Identity{}, fmt.Errorf("check a token: %w", err)
	}
	if exp := u.Tokens[0].ExpiresAt; !exp.IsZero() && !time.Now().Before(exp) {
		return Identity{}, kindf(errUnauthenticated, "the token of %s expired at %s: ask an admin for a new one (walt-server user token %s), then walt login",
			u.Name, exp.UTC().Format(time.RFC3339), u.Name)
	}
	return Identity{Name: u.Name, Admin: u.Admin}, nil
}

// whoami answers GET /api/v1/whoami: the token's user (walt login checks
// a token with it).
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		writeError(w, s.log, err)
		return
	}
	id, err := identity(r.Context())
	if err != nil {
		writeError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, api.WhoAmI{User: id.Name, Admin: id.Admin})
}

// checkDeviceSettings refuses a non-admin changing the settings of
// devices that are not nodes (switches, unknown devices), naming them.
func checkDeviceSettings(ctx context.Context, devs []store.Device) error {
	var others []string
	for _, d := range devs {
		if d.Type != store.TypeNode {
			others = append(others, d.Name)
		}
	}
	if len(others) == 0 {
		return nil
	}
	_, err := requireAdmin(ctx, fmt.Sprintf("Changing the settings of %s", nodeset.Describe(others, "device", "devices")))
	if err != nil {
		return culprits(err, others)
	}
	return nil
}
