// Package postgres opens walt-server's store in a PostgreSQL database, for
// deployments larger than one SQLite file serves well or shared by several
// servers. It uses pgx through database/sql, so the SQL is sqlstore's.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/walt-testbed/walt/internal/store/sqlstore"
)

// Dialect is PostgreSQL's dialect for sqlstore.
var Dialect = sqlstore.Dialect{
	Name:     "postgres",
	Numbered: true,
	IsUniqueViolation: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
	},
	// Serializable transactions, run again when they lose a race (such as
	// two first reports of one node): no anomaly, no lost update.
	Isolation: sql.LevelSerializable,
	IsRetryable: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") // serialization_failure, deadlock_detected
	},
	// A transaction-independent advisory lock: one server migrates, the
	// others wait and then find nothing left to do.
	LockMigrations:   "SELECT pg_advisory_lock(7723001)",
	UnlockMigrations: "SELECT pg_advisory_unlock(7723001)",
	// Multi-row statements of a whole group: a round trip a group and
	// table, not a few (see sqlstore's group.go).
	ExactGroups: true,
}

// IsURL reports whether s names a PostgreSQL database rather than a file:
// postgres:// and postgresql:// URLs.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://user@host/db?...;
// search_path=... selects a schema) and migrates it to the newest schema.
// Errors never repeat the URL's password.
func Open(ctx context.Context, url string) (*sqlstore.Store, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors already mask the password.
		return nil, fmt.Errorf("postgres database: %w", err)
	}
	where := fmt.Sprintf("postgres database %s on %s", cfg.Database, cfg.Host)
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	return s, nil
}

// The pgx driver registers itself as "pgx" when stdlib is imported.
var _ = stdlib.GetDefaultDriver
