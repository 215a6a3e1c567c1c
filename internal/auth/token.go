// Package auth holds walt's credentials: API tokens (their format, their
// hash, the Authorization header carrying them), user names, and the
// server's TLS certificate with the fingerprints the CLI pins. It imports
// nothing of walt's, so that the store, the server, the client and the CLI
// can all use it.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// TokenPrefix starts every token, so that one pasted in the wrong place
// is recognizable (and secret scanners can find them).
const TokenPrefix = "walt_"

// tokenBytes is a token's entropy: 256 bits.
const tokenBytes = 32

// TokenLen is the length of a token: the prefix, then 32 random bytes in
// unpadded base64url.
var TokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// ErrBadToken: a text is not a token (wrong length, prefix or alphabet).
// Its message never repeats the text.
var ErrBadToken = errors.New("malformed token")

// Token is an API token in clear. It prints, logs and marshals as
// "[token]": only Reveal gives the secret, for the Authorization header
// and for the one time walt-server user add shows it.
type Token struct{ s string }

// NewToken returns a fresh random token.
func NewToken() Token {
	var b [tokenBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return Token{TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])}
}

// ParseToken checks that s is a well-formed token (after trimming
// surrounding white space, as a pasted or piped token has) and returns it.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if len(s) != TokenLen {
		return Token{}, fmt.Errorf("%w: %d characters, want %d starting with %q", ErrBadToken, len(s), TokenLen, TokenPrefix)
	}
	if !strings.HasPrefix(s, TokenPrefix) {
		return Token{}, fmt.Errorf("%w: does not start with %q", ErrBadToken, TokenPrefix)
	}
	body := s[len(TokenPrefix):]
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return Token{}, fmt.Errorf("%w: character %d is not base64url", ErrBadToken, len(TokenPrefix)+i+1)
		}
	}
	// The last character carries 4 bits of padding that must be zero, so
	// that one token has one spelling (and one hash).
	if b, err := base64.RawURLEncoding.Strict().DecodeString(body); err != nil || len(b) != tokenBytes {
		return Token{}, fmt.Errorf("%w: not %d bytes of base64url", ErrBadToken, tokenBytes)
	}
	return Token{s}, nil
}

// Reveal returns the secret.
func (t Token) Reveal() string { return t.s }

// IsZero reports whether t is no token.
func (t Token) IsZero() bool { return t.s == "" }

// Hash returns what the store keeps of the token: its SHA-256, in hex. A
// token has 256 random bits, so a fast unsalted hash is enough: no
// dictionary reaches it, and a stolen table of hashes gives no token.
func (t Token) Hash() string {
	h := sha256.Sum256([]byte(t.s))
	return hex.EncodeToString(h[:])
}

// String implements fmt.Stringer without the secret.
func (t Token) String() string { return "[token]" }

// GoString keeps %#v from printing the secret.
func (t Token) GoString() string { return "auth.Token{[token]}" }

// LogValue implements slog.LogValuer without the secret.
func (t Token) LogValue() slog.Value { return slog.StringValue("[token]") }

// MarshalText keeps encoders (JSON, TOML) from writing the secret.
func (t Token) MarshalText() ([]byte, error) { return []byte("[token]"), nil }

// HashesEqual compares two token hashes in constant time (for the hash
// length): a lookup by hash already found the row, this guards the
// comparison itself from timing.
func HashesEqual(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// maxAuthorization bounds the Authorization header read by ParseBearer.
const maxAuthorization = 256

// ErrNoCredentials: the request carries no Authorization header.
var ErrNoCredentials = errors.New("no token")

// ParseBearer reads an Authorization header value, "Bearer TOKEN" (the
// scheme's case is free, RFC 9110 §11.1). An empty header is
// ErrNoCredentials; anything else not a bearer token is ErrBadToken. The
// error never repeats the header.
func ParseBearer(h string) (Token, error) {
	if h == "" {
		return Token{}, ErrNoCredentials
	}
	if len(h) > maxAuthorization {
		return Token{}, fmt.Errorf("%w: Authorization header of %d bytes, at most %d", ErrBadToken, len(h), maxAuthorization)
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, fmt.Errorf("%w: Authorization header is not \"Bearer TOKEN\"", ErrBadToken)
	}
	cred = strings.TrimLeft(cred, " ")
	if cred != strings.TrimSpace(cred) || cred == "" {
		return Token{}, fmt.Errorf("%w: Authorization header is not \"Bearer TOKEN\"", ErrBadToken)
	}
	return ParseToken(cred)
}

// Bearer returns the Authorization header value for t.
func Bearer(t Token) string { return "Bearer " + t.s }
