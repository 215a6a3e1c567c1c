package sqlstore

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// A version numbered below the newest already applied, as 0004 landing
// after 0005 (two features numbered apart), is applied at the next start;
// the others are not run again.
func TestMigrateAppliesAMissingLowerVersion(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	one := Migration{Version: 1, Name: "one", SQL: "CREATE TABLE one (x INTEGER);"}
	four := Migration{Version: 4, Name: "four", SQL: "CREATE TABLE four (x INTEGER);"}
	five := Migration{Version: 5, Name: "five", SQL: "CREATE TABLE five (x INTEGER);"}
	if err := migrateWith(t.Context(), db, Dialect{}, []Migration{one, five}, 5); err != nil {
		t.Fatalf("migrate 1, 5: %v", err)
	}
	if err := migrateWith(t.Context(), db, Dialect{}, []Migration{one, four, five}, 5); err != nil {
		t.Fatalf("migrate 1, 4, 5 over 1, 5: %v", err)
	}
	for _, table := range []string{"one", "four", "five"} {
		if _, err := db.Exec("INSERT INTO " + table + " (x) VALUES (1)"); err != nil {
			t.Errorf("table %s after the migrations: %v", table, err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != 3 {
		t.Errorf("schema_migrations rows = %d, %v; want 3", n, err)
	}
	// An older program knowing 1 and 4 only refuses the database.
	err = migrateWith(t.Context(), db, Dialect{}, []Migration{one, four}, 4)
	if err == nil || !strings.Contains(err.Error(), "newer than this program's 4") {
		t.Errorf("migrate with 1, 4 over 1, 4, 5 = %v, want a 'newer' error", err)
	}
	if err := migrateWith(t.Context(), db, Dialect{}, []Migration{one, four, five}, 3); err == nil {
		t.Error("migrate to the unknown version 3: no error")
	}
}

func TestMigrationsAreUnique(t *testing.T) {
	t.Parallel()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			t.Errorf("migrations not strictly increasing: %d after %d", ms[i].Version, ms[i-1].Version)
		}
	}
}
