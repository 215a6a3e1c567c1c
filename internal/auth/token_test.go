package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := NewToken(), NewToken()
	if a.Reveal() == b.Reveal() {
		t.Fatal("two new tokens are equal")
	}
	if len(a.Reveal()) != TokenLen || !strings.HasPrefix(a.Reveal(), TokenPrefix) {
		t.Fatalf("NewToken() = %d characters, want %d with prefix %s", len(a.Reveal()), TokenLen, TokenPrefix)
	}
	p, err := ParseToken(" " + a.Reveal() + "\n")
	if err != nil || p != a {
		t.Fatalf("ParseToken(token) = %v, %v; want the token", p, err)
	}
	if a.Hash() == b.Hash() || len(a.Hash()) != 64 || !HashesEqual(a.Hash(), p.Hash()) || HashesEqual(a.Hash(), b.Hash()) {
		t.Errorf("hashes: %s %s", a.Hash(), b.Hash())
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	t.Parallel()
	tok := NewToken()
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", "token", tok)
	js, _ := json.Marshal(struct{ T Token }{tok})
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), log.String(), string(js)} {
		if strings.Contains(s, tok.Reveal()) || strings.Contains(s, tok.Reveal()[len(TokenPrefix):]) {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestParseTokenRefuses(t *testing.T) {
	t.Parallel()
	good := NewToken().Reveal()
	for name, s := range map[string]string{
		"empty":    "",
		"short":    good[:len(good)-1],
		"long":     good + "A",
		"prefix":   "walx_" + good[5:],
		"alphabet": good[:10] + "+" + good[11:],
		"padding":  good[:len(good)-1] + "B", // 43rd base64 char with non-zero spare bits
		"inner ws": good[:10] + " " + good[11:],
		"nul":      good[:10] + "\x00" + good[11:],
	} {
		if name == "padding" && strings.HasSuffix(good, "B") {
			continue
		}
		_, err := ParseToken(s)
		if !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseToken(%s) error = %v, want ErrBadToken", name, err)
		} else if len(s) > 12 && strings.Contains(err.Error(), s[5:]) {
			t.Errorf("ParseToken(%s) error repeats the text: %v", name, err)
		}
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	tok := NewToken()
	for _, h := range []string{"Bearer " + tok.Reveal(), "bearer " + tok.Reveal(), "BEARER  " + tok.Reveal()} {
		if got, err := ParseBearer(h); err != nil || got != tok {
			t.Errorf("ParseBearer(%.8q...) = %v, %v", h, got, err)
		}
	}
	if _, err := ParseBearer(""); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("ParseBearer(\"\") = %v, want ErrNoCredentials", err)
	}
	for _, h := range []string{"Basic " + tok.Reveal(), "Bearer", "Bearer ", tok.Reveal(), "Bearer " + tok.Reveal() + " x",
		"Bearer " + strings.Repeat("a", 300)} {
		if _, err := ParseBearer(h); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseBearer(%.20q) = %v, want ErrBadToken", h, err)
		}
	}
}

func TestCheckUserName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"alice", "a", "bob-2", "j.doe", "x_y", strings.Repeat("a", 32)} {
		if err := CheckUserName(ok); err != nil {
			t.Errorf("CheckUserName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "walt", "Alice", "1abc", "-a", "a b", "a/b", "é", strings.Repeat("a", 33), "a\n"} {
		if err := CheckUserName(bad); !errors.Is(err, ErrBadUserName) {
			t.Errorf("CheckUserName(%q) = %v, want ErrBadUserName", bad, err)
		}
	}
}
