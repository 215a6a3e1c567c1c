package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		path := filepath.Join(t.TempDir(), sqlite.FileName)
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		cur := store.Store(s)
		t.Cleanup(func() { cur.Close() })
		reopen := func() store.Store {
			cur.Close()
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("reopen %s: %v", path, err)
			}
			cur = s
			return s
		}
		return s, reopen
	})
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "schema version 999 is newer") {
		t.Errorf("Open(newer schema) = %v, want a 'newer' error", err)
	}
}

func TestUpgrade(t *testing.T) {
	storetest.Upgrade(t, sqlite.Dialect, func(t *testing.T) (*sql.DB, func() store.Store) {
		path := filepath.Join(t.TempDir(), sqlite.FileName)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		return db, func() store.Store {
			db.Close()
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("open after upgrade: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

// TestFilesPrivate: the database holds SNMP communities; it and its WAL
// and shared-memory files are readable by their owner only, whatever the
// umask (the test process's is usually 022).
func TestFilesPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddDevice(t.Context(), store.Device{MAC: "02:00:00:00:00:01", Name: "sw-a", Type: store.TypeSwitch}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("after a write: %v", err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), m)
		}
	}
}

// A transaction whose snapshot another connection's write made stale
// fails with SQLITE_BUSY_SNAPSHOT at its first write, which the busy
// timeout does not wait out: the dialect says to try it again (seen:
// walt-server user add while the server ran, "database is locked (517)").
func TestStaleSnapshotIsRetryable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec("CREATE TABLE t (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil { // the snapshot
		t.Fatal(err)
	}
	if _, err := b.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec("INSERT INTO t VALUES (2)")
	if err == nil || !sqlite.Dialect.IsRetryable(err) {
		t.Fatalf("write on a stale snapshot: %v, want an error the dialect retries", err)
	}
	if sqlite.Dialect.IsRetryable(sql.ErrNoRows) {
		t.Error("IsRetryable(sql.ErrNoRows) = true")
	}
}
