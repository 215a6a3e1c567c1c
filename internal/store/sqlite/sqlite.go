// Package sqlite opens walt-server's store in a SQLite file, with the pure-Go
// modernc.org/sqlite driver (no cgo, so walt-server stays a static binary).
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/walt-testbed/walt/internal/store/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file name inside walt-server's data directory.
const FileName = "walt.db"

// Dialect is SQLite's dialect for sqlstore.
var Dialect = sqlstore.Dialect{
	Name: "sqlite",
	IsUniqueViolation: func(err error) bool {
		return strings.Contains(err.Error(), "UNIQUE constraint failed")
	},
}

// Open opens (creating it if needed) the SQLite database at path and migrates
// it to the newest schema.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and this rules out
	// "database is locked" errors between our own connections.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return s, nil
}
