package server

import (
	"net/http"
	"testing"

	"github.com/walt-testbed/walt/internal/accounts/accountstest"
	"github.com/walt-testbed/walt/internal/store"
)

// tokenClient returns an HTTP client sending the tokens of accounts it
// makes in st (accountstest.Tokens.HTTPClient), for the package's
// internal tests (servertest imports this package).
func tokenClient(t testing.TB, st store.Store) *http.Client {
	t.Helper()
	return accountstest.NewTokens(t, st).HTTPClient()
}
