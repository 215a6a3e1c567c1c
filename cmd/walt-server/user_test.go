package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/auth"
)

// walt-server user add prints the token once, alone on stdout; list shows
// neither token nor hash; token renews, revoke and remove take effect.
func TestUserCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	user := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append([]string{"--data", data, "user"}, args...), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, errOut, err := user("add", "alice", "--admin")
	if err != nil {
		t.Fatalf("user add alice: %v\n%s", err, errOut)
	}
	tok, err := auth.ParseToken(out)
	if err != nil || strings.Count(out, "\n") != 1 || strings.Contains(errOut, tok.Reveal()) {
		t.Fatalf("user add alice: stdout %q (%v), stderr %q; want the token alone on stdout", out, err, errOut)
	}
	if _, _, err := user("add", "alice"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("user add alice again = %v, want 'exists already'", err)
	}
	if _, _, err := user("add", "bob", "--expires", "2d"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"add", "Bad"}, {"add", "walt"}, {"add", "x", "--expires", "0d"}, {"add", "x", "--expires", "99999d"},
		{"add"}, {"frob", "x"}, {"remove", "nobody"}} {
		if _, _, err := user(bad...); err == nil {
			t.Errorf("user %v: no error", bad)
		}
	}
	out, _, err = user("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []userInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || !list[0].Admin || list[1].Tokens[0].Expires == nil ||
		list[1].Tokens[0].Expires.Before(time.Now().Add(47*time.Hour)) {
		t.Errorf("user list --json = %s (%v)", out, err)
	}
	text, _, _ := user("list")
	for _, s := range []string{out, text} {
		if strings.Contains(s, tok.Reveal()) || strings.Contains(s, tok.Hash()) {
			t.Errorf("user list shows a token or its hash:\n%s", s)
		}
	}
	if !strings.Contains(text, "alice  true   1       never") {
		t.Errorf("user list =\n%s", text)
	}
	out, _, err = user("token", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if tok2, err := auth.ParseToken(out); err != nil || tok2 == tok {
		t.Errorf("user token alice: %q, %v; want a new token", out, err)
	}
	if out, _, err := user("revoke", "bob"); err != nil || !strings.Contains(out, "Revoked 1 token") {
		t.Errorf("user revoke bob: %q, %v", out, err)
	}
	if _, _, err := user("remove", "bob"); err != nil {
		t.Fatal(err)
	}
	if text, _, _ := user("list"); strings.Contains(text, "bob") {
		t.Errorf("user list after remove bob:\n%s", text)
	}
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{"": {}, "90d": now.Add(90 * 24 * time.Hour), "12h": now.Add(12 * time.Hour)} {
		if got, err := parseExpiry(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1h", "d", "1.5d", "x", "3651d", "99999999999999999999d"} {
		if _, err := parseExpiry(in, now); err == nil {
			t.Errorf("parseExpiry(%q): no error", in)
		}
	}
}
