package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// maxAuditText bounds the text fields of an audit entry, in bytes.
const maxAuditText = 1024

// AddAudit implements store.Store. Seq is the largest plus one, in the
// transaction (portable: SQLite and PostgreSQL spell sequences apart).
func (s *Store) AddAudit(ctx context.Context, e store.AuditEntry) (int64, error) {
	for _, f := range []string{e.User, e.Source, e.Method, e.Route, e.Target} {
		if len(f) > maxAuditText {
			return 0, fmt.Errorf("audit entry: %w: a field of %d bytes, at most %d", vocab.ErrInvalid, len(f), maxAuditText)
		}
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	err := s.inTx(ctx, "add an audit entry", func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(s.short(ctx), `SELECT COALESCE(MAX(seq), 0) FROM audit_log`).Scan(&last); err != nil {
			return fmt.Errorf("add an audit entry: %w", err)
		}
		e.Seq = last + 1
		_, err := s.exec(s.short(ctx), tx, `INSERT INTO audit_log (seq, at, user_name, source, method, route, target, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, micros(e.At), e.User, e.Source, e.Method, e.Route, e.Target, e.Status)
		if err != nil {
			return fmt.Errorf("add an audit entry: %w", err)
		}
		return nil
	})
	return e.Seq, err
}

// AuditEntries implements store.Store.
func (s *Store) AuditEntries(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	q := `SELECT seq, at, user_name, source, method, route, target, status FROM audit_log WHERE seq > ? ORDER BY seq DESC`
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read the audit trail: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.User, &e.Source, &e.Method, &e.Route, &e.Target, &e.Status); err != nil {
			return nil, fmt.Errorf("read the audit trail: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("read the audit trail: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
