// Package accounts creates walt's API accounts and their tokens in a
// store: the one place a token is made and seen in clear (walt-server
// user add and user token, and the test harnesses).
package accounts

import (
	"context"
	"time"

	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/store"
)

// Add creates an account with a first token, expiring at expires
// (zero: never), and returns the token: the one time it is seen in clear
// (walt-server user add, and the test harness).
func Add(ctx context.Context, st store.Store, name string, admin bool, expires time.Time) (auth.Token, error) {
	tok := auth.NewToken()
	now := time.Now()
	err := st.AddUser(ctx, store.User{Name: name, Admin: admin, CreatedAt: now},
		store.Token{Hash: tok.Hash(), User: name, CreatedAt: now, ExpiresAt: expires})
	if err != nil {
		return auth.Token{}, err
	}
	return tok, nil
}

// Renew gives an existing user a new token, expiring at expires (zero:
// never), revoking the others unless keep.
func Renew(ctx context.Context, st store.Store, name string, expires time.Time, keep bool) (auth.Token, error) {
	if !keep {
		if _, err := st.RevokeTokens(ctx, name); err != nil {
			return auth.Token{}, err
		}
	}
	tok := auth.NewToken()
	if err := st.AddToken(ctx, store.Token{Hash: tok.Hash(), User: name, CreatedAt: time.Now(), ExpiresAt: expires}); err != nil {
		return auth.Token{}, err
	}
	return tok, nil
}
