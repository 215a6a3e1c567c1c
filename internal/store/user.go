package store

import (
	"context"
	"time"
)

// User is an account of the API (walt-server user add). Name follows
// auth.CheckUserName.
type User struct {
	Name      string
	Admin     bool
	CreatedAt time.Time
	// Tokens are the user's tokens, oldest first (Users and UserByToken
	// fill it; AddUser ignores it).
	Tokens []Token
}

// Token is what the store keeps of an API token: the SHA-256 of the
// secret (auth.Token.Hash), never the secret.
type Token struct {
	Hash      string
	User      string
	CreatedAt time.Time
	// ExpiresAt is when the token stops being accepted; zero: never.
	ExpiresAt time.Time
}

// UserStore keeps the accounts and their tokens. Store embeds it.
type UserStore interface {
	// AddUser inserts u with its first token, atomically. ErrConflict if
	// the name or the token's hash is taken, ErrInvalid if the name is
	// malformed.
	AddUser(ctx context.Context, u User, t Token) error
	// Users returns every account with its tokens, sorted by name.
	Users(ctx context.Context) ([]User, error)
	// RemoveUser deletes an account and its tokens. ErrNotFound if the
	// name is unknown. The nodes it owns stay owned (by name).
	RemoveUser(ctx context.Context, name string) error
	// AddToken gives a user one more token. ErrNotFound if the user is
	// unknown, ErrConflict if the hash is taken.
	AddToken(ctx context.Context, t Token) error
	// RevokeTokens deletes every token of a user and returns how many
	// there were. ErrNotFound if the user is unknown.
	RevokeTokens(ctx context.Context, user string) (int, error)
	// UserByToken returns the account holding the token whose hash is
	// given, with that token alone in Tokens. ErrNotFound if no token has
	// this hash. Expiry is the caller's to check.
	UserByToken(ctx context.Context, hash string) (User, error)
}
