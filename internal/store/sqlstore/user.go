package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// checkToken refuses a token row that is not a SHA-256 in hex.
func checkToken(t store.Token) error {
	if len(t.Hash) != 64 {
		return fmt.Errorf("token of %s: %w: hash of %d characters, want 64 (hex SHA-256)", t.User, vocab.ErrInvalid, len(t.Hash))
	}
	for i := 0; i < len(t.Hash); i++ {
		if c := t.Hash[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("token of %s: %w: hash is not lower-case hex", t.User, vocab.ErrInvalid)
		}
	}
	return nil
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, t store.Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	_, err := s.exec(s.short(ctx), tx, `INSERT INTO api_tokens (hash, user_name, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		t.Hash, t.User, micros(t.CreatedAt), nullMicros(t.ExpiresAt))
	if err != nil {
		if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
			return fmt.Errorf("add a token for %s: %w: token already stored", t.User, vocab.ErrConflict)
		}
		return fmt.Errorf("add a token for %s: %w", t.User, err)
	}
	return nil
}

// AddUser implements store.Store.
func (s *Store) AddUser(ctx context.Context, u store.User, t store.Token) error {
	if err := auth.CheckUserName(u.Name); err != nil {
		return fmt.Errorf("add user: %w: %w", vocab.ErrInvalid, err)
	}
	t.User = u.Name
	if err := checkToken(t); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	return s.inTx(ctx, "add user "+u.Name, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(s.short(ctx), s.d.rebind(`SELECT COUNT(*) FROM users WHERE name = ?`), u.Name).Scan(&n); err != nil {
			return fmt.Errorf("add user %s: %w", u.Name, err)
		}
		if n > 0 {
			return fmt.Errorf("add user %s: %w: the name is taken", u.Name, vocab.ErrConflict)
		}
		if _, err := s.exec(s.short(ctx), tx, `INSERT INTO users (name, is_admin, created_at) VALUES (?, ?, ?)`,
			u.Name, boolInt(u.Admin), micros(u.CreatedAt)); err != nil {
			if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
				return fmt.Errorf("add user %s: %w: the name is taken", u.Name, vocab.ErrConflict)
			}
			return fmt.Errorf("add user %s: %w", u.Name, err)
		}
		return s.insertToken(ctx, tx, t)
	})
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	var out []store.User
	err := s.inTx(ctx, "list users", func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT name, is_admin, created_at FROM users ORDER BY name`)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		index := map[string]int{}
		for rows.Next() {
			var u store.User
			var admin int
			var at int64
			if err := rows.Scan(&u.Name, &admin, &at); err != nil {
				rows.Close()
				return fmt.Errorf("list users: %w", err)
			}
			u.Admin, u.CreatedAt = admin != 0, time.UnixMicro(at).UTC()
			index[u.Name] = len(out)
			out = append(out, u)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		trows, err := tx.QueryContext(ctx, `SELECT hash, user_name, created_at, expires_at FROM api_tokens ORDER BY created_at, hash`)
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		defer trows.Close()
		for trows.Next() {
			t, err := scanToken(trows)
			if err != nil {
				return fmt.Errorf("list tokens: %w", err)
			}
			if i, ok := index[t.User]; ok {
				out[i].Tokens = append(out[i].Tokens, t)
			}
		}
		if err := trows.Err(); err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		return nil
	})
	return out, err
}

func scanToken(sc interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var created int64
	var expires sql.NullInt64
	if err := sc.Scan(&t.Hash, &t.User, &created, &expires); err != nil {
		return t, err
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMicro(created).UTC(), fromMicros(expires)
	return t, nil
}

// userExists returns ErrNotFound unless the user exists.
func (s *Store) userExists(ctx context.Context, tx *sql.Tx, name string) error {
	var n int
	if err := tx.QueryRowContext(s.short(ctx), s.d.rebind(`SELECT COUNT(*) FROM users WHERE name = ?`), name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("user %s: %w", name, vocab.ErrNotFound)
	}
	return nil
}

// RemoveUser implements store.Store.
func (s *Store) RemoveUser(ctx context.Context, name string) error {
	return s.inTx(ctx, "remove user "+name, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, name); err != nil {
			return fmt.Errorf("remove user: %w", err)
		}
		// Explicit deletes: foreign keys may be off on some backends.
		for _, q := range []string{`DELETE FROM api_tokens WHERE user_name = ?`, `DELETE FROM users WHERE name = ?`} {
			if _, err := s.exec(s.short(ctx), tx, q, name); err != nil {
				return fmt.Errorf("remove user %s: %w", name, err)
			}
		}
		return nil
	})
}

// AddToken implements store.Store.
func (s *Store) AddToken(ctx context.Context, t store.Token) error {
	if err := checkToken(t); err != nil {
		return err
	}
	return s.inTx(ctx, "add a token for "+t.User, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, t.User); err != nil {
			return fmt.Errorf("add a token: %w", err)
		}
		return s.insertToken(ctx, tx, t)
	})
}

// RevokeTokens implements store.Store.
func (s *Store) RevokeTokens(ctx context.Context, user string) (int, error) {
	var n int64
	err := s.inTx(ctx, "revoke the tokens of "+user, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, user); err != nil {
			return fmt.Errorf("revoke tokens: %w", err)
		}
		res, err := s.exec(s.short(ctx), tx, `DELETE FROM api_tokens WHERE user_name = ?`, user)
		if err != nil {
			return fmt.Errorf("revoke the tokens of %s: %w", user, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// UserByToken implements store.Store: one prepared statement, as every
// API request runs it.
func (s *Store) UserByToken(ctx context.Context, hash string) (store.User, error) {
	var u store.User
	var admin int
	var uat, tat int64
	var exp sql.NullInt64
	var t store.Token
	err := s.stmts[stmtUserByToken].QueryRowContext(s.short(ctx), hash).Scan(&u.Name, &admin, &uat, &t.Hash, &tat, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("token: %w", vocab.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("look up a token: %w", err)
	}
	t.User, t.CreatedAt, t.ExpiresAt = u.Name, time.UnixMicro(tat).UTC(), fromMicros(exp)
	u.Admin, u.CreatedAt, u.Tokens = admin != 0, time.UnixMicro(uat).UTC(), []store.Token{t}
	return u, nil
}
