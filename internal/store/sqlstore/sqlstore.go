// Package sqlstore implements store.Store on database/sql with portable SQL,
// so that each backend (sqlite, postgres) only opens its database and
// describes its dialect. Queries are written with "?" placeholders and
// rewritten for the backend.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Dialect describes what differs between SQL backends.
type Dialect struct {
	// Name is used in error messages: "sqlite", "postgres".
	Name string
	// Numbered placeholders ($1, $2...) instead of "?".
	Numbered bool
	// IsUniqueViolation reports whether err is a unique constraint failure.
	IsUniqueViolation func(error) bool
	// Isolation is the transactions' isolation level; IsRetryable, when set,
	// says that a transaction failed only because of a concurrent one and
	// may be run again.
	Isolation   sql.IsolationLevel
	IsRetryable func(error) bool
	// LockMigrations and UnlockMigrations, when set, are run on the
	// connection that migrates, around the migrations.
	LockMigrations, UnlockMigrations string
	// InProcess: the database runs in this process (SQLite), so that a
	// short statement ends by itself, and the Store gives it its context
	// without the cancellation (see Store.short).
	InProcess bool
	// OrFail: the backend has SQLite's "INSERT OR FAIL" and "UPDATE OR
	// FAIL", with which a statement that fails keeps the rows it wrote
	// before, and needs no journal of its own to take them back.
	OrFail bool
	// ExactGroups: a grouped statement (group.go) is built for the rows
	// of each group, up to 500, and run as text, rather than prepared for
	// a few fixed sizes, the last rows one by one. Over the network each
	// statement is a round trip, which costs more than parsing the text;
	// pgx keeps each text it runs prepared on its connection (its
	// statement cache), so a size seen before is not parsed again.
	ExactGroups bool
}

// Rebind rewrites q's "?" placeholders for d (for tests writing raw SQL).
func Rebind(d Dialect, q string) string { return d.rebind(q) }

func (d Dialect) rebind(q string) string {
	if !d.Numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Store is a store.Store on a SQL database.
type Store struct {
	db     *sql.DB
	d      Dialect
	stmts  [numStmts]*sql.Stmt                   // see stmtID
	groups [numGroups][len(groupSizes)]*sql.Stmt // see groupID
}

var _ store.Store = (*Store)(nil)

// New migrates db to the newest schema and returns a Store using it. The
// Store owns db: Close closes it.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	if err := migrate(ctx, db, d); err != nil {
		return nil, fmt.Errorf("migrate %s database: %w", d.Name, err)
	}
	stmts, err := prepareAll(ctx, db, d)
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", d.Name, err)
	}
	groups, err := prepareGroups(ctx, db, d)
	if err != nil {
		closeAll(stmts[:])
		return nil, fmt.Errorf("%s database: %w", d.Name, err)
	}
	return &Store{db: db, d: d, stmts: stmts, groups: groups}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(closeAll(s.stmts[:]), closeGroups(&s.groups), s.db.Close())
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// inTx runs fn in a transaction, committed when fn returns nil. On backends
// where concurrent transactions can fail to serialize, it runs fn again
// (fn must only act through tx and on values it sets afresh).
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	const attempts = 20
	for i := 1; ; i++ {
		err := s.tryTx(ctx, what, fn)
		if err == nil || s.d.IsRetryable == nil || !s.d.IsRetryable(err) || i == attempts {
			return err
		}
		// Jittered back-off, so that the contenders do not meet again.
		select {
		case <-time.After(time.Duration(i) * time.Duration(1+mrand.IntN(1000)) * time.Microsecond):
		case <-ctx.Done():
			return err
		}
	}
}

func (s *Store) tryTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	// Given short(ctx), the transaction is not watched by database/sql:
	// its statements stop at the end of ctx (fn gives them ctx or
	// short(ctx)), and so does the commit, below.
	tx, err := s.db.BeginTx(s.short(ctx), &sql.TxOptions{Isolation: s.d.Isolation})
	if err != nil {
		return fmt.Errorf("%s: begin transaction: %w", what, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := ctx.Err(); err != nil {
		tx.Rollback()
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// short returns the context to give one short statement (a row read or
// written by key): ctx itself once it has ended, so that the statement
// fails with ctx's error as ever; else, on an in-process backend, ctx
// without its cancellation. SQLite's driver watches a cancellable context
// with a goroutine of its own per statement, which cost more CPU than the
// statement (a node report's two statements: 36 µs with a context that
// cannot end, 64 µs with one that can), and such a statement ends within
// microseconds anyway. A network backend keeps ctx: its statements can
// hang.
func (s *Store) short(ctx context.Context) context.Context {
	if !s.d.InProcess || ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.d.rebind(query), args...)
}

const deviceColumns = `mac, name, ip, type, model, is_virtual, owner, boot_mode, booted, created_at, last_seen`

func scanDevice(sc interface{ Scan(...any) error }) (store.Device, error) {
	var d store.Device
	var typ string
	var virtual, booted int
	var created int64
	var seen sql.NullInt64
	err := sc.Scan(&d.MAC, &d.Name, &d.IP, &typ, &d.Model, &virtual, &d.Owner, &d.BootMode, &booted, &created, &seen)
	d.Type = store.DeviceType(typ)
	d.Virtual = virtual != 0
	d.Booted = booted != 0
	d.CreatedAt = time.UnixMicro(created).UTC()
	d.LastSeen = fromMicros(seen)
	return d, err
}

func validateDevice(d *store.Device) error {
	mac, err := store.NormalizeMAC(d.MAC)
	if err != nil {
		return err
	}
	d.MAC = mac
	if err := ValidateName(d.Name); err != nil {
		return err
	}
	if !d.Type.Valid() {
		return fmt.Errorf("device %s: type %q: %w: expected node, switch or unknown", d.Name, d.Type, vocab.ErrInvalid)
	}
	return nil
}

// ValidateName checks a device name: 1 to 64 letters, digits, '-', '_' or
// '.', not starting with '-'; node-set syntax needs ',', '[' and spaces.
func ValidateName(name string) error {
	if name == "" || len(name) > vocab.MaxName || name[0] == '-' {
		return fmt.Errorf("device name %q: %w: expected 1 to %d characters, not starting with '-'", name, vocab.ErrInvalid, vocab.MaxName)
	}
	if i := vocab.BadNameByte(name); i >= 0 {
		c, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Errorf("device name %q: %w: %q not allowed (letters, digits, '-', '_' and '.' only)", name, vocab.ErrInvalid, c)
	}
	return nil
}

func (s *Store) deviceWhere(ctx context.Context, q querier, col, val string) (store.Device, error) {
	id := stmtDeviceByMAC
	if col == "name" {
		id = stmtDeviceByName
	}
	row := s.stmt(ctx, q, id).QueryRowContext(s.short(ctx), val)
	d, err := scanDevice(row)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("device with %s %s: %w", col, val, vocab.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("read device with %s %s: %w", col, val, err)
	}
	return d, nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, mac string) (store.Device, error) {
	if m, err := store.NormalizeMAC(mac); err == nil {
		mac = m
	}
	return s.deviceWhere(ctx, s.db, "mac", mac)
}

// DeviceByName implements store.Store.
func (s *Store) DeviceByName(ctx context.Context, name string) (store.Device, error) {
	return s.deviceWhere(ctx, s.db, "name", name)
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	rows, err := s.stmts[stmtDevices].QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var ds []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return ds, nil
}

// checkNameFree returns ErrConflict if name belongs to a device other than mac.
func (s *Store) checkNameFree(ctx context.Context, q querier, name, mac string) error {
	other, err := s.deviceWhere(ctx, q, "name", name)
	switch {
	case errors.Is(err, vocab.ErrNotFound):
		return nil
	case err != nil:
		return err
	case other.MAC != mac:
		return fmt.Errorf("device name %s: %w: already used by %s", name, vocab.ErrConflict, other.MAC)
	}
	return nil
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, d store.Device) error {
	if err := validateDevice(&d); err != nil {
		return fmt.Errorf("add device: %w", err)
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	return s.inTx(ctx, "add device "+d.Name, func(tx *sql.Tx) error {
		if other, err := s.deviceWhere(ctx, tx, "mac", d.MAC); err == nil {
			return fmt.Errorf("add device %s: %w: mac %s already belongs to %s", d.Name, vocab.ErrConflict, d.MAC, other.Name)
		}
		if err := s.checkNameFree(ctx, tx, d.Name, d.MAC); err != nil {
			return fmt.Errorf("add device: %w", err)
		}
		return s.insertDevice(ctx, tx, d)
	})
}

func (s *Store) insertDevice(ctx context.Context, tx *sql.Tx, d store.Device) error {
	_, err := s.stmt(ctx, tx, stmtInsertDevice).ExecContext(s.short(ctx),
		d.MAC, d.Name, d.IP, string(d.Type), d.Model, boolInt(d.Virtual), d.Owner, d.BootMode, boolInt(d.Booted),
		micros(d.CreatedAt), nullMicros(d.LastSeen))
	if err != nil {
		if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
			return fmt.Errorf("insert device %s (%s): %w: %v", d.Name, d.MAC, vocab.ErrConflict, err)
		}
		return fmt.Errorf("insert device %s (%s): %w", d.Name, d.MAC, err)
	}
	return nil
}

// ReportDevice implements store.Store.
func (s *Store) ReportDevice(ctx context.Context, d store.Device) (store.Device, error) {
	if err := validateDevice(&d); err != nil {
		return d, fmt.Errorf("report device: %w", err)
	}
	if out, ok := s.reportKnown(ctx, d); ok {
		return out, nil
	}
	var out store.Device
	err := s.inTx(ctx, "report device "+d.Name, func(tx *sql.Tx) error {
		if err := s.checkNameFree(ctx, tx, d.Name, d.MAC); err != nil {
			return fmt.Errorf("report device %s: %w", d.MAC, err)
		}
		old, err := s.deviceWhere(ctx, tx, "mac", d.MAC)
		switch {
		case errors.Is(err, vocab.ErrNotFound):
			if d.CreatedAt.IsZero() {
				d.CreatedAt = time.Now()
			}
			if err := s.insertDevice(ctx, tx, d); err != nil {
				return err
			}
			out = d
		case err != nil:
			return err
		case old.Type != store.TypeNode && old.Type != store.TypeUnknown:
			return fmt.Errorf("report device %s: %w: device %s is a %s, not a node", d.MAC, vocab.ErrConflict, old.Name, old.Type)
		case old.Type == store.TypeNode && (old.Name != d.Name || old.Virtual != d.Virtual):
			return fmt.Errorf("report device %s: %w: node %s (virtual %t) cannot become %s (virtual %t) by a report", d.MAC, vocab.ErrConflict, old.Name, old.Virtual, d.Name, d.Virtual)
		default:
			_, err := s.exec(ctx, tx, `UPDATE devices SET name = ?, ip = ?, type = ?, model = ?, is_virtual = ?, boot_mode = ?, booted = ?, last_seen = ? WHERE mac = ?`,
				d.Name, d.IP, string(d.Type), d.Model, boolInt(d.Virtual), d.BootMode, boolInt(d.Booted), nullMicros(d.LastSeen), d.MAC)
			if err != nil {
				return fmt.Errorf("update device %s (%s): %w", d.Name, d.MAC, err)
			}
			d.Owner, d.CreatedAt = old.Owner, old.CreatedAt
			out = d
		}
		return nil
	})
	return storedTimes(out), err
}

// reportKnown is ReportDevice's fast path, a report of a known device
// keeping its name or taking a free one (nearly all of them): one UPDATE,
// outside a transaction, which returns what the report leaves as it was.
// ok is false when the device is unknown or the UPDATE failed (the name is
// another device's...): ReportDevice's transaction then does the work and
// says what is wrong, as it did before there was a fast path.
func (s *Store) reportKnown(ctx context.Context, d store.Device) (_ store.Device, ok bool) {
	var created int64
	err := s.stmts[stmtReportDevice].QueryRowContext(s.short(ctx),
		d.Name, d.IP, string(d.Type), d.Model, boolInt(d.Virtual), d.BootMode, boolInt(d.Booted), nullMicros(d.LastSeen), d.MAC,
		d.Name, boolInt(d.Virtual),
	).Scan(&d.Owner, &created)
	if err != nil {
		return d, false
	}
	d.CreatedAt = time.UnixMicro(created)
	return storedTimes(d), true
}

// storedTimes returns d with its times as the store keeps them:
// microseconds, UTC.
func storedTimes(d store.Device) store.Device {
	d.CreatedAt = time.UnixMicro(d.CreatedAt.UnixMicro()).UTC()
	if !d.LastSeen.IsZero() {
		d.LastSeen = time.UnixMicro(d.LastSeen.UnixMicro()).UTC()
	}
	return d
}

// ForgetDevice implements store.Store.
func (s *Store) ForgetDevice(ctx context.Context, mac string) error {
	return s.inTx(ctx, "forget device "+mac, func(tx *sql.Tx) error {
		d, err := s.deviceWhere(ctx, tx, "mac", mac)
		if err != nil {
			return fmt.Errorf("forget device: %w", err)
		}
		// Explicit deletes: foreign keys may be off on some backends.
		for _, q := range []string{
			`DELETE FROM settings WHERE mac = ?`,
			`DELETE FROM links WHERE node_mac = ? OR switch_mac = ?`,
			`DELETE FROM poe_off WHERE switch_mac = ?`,
			`DELETE FROM boot_status WHERE mac = ?`,
			`DELETE FROM quarantine WHERE mac = ?`,
			`DELETE FROM devices WHERE mac = ?`,
		} {
			args := []any{d.MAC}
			if strings.Count(q, "?") == 2 {
				args = append(args, d.MAC)
			}
			if _, err := s.exec(ctx, tx, q, args...); err != nil {
				return fmt.Errorf("forget device %s: %w", d.Name, err)
			}
		}
		return nil
	})
}

// ApplyChanges implements store.Store.
func (s *Store) ApplyChanges(ctx context.Context, changes []store.DeviceChange) error {
	return s.inTx(ctx, "apply device changes", func(tx *sql.Tx) error {
		for _, c := range changes {
			d, err := s.deviceWhere(ctx, tx, "mac", c.MAC)
			if err != nil {
				return fmt.Errorf("change device: %w", err)
			}
			if c.Type != nil && !c.Type.Valid() {
				return fmt.Errorf("change device %s: type %q: %w", d.Name, *c.Type, vocab.ErrInvalid)
			}
			if c.Name != nil {
				if err := ValidateName(*c.Name); err != nil {
					return fmt.Errorf("rename device %s: %w", d.Name, err)
				}
				if err := s.checkNameFree(ctx, tx, *c.Name, d.MAC); err != nil {
					return fmt.Errorf("rename device %s: %w", d.Name, err)
				}
				d.Name = *c.Name
			}
			if c.Type != nil {
				d.Type = *c.Type
			}
			if c.Owner != nil {
				d.Owner = *c.Owner
			}
			if _, err := s.exec(ctx, tx, `UPDATE devices SET name = ?, type = ?, owner = ? WHERE mac = ?`,
				d.Name, string(d.Type), d.Owner, d.MAC); err != nil {
				return fmt.Errorf("change device %s: %w", d.Name, err)
			}
			for k, v := range c.Set {
				if _, err := s.exec(ctx, tx, `DELETE FROM settings WHERE mac = ? AND name = ?`, d.MAC, k); err != nil {
					return fmt.Errorf("set %s on device %s: %w", k, d.Name, err)
				}
				if v == nil {
					continue
				}
				if _, err := s.exec(ctx, tx, `INSERT INTO settings (mac, name, value) VALUES (?, ?, ?)`, d.MAC, k, *v); err != nil {
					return fmt.Errorf("set %s on device %s: %w", k, d.Name, err)
				}
			}
		}
		return nil
	})
}

// SetBooted implements store.Store.
func (s *Store) SetBooted(ctx context.Context, macs []string, booted bool) error {
	return s.inTx(ctx, "set booted flag", func(tx *sql.Tx) error {
		stmt := s.stmt(ctx, tx, stmtSetBooted)
		for _, mac := range macs {
			if _, err := stmt.ExecContext(s.short(ctx), boolInt(booted), mac); err != nil {
				return fmt.Errorf("set booted flag of %s: %w", mac, err)
			}
		}
		return nil
	})
}

// Settings implements store.Store.
func (s *Store) Settings(ctx context.Context) (map[string]map[string]string, error) {
	rows, err := s.stmts[stmtSettings].QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	defer rows.Close()
	out := make(map[string]map[string]string)
	for rows.Next() {
		var mac, k, v string
		if err := rows.Scan(&mac, &k, &v); err != nil {
			return nil, fmt.Errorf("read settings: %w", err)
		}
		if out[mac] == nil {
			out[mac] = make(map[string]string)
		}
		out[mac][k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	return out, nil
}

// SetLink implements store.Store.
func (s *Store) SetLink(ctx context.Context, l store.Link) error {
	if l.Port <= 0 {
		return fmt.Errorf("set link of node %s: port %d: %w: must be > 0", l.NodeMAC, l.Port, vocab.ErrInvalid)
	}
	return s.inTx(ctx, "set link of node "+l.NodeMAC, func(tx *sql.Tx) error {
		node, err := s.deviceWhere(ctx, tx, "mac", l.NodeMAC)
		if err != nil {
			return fmt.Errorf("set link: %w", err)
		}
		sw, err := s.deviceWhere(ctx, tx, "mac", l.SwitchMAC)
		if err != nil {
			return fmt.Errorf("set link of %s: %w", node.Name, err)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM links WHERE node_mac = ?`, node.MAC); err != nil {
			return fmt.Errorf("set link of %s: %w", node.Name, err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO links (node_mac, switch_mac, port) VALUES (?, ?, ?)`, node.MAC, sw.MAC, l.Port); err != nil {
			return fmt.Errorf("set link of %s: %w", node.Name, err)
		}
		return nil
	})
}

// DeleteLink implements store.Store.
func (s *Store) DeleteLink(ctx context.Context, nodeMAC string) error {
	if _, err := s.exec(ctx, s.db, `DELETE FROM links WHERE node_mac = ?`, nodeMAC); err != nil {
		return fmt.Errorf("delete link of %s: %w", nodeMAC, err)
	}
	return nil
}

// Links implements store.Store.
func (s *Store) Links(ctx context.Context) ([]store.Link, error) {
	rows, err := s.stmts[stmtLinks].QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	defer rows.Close()
	var out []store.Link
	for rows.Next() {
		var l store.Link
		if err := rows.Scan(&l.NodeMAC, &l.SwitchMAC, &l.Port); err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out, nil
}

// AddPoEOff implements store.Store.
func (s *Store) AddPoEOff(ctx context.Context, p store.PoEOff) error {
	if p.Reason == "" {
		return fmt.Errorf("record PoE off on %s port %d: reason: %w: must not be empty", p.SwitchMAC, p.Port, vocab.ErrInvalid)
	}
	if p.At.IsZero() {
		p.At = time.Now()
	}
	return s.inTx(ctx, "record PoE off", func(tx *sql.Tx) error {
		if _, err := s.deviceWhere(ctx, tx, "mac", p.SwitchMAC); err != nil {
			return fmt.Errorf("record PoE off on port %d: %w", p.Port, err)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM poe_off WHERE switch_mac = ? AND port = ?`, p.SwitchMAC, p.Port); err != nil {
			return fmt.Errorf("record PoE off on %s port %d: %w", p.SwitchMAC, p.Port, err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO poe_off (switch_mac, port, reason, at) VALUES (?, ?, ?, ?)`,
			p.SwitchMAC, p.Port, p.Reason, micros(p.At)); err != nil {
			return fmt.Errorf("record PoE off on %s port %d: %w", p.SwitchMAC, p.Port, err)
		}
		return nil
	})
}

// RemovePoEOff implements store.Store.
func (s *Store) RemovePoEOff(ctx context.Context, switchMAC string, port int) error {
	if _, err := s.exec(ctx, s.db, `DELETE FROM poe_off WHERE switch_mac = ? AND port = ?`, switchMAC, port); err != nil {
		return fmt.Errorf("forget PoE off on %s port %d: %w", switchMAC, port, err)
	}
	return nil
}

// PoEOffs implements store.Store.
func (s *Store) PoEOffs(ctx context.Context) ([]store.PoEOff, error) {
	rows, err := s.stmts[stmtPoEOffs].QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list PoE off ports: %w", err)
	}
	defer rows.Close()
	var out []store.PoEOff
	for rows.Next() {
		var p store.PoEOff
		var at int64
		if err := rows.Scan(&p.SwitchMAC, &p.Port, &p.Reason, &at); err != nil {
			return nil, fmt.Errorf("list PoE off ports: %w", err)
		}
		p.At = time.UnixMicro(at).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list PoE off ports: %w", err)
	}
	return out, nil
}

// NewID returns a 16-byte identifier in hex: the time in nanoseconds,
// then 8 random bytes. Identifiers made one after the other sort in that
// order, so each new row's key lands at the end of its primary key index
// instead of at a random place in it: a reboot of 1000 nodes then writes
// a few pages of that index instead of one for nearly every record, a
// fifth to a third less CPU for its records (BenchmarkRebootRecords). The
// random part keeps identifiers made in the same nanosecond apart; a
// clock set back only costs that locality.
func NewID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// AddReboots implements store.Store.
func (s *Store) AddReboots(ctx context.Context, rs []store.Reboot) ([]string, error) {
	ids := make([]string, len(rs))
	for i, r := range rs {
		if r.State != "" && !r.State.Valid() {
			return nil, fmt.Errorf("record reboot of %s: state %q: %w: want running, done or interrupted", r.NodeName, r.State, vocab.ErrInvalid)
		}
		if ids[i] = r.ID; ids[i] == "" {
			ids[i] = NewID()
		}
	}
	// The attempts go in with their records' ids; a running record, as
	// a request's are, has none.
	var withAttempts []store.Reboot
	for i, r := range rs {
		if len(r.Attempts) > 0 {
			r.ID = ids[i]
			withAttempts = append(withAttempts, r)
		}
	}
	err := s.inGroupedTx(ctx, "record reboots", func(tx *sql.Tx, grouped bool) error {
		ctx := s.short(ctx)
		if err := s.insertRecords(ctx, tx, rs, ids, grouped); err != nil {
			return err
		}
		return s.insertAllAttempts(ctx, tx, withAttempts, grouped)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// insertRecords inserts rs, record i with id ids[i] (attempts left to the
// caller), in multi-row INSERTs if grouped (see group.go): a request's
// thousand records, added before any node is touched, cost a few
// statements.
func (s *Store) insertRecords(ctx context.Context, tx *sql.Tx, rs []store.Reboot, ids []string, grouped bool) error {
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	args := make([]any, 0, 13*groupSizes[0])
	recordArgs := func(args []any, i int) []any {
		r := rs[i]
		return append(args, ids[i], r.Batch, r.Requester, r.Cause, r.NodeMAC, r.NodeName, r.Method, boolInt(r.OK),
			micros(r.RequestedAt), nullMicros(r.AckAt), micros(r.FinishedAt), string(stateOrDone(r.State)), r.Server)
	}
	each := func(g []int) error {
		ins := s.stmt(ctx, tx, stmtInsertReboot)
		for _, i := range g {
			if _, err := ins.ExecContext(ctx, recordArgs(args[:0], i)...); err != nil {
				if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
					return fmt.Errorf("record reboot %s of %s: %w: id already used", ids[i], rs[i].NodeName, vocab.ErrConflict)
				}
				return fmt.Errorf("record reboot of %s: %w", rs[i].NodeName, err)
			}
		}
		return nil
	}
	if !grouped {
		return each(idx)
	}
	return inGroups(s.d, idx, func(i int) string { return ids[i] }, func(g []int) error {
		args = args[:0]
		for _, i := range g {
			args = recordArgs(args, i)
		}
		if _, err := s.groupExec(ctx, tx, groupInsertReboot, len(g), args); err != nil {
			return groupError{fmt.Errorf("record reboots: %w", err)}
		}
		return nil
	}, each)
}

func stateOrDone(st store.RebootState) store.RebootState {
	if st == "" {
		return store.RebootDone
	}
	return st
}

// rebootColumns are the columns of a new reboot record, in the order of
// insertRecords' values.
const rebootColumns = `id, batch, requester, cause, node_mac, node_name, method, ok, requested_at, ack_at, finished_at, state, server`

// rebootRow is the placeholders of one record's values.
var rebootRow = "(" + strings.Repeat("?, ", strings.Count(rebootColumns, ",")) + "?)"

// attemptColumns are the columns of a reboot attempt, in the order of
// attemptArgs.
const attemptColumns = `reboot_id, seq, method, error, code, started_at, finished_at, cut_verified, cut`

// attemptRow is the placeholders of one attempt's values.
var attemptRow = "(" + strings.Repeat("?, ", strings.Count(attemptColumns, ",")) + "?)"

// attemptArgs appends the values of attempt j of record id to args.
func attemptArgs(args []any, id string, j int, a store.Attempt) []any {
	var verified sql.NullInt64
	if a.CutVerified != nil {
		verified = sql.NullInt64{Int64: int64(boolInt(*a.CutVerified)), Valid: true}
	}
	return append(args, id, j, a.Method, a.Error, a.Code, micros(a.Started), micros(a.Finished), verified, a.Cut)
}

func insertAttempts(ctx context.Context, stmt *sql.Stmt, id string, r store.Reboot) error {
	var args []any
	for j, a := range r.Attempts {
		if _, err := stmt.ExecContext(ctx, attemptArgs(args[:0], id, j, a)...); err != nil {
			return fmt.Errorf("record reboot attempt %s of %s: %w", a.Method, r.NodeName, err)
		}
	}
	return nil
}

// FinishReboots implements store.Store.
//
// The records are completed in multi-row UPDATEs (returning whether
// each has attempts to delete, which a running record rarely has), and
// their attempts inserted in multi-row INSERTs (see group.go); an unknown
// or complete record is told apart only when an UPDATE missed it.
func (s *Store) FinishReboots(ctx context.Context, rs []store.Reboot) error {
	if len(rs) == 0 {
		return nil
	}
	listed := make(map[string]bool, len(rs))
	for _, r := range rs {
		if st := stateOrDone(r.State); st == store.RebootRunning || !st.Valid() {
			return fmt.Errorf("complete reboot %s of %s: state %q: %w: want done or interrupted", r.ID, r.NodeName, r.State, vocab.ErrInvalid)
		}
		if listed[r.ID] {
			return fmt.Errorf("complete reboot %s of %s: %w: listed twice", r.ID, r.NodeName, vocab.ErrConflict)
		}
		listed[r.ID] = true
	}
	return s.inGroupedTx(ctx, "complete reboots", func(tx *sql.Tx, grouped bool) error {
		ctx := s.short(ctx)
		if err := s.finishRecords(ctx, tx, rs, grouped); err != nil {
			return err
		}
		return s.insertAllAttempts(ctx, tx, rs, grouped)
	})
}

// finishRecords completes rs (attempts left to the caller), in groups if
// grouped.
func (s *Store) finishRecords(ctx context.Context, tx *sql.Tx, rs []store.Reboot, grouped bool) error {
	if !grouped {
		return s.finishEach(ctx, tx, rs)
	}
	var args []any
	had := map[string]bool{}
	return inGroups(s.d, rs, nil, func(g []store.Reboot) error {
		args = args[:0]
		for _, r := range g {
			args = append(args, r.ID, r.Method, boolInt(r.OK), micros(r.RequestedAt), nullMicros(r.AckAt), micros(r.FinishedAt), string(stateOrDone(r.State)))
		}
		if err := s.finishGroup(ctx, tx, len(g), args, had); err != nil {
			return groupError{fmt.Errorf("complete reboots: %w", err)}
		}
		for _, r := range g {
			h, ok := had[r.ID]
			if !ok {
				return s.unfinishable(ctx, tx, r)
			}
			if err := s.dropAttempts(ctx, tx, r, h); err != nil {
				return err
			}
		}
		return nil
	}, func(g []store.Reboot) error { return s.finishEach(ctx, tx, g) })
}

// finishGroup runs groupFinishReboot for n records with args,
// and sets had to the records it completed, each with whether it has
// attempts.
func (s *Store) finishGroup(ctx context.Context, tx *sql.Tx, n int, args []any, had map[string]bool) error {
	clear(had)
	rows, err := s.groupQuery(ctx, tx, groupFinishReboot, n, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var h bool
		if err := rows.Scan(&id, &h); err != nil {
			return err
		}
		had[id] = h
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// finishEach completes rs record by record (attempts left to the caller).
func (s *Store) finishEach(ctx context.Context, tx *sql.Tx, rs []store.Reboot) error {
	upd := s.stmt(ctx, tx, stmtFinishReboot)
	for _, r := range rs {
		var had bool
		switch err := upd.QueryRowContext(ctx, r.Method, boolInt(r.OK), micros(r.RequestedAt), nullMicros(r.AckAt), micros(r.FinishedAt),
			string(stateOrDone(r.State)), r.ID).Scan(&had); {
		case errors.Is(err, sql.ErrNoRows):
			return s.unfinishable(ctx, tx, r)
		case err != nil:
			return fmt.Errorf("complete reboot %s of %s: %w", r.ID, r.NodeName, err)
		}
		if err := s.dropAttempts(ctx, tx, r, had); err != nil {
			return err
		}
	}
	return nil
}

// dropAttempts deletes the stored attempts of r, which is being completed,
// if it had any (had).
func (s *Store) dropAttempts(ctx context.Context, tx *sql.Tx, r store.Reboot, had bool) error {
	if !had {
		return nil
	}
	if _, err := s.stmt(ctx, tx, stmtDeleteAttempts).ExecContext(ctx, r.ID); err != nil {
		return fmt.Errorf("complete reboot %s of %s: %w", r.ID, r.NodeName, err)
	}
	return nil
}

// insertAllAttempts inserts the attempts of rs, in groups if grouped.
func (s *Store) insertAllAttempts(ctx context.Context, tx *sql.Tx, rs []store.Reboot, grouped bool) error {
	if !grouped {
		attempts := s.stmt(ctx, tx, stmtInsertAttempt)
		for _, r := range rs {
			if err := insertAttempts(ctx, attempts, r.ID, r); err != nil {
				return err
			}
		}
		return nil
	}
	// One row an attempt, each with its record: the groups are of
	// attempts, whatever record each belongs to.
	type attempt struct {
		r *store.Reboot
		j int
	}
	var all []attempt
	for i := range rs {
		for j := range rs[i].Attempts {
			all = append(all, attempt{&rs[i], j})
		}
	}
	var args []any
	return inGroups(s.d, all, nil, func(g []attempt) error {
		args = args[:0]
		for _, a := range g {
			args = attemptArgs(args, a.r.ID, a.j, a.r.Attempts[a.j])
		}
		if _, err := s.groupExec(ctx, tx, groupInsertAttempt, len(g), args); err != nil {
			return groupError{fmt.Errorf("record reboot attempts: %w", err)}
		}
		return nil
	}, func(g []attempt) error {
		stmt := s.stmt(ctx, tx, stmtInsertAttempt)
		for _, a := range g {
			if _, err := stmt.ExecContext(ctx, attemptArgs(args[:0], a.r.ID, a.j, a.r.Attempts[a.j])...); err != nil {
				return fmt.Errorf("record reboot attempt %s of %s: %w", a.r.Attempts[a.j].Method, a.r.NodeName, err)
			}
		}
		return nil
	})
}

// unfinishable says why FinishReboots changed no row for r: its record is
// unknown (ErrNotFound) or complete already (ErrConflict).
func (s *Store) unfinishable(ctx context.Context, tx *sql.Tx, r store.Reboot) error {
	var st string
	switch err := s.stmt(ctx, tx, stmtRebootState).QueryRowContext(ctx, r.ID).Scan(&st); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("complete reboot %s of %s: %w", r.ID, r.NodeName, vocab.ErrNotFound)
	case err != nil:
		return fmt.Errorf("complete reboot %s of %s: %w", r.ID, r.NodeName, err)
	case st == string(store.RebootDone):
		return fmt.Errorf("complete reboot %s of %s: %w: it is complete already", r.ID, r.NodeName, vocab.ErrConflict)
	default:
		return fmt.Errorf("complete reboot %s of %s: record %s but not updated", r.ID, r.NodeName, st)
	}
}

// DeleteReboots implements store.Store.
func (s *Store) DeleteReboots(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.inTx(ctx, "forget reboots", func(tx *sql.Tx) error {
		state, err := tx.PrepareContext(ctx, s.d.rebind(`SELECT state FROM reboots WHERE id = ?`))
		if err != nil {
			return fmt.Errorf("forget reboots: %w", err)
		}
		defer state.Close()
		del, err := tx.PrepareContext(ctx, s.d.rebind(`DELETE FROM reboots WHERE id = ?`))
		if err != nil {
			return fmt.Errorf("forget reboots: %w", err)
		}
		defer del.Close()
		for _, id := range ids {
			var st string
			switch err := state.QueryRowContext(ctx, id).Scan(&st); {
			case errors.Is(err, sql.ErrNoRows):
				continue
			case err != nil:
				return fmt.Errorf("forget reboot %s: %w", id, err)
			case st != string(store.RebootRunning):
				return fmt.Errorf("forget reboot %s: %w: it is %s, not running", id, vocab.ErrConflict, st)
			}
			if _, err := del.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("forget reboot %s: %w", id, err)
			}
		}
		return nil
	})
}

// InterruptReboots implements store.Store.
func (s *Store) InterruptReboots(ctx context.Context, server string) (int, error) {
	var n int64
	err := s.inTx(ctx, "mark interrupted reboots", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE reboots SET state = ? WHERE state = ? AND server IN (?, '')`),
			string(store.RebootInterrupted), string(store.RebootRunning), server)
		if err != nil {
			return fmt.Errorf("mark interrupted reboots: %w", err)
		}
		n, err = res.RowsAffected()
		if err != nil {
			return fmt.Errorf("mark interrupted reboots: %w", err)
		}
		return nil
	})
	return int(n), err
}

// LatestReboots implements store.Store. Each node's latest record is
// found through the reboots_node index (node, time), one lookup a node;
// the attempts of the failed ones, one lookup a record.
func (s *Store) LatestReboots(ctx context.Context, since time.Time) ([]store.Reboot, error) {
	var out []store.Reboot
	err := s.inTx(ctx, "list latest reboots", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT r.id, r.batch, r.requester, r.cause, r.node_mac, r.node_name, r.method, r.ok,
		r.requested_at, r.ack_at, r.finished_at, r.state
		FROM devices d JOIN reboots r ON r.id = (SELECT l.id FROM reboots l WHERE l.node_mac = d.mac ORDER BY l.requested_at DESC LIMIT 1)
		WHERE d.type = ? AND r.requested_at >= ? AND r.booted_at IS NULL ORDER BY r.node_mac`), string(store.TypeNode), micros(since))
		if err != nil {
			return fmt.Errorf("list latest reboots: %w", err)
		}
		defer rows.Close()
		failed := map[string]int{}
		for rows.Next() {
			var r store.Reboot
			var ok int
			var req, fin int64
			var ack sql.NullInt64
			if err := rows.Scan(&r.ID, &r.Batch, &r.Requester, &r.Cause, &r.NodeMAC, &r.NodeName, &r.Method, &ok, &req, &ack, &fin, &r.State); err != nil {
				return fmt.Errorf("list latest reboots: %w", err)
			}
			r.OK = ok != 0
			r.RequestedAt, r.AckAt, r.FinishedAt = time.UnixMicro(req).UTC(), fromMicros(ack), time.UnixMicro(fin).UTC()
			if !r.OK && r.State == store.RebootDone {
				failed[r.ID] = len(out)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list latest reboots: %w", err)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("list latest reboots: %w", err)
		}
		if len(failed) == 0 {
			return nil
		}
		return s.readAttempts(ctx, tx, out, failed)
	})
	return out, err
}

// Reboots implements store.Store.
func (s *Store) Reboots(ctx context.Context, f store.RebootFilter) ([]store.Reboot, error) {
	q := `SELECT id, batch, requester, cause, node_mac, node_name, method, ok, requested_at, ack_at, finished_at, booted_at, boot_id, state, server FROM reboots WHERE 1 = 1`
	var args []any
	if f.NodeMAC != "" {
		q += ` AND node_mac = ?`
		args = append(args, f.NodeMAC)
	}
	if f.Batch != "" {
		q += ` AND batch = ?`
		args = append(args, f.Batch)
	}
	q += ` ORDER BY requested_at DESC, node_name`
	if f.Limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	var out []store.Reboot
	index := make(map[string]int)
	err := s.inTx(ctx, "list reboots", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return fmt.Errorf("list reboots: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r store.Reboot
			var ok int
			var req, fin int64
			var ack, booted sql.NullInt64
			if err := rows.Scan(&r.ID, &r.Batch, &r.Requester, &r.Cause, &r.NodeMAC, &r.NodeName, &r.Method, &ok, &req, &ack, &fin, &booted, &r.BootID, &r.State, &r.Server); err != nil {
				return fmt.Errorf("list reboots: %w", err)
			}
			r.OK = ok != 0
			r.RequestedAt = time.UnixMicro(req).UTC()
			r.AckAt = fromMicros(ack)
			r.FinishedAt = time.UnixMicro(fin).UTC()
			r.BootedAt = fromMicros(booted)
			index[r.ID] = len(out)
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list reboots: %w", err)
		}
		return s.readAttempts(ctx, tx, out, index)
	})
	return out, err
}

func (s *Store) readAttempts(ctx context.Context, tx *sql.Tx, rs []store.Reboot, index map[string]int) error {
	if len(rs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, s.d.rebind(`SELECT method, error, code, started_at, finished_at, cut_verified, cut FROM reboot_attempts WHERE reboot_id = ? ORDER BY seq`))
	if err != nil {
		return fmt.Errorf("list reboot attempts: %w", err)
	}
	defer stmt.Close()
	for id, i := range index {
		rows, err := stmt.QueryContext(ctx, id)
		if err != nil {
			return fmt.Errorf("list reboot attempts of %s: %w", id, err)
		}
		for rows.Next() {
			var a store.Attempt
			var st, fin int64
			var verified sql.NullInt64
			if err := rows.Scan(&a.Method, &a.Error, &a.Code, &st, &fin, &verified, &a.Cut); err != nil {
				rows.Close()
				return fmt.Errorf("list reboot attempts of %s: %w", id, err)
			}
			a.Started, a.Finished = time.UnixMicro(st).UTC(), time.UnixMicro(fin).UTC()
			if verified.Valid {
				v := verified.Int64 != 0
				a.CutVerified = &v
			}
			rs[i].Attempts = append(rs[i].Attempts, a)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("list reboot attempts of %s: %w", id, err)
		}
	}
	return nil
}
