// Package sqlite opens walt-server's store in a SQLite file, with the pure-Go
// modernc.org/sqlite driver (no cgo, so walt-server stays a static binary).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/walt-testbed/walt/internal/store/sqlstore"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the database file name inside walt-server's data directory.
const FileName = "walt.db"

// Dialect is SQLite's dialect for sqlstore.
var Dialect = sqlstore.Dialect{
	Name:      "sqlite",
	InProcess: true,
	OrFail:    true,
	IsUniqueViolation: func(err error) bool {
		return strings.Contains(err.Error(), "UNIQUE constraint failed")
	},
	// A transaction whose read snapshot another process's write made
	// stale (walt-server user add while the server runs) cannot write:
	// SQLITE_BUSY_SNAPSHOT, which the busy timeout does not wait out.
	// The whole transaction, tried again, reads the new snapshot.
	IsRetryable: func(err error) bool {
		var se *sqlite.Error
		return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_BUSY_SNAPSHOT
	},
}

// FileMode is the mode of a database file Open creates, whatever the umask.
// SQLite gives the -wal and -shm files it creates the database file's mode.
const FileMode = 0o600

// Open opens (creating it if needed) the SQLite database at path and migrates
// it to the newest schema. A new file is created FileMode; an existing one
// keeps its mode.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	if err := create(path); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	// temp_store(MEMORY): SQLite's temporary data stays in memory. Among
	// it the statement journal of a multi-row statement in a transaction
	// (the boot tracker's grouped writes, sqlstore/group.go), which
	// otherwise goes to a temporary file, created, written and removed,
	// once it passes 64 KiB: the boot statuses of 64 nodes in any order
	// did, at nearly every flush of a reboot of 1000 nodes.
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)", "temp_store(MEMORY)"} {
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

// create creates path empty with FileMode unless it exists: SQLite would
// create it 0644 less the umask, readable by every user.
func create(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if os.IsExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// The umask may have taken bits away, never added any; this is for a
	// umask that is not a subset of 077.
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
