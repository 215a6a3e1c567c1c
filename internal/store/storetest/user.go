package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// hash returns a well-formed token hash made of c.
func hash(c byte) string { return strings.Repeat(string(c), 64) }

func testUsers(t *testing.T, s store.Store, reopen func() store.Store) {
	ctx := t.Context()
	alice := store.User{Name: "alice", Admin: true, CreatedAt: t0}
	ta := store.Token{Hash: hash('a'), CreatedAt: t0}
	if err := s.AddUser(ctx, alice, ta); err != nil {
		t.Fatal(err)
	}
	tb := store.Token{Hash: hash('b'), CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)}
	if err := s.AddUser(ctx, store.User{Name: "bob", CreatedAt: t0}, tb); err != nil {
		t.Fatal(err)
	}
	tb2 := store.Token{Hash: hash('c'), User: "bob", CreatedAt: t0.Add(2 * time.Second)}
	if err := s.AddToken(ctx, tb2); err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen()
	}
	ta.User, tb.User = "alice", "bob"
	want := []store.User{
		{Name: "alice", Admin: true, CreatedAt: t0, Tokens: []store.Token{ta}},
		{Name: "bob", CreatedAt: t0, Tokens: []store.Token{tb, tb2}},
	}
	got, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Users (-want +got):\n%s", diff)
	}
	u, err := s.UserByToken(ctx, hash('b'))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.User{Name: "bob", CreatedAt: t0, Tokens: []store.Token{tb}}, u); diff != "" {
		t.Errorf("UserByToken(b) (-want +got):\n%s", diff)
	}
	if _, err := s.UserByToken(ctx, hash('d')); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("UserByToken(unknown) = %v, want ErrNotFound", err)
	}

	n, err := s.RevokeTokens(ctx, "bob")
	if err != nil || n != 2 {
		t.Errorf("RevokeTokens(bob) = %d, %v; want 2", n, err)
	}
	if _, err := s.UserByToken(ctx, hash('c')); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("UserByToken(revoked) = %v, want ErrNotFound", err)
	}
	if err := s.RemoveUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByToken(ctx, hash('a')); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("UserByToken(token of a removed user) = %v, want ErrNotFound", err)
	}
	// A name freed by removal can be taken again, with a new token.
	if err := s.AddUser(ctx, store.User{Name: "alice"}, store.Token{Hash: hash('e')}); err != nil {
		t.Errorf("AddUser(alice again) = %v", err)
	}
	got, _ = s.Users(ctx)
	if len(got) != 2 || got[0].Admin || len(got[0].Tokens) != 1 || len(got[1].Tokens) != 0 {
		t.Errorf("Users after remove and re-add = %+v", got)
	}
}

func testUserErrors(t *testing.T, s store.Store, _ func() store.Store) {
	ctx := t.Context()
	if err := s.AddUser(ctx, store.User{Name: "alice"}, store.Token{Hash: hash('a')}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"AddUser taken name", s.AddUser(ctx, store.User{Name: "alice"}, store.Token{Hash: hash('b')}), vocab.ErrConflict},
		{"AddUser taken hash", s.AddUser(ctx, store.User{Name: "bob"}, store.Token{Hash: hash('a')}), vocab.ErrConflict},
		{"AddUser bad name", s.AddUser(ctx, store.User{Name: "Bad Name"}, store.Token{Hash: hash('c')}), vocab.ErrInvalid},
		{"AddUser reserved name", s.AddUser(ctx, store.User{Name: "walt"}, store.Token{Hash: hash('c')}), vocab.ErrInvalid},
		{"AddUser bad hash", s.AddUser(ctx, store.User{Name: "carol"}, store.Token{Hash: "secret"}), vocab.ErrInvalid},
		{"AddToken unknown user", s.AddToken(ctx, store.Token{Hash: hash('d'), User: "nobody"}), vocab.ErrNotFound},
		{"AddToken taken hash", s.AddToken(ctx, store.Token{Hash: hash('a'), User: "alice"}), vocab.ErrConflict},
		{"RemoveUser unknown", s.RemoveUser(ctx, "nobody"), vocab.ErrNotFound},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := s.RevokeTokens(ctx, "nobody"); !errors.Is(err, vocab.ErrNotFound) {
		t.Errorf("RevokeTokens(unknown) = %v, want ErrNotFound", err)
	}
	// Nothing failed above changed anything.
	got, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "alice" || len(got[0].Tokens) != 1 || got[0].Tokens[0].Hash != hash('a') {
		t.Errorf("Users after refused calls = %+v, want alice with one token", got)
	}
}

func testAudit(t *testing.T, s store.Store, reopen func() store.Store) {
	ctx := t.Context()
	for i, u := range []string{"alice", "bob", "alice"} {
		seq, err := s.AddAudit(ctx, store.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), User: u, Source: "192.0.2.1",
			Method: "POST", Route: "POST /api/v1/reboots", Target: "rpi1", Status: 200 + i})
		if err != nil || seq != int64(i+1) {
			t.Fatalf("AddAudit %d = %d, %v", i, seq, err)
		}
	}
	if _, err := s.AddAudit(ctx, store.AuditEntry{User: strings.Repeat("x", 2000)}); !errors.Is(err, vocab.ErrInvalid) {
		t.Errorf("AddAudit(huge field) = %v, want ErrInvalid", err)
	}
	if reopen != nil {
		s = reopen()
	}
	all, err := s.AuditEntries(ctx, 0, 0)
	if err != nil || len(all) != 3 || all[0].Seq != 1 || all[2].User != "alice" || all[1].Status != 201 || !all[1].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("AuditEntries(0, 0) = %+v, %v", all, err)
	}
	want := store.AuditEntry{Seq: 2, At: t0.Add(time.Second), User: "bob", Source: "192.0.2.1", Method: "POST", Route: "POST /api/v1/reboots", Target: "rpi1", Status: 201}
	if diff := cmp.Diff(want, all[1]); diff != "" {
		t.Errorf("entry 2 (-want +got):\n%s", diff)
	}
	last, _ := s.AuditEntries(ctx, 0, 2)
	after, _ := s.AuditEntries(ctx, 2, 0)
	if len(last) != 2 || last[0].Seq != 2 || len(after) != 1 || after[0].Seq != 3 {
		t.Errorf("AuditEntries(0, 2) = %+v; (2, 0) = %+v", last, after)
	}
}
