package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one schema step, read from migrations/NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %04d_%s and %04d_%s: same version", ms[i].Version, ms[i-1].Name, ms[i].Version, ms[i].Name)
		}
	}
	return ms, nil
}

// Newest returns the newest version of ms (0 if none).
func Newest(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// statements splits a migration into statements: each ends with ";" at the
// end of a line. Comment lines are dropped.
func statements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// migrate brings the schema up to the newest embedded migration, each
// migration in its own transaction. It refuses a database whose schema is
// newer than this program. Servers sharing a database take the dialect's
// migration lock, so that two starting at once do not both migrate.
func migrate(ctx context.Context, pool *sql.DB, d Dialect) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return MigrateTo(ctx, pool, d, Newest(ms))
}

// MigrateTo brings the schema up to the given version (upgrade tests start
// from each older version): it applies, in order, every migration up to
// that version that the database has not recorded. Versions need not be
// consecutive, and one missing below the newest recorded is applied too:
// features developed in parallel number their migrations apart (0004,
// 0005) and land in either order.
func MigrateTo(ctx context.Context, pool *sql.DB, d Dialect, version int) error {
	all, err := Migrations()
	if err != nil {
		return err
	}
	return migrateWith(ctx, pool, d, all, version)
}

// migrateWith is MigrateTo with the migrations all (sorted, unique).
func migrateWith(ctx context.Context, pool *sql.DB, d Dialect, all []Migration, version int) error {
	known := version == 0
	var ms []Migration
	for _, m := range all {
		if m.Version <= version {
			ms = append(ms, m)
		}
		known = known || m.Version == version
	}
	if !known {
		return fmt.Errorf("no schema version %d (this program knows %s)", version, versionList(all))
	}
	db, err := pool.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer db.Close()
	if d.LockMigrations != "" {
		if _, err := db.ExecContext(ctx, d.LockMigrations); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		defer db.ExecContext(context.WithoutCancel(ctx), d.UnlockMigrations)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return fmt.Errorf("create schema_migrations table: %w", err)
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return err
	}
	for v := range applied {
		if v > Newest(all) {
			return fmt.Errorf("database schema version %d is newer than this program's %d: upgrade walt-server", v, Newest(all))
		}
		if v > version {
			return fmt.Errorf("database schema version %d is newer than the requested %d", v, version)
		}
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %04d_%s: begin: %w", m.Version, m.Name, err)
		}
		for _, stmt := range statements(m.SQL) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			m.Version, m.Name, micros(time.Now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %04d_%s: record version: %w", m.Version, m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %04d_%s: commit: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, db *sql.Conn) (map[int]bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema versions: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema versions: %w", err)
		}
		out[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema versions: %w", err)
	}
	return out, nil
}

func versionList(ms []Migration) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(m.Version))
	}
	return b.String()
}

// SchemaVersion returns the version of the database's schema.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
