package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Multi-row statements for the boot tracker's flush (SetBootState and its
// parts). A flush writes tens of boots at once, five rows each; a prepared
// statement per row costs more in database/sql, the driver and SQLite's
// start and end of each statement than in the row's own B-tree work. So
// rows go in groups, each group one statement prepared for that many rows
// when the Store is made (a statement built for each group would be
// parsed each time, which costs more than it saves: FinishReboots).
//
// A grouped statement that fails does not say which row made it fail: the
// transaction is then rolled back and run again row by row, whose error
// names the row (inGroupedTx). As a failure rolls back the whole
// transaction, what a failed statement wrote before failing need not be
// taken back on its own: on SQLite the grouped statements say OR FAIL,
// without which SQLite copies each page a statement of several rows
// changes, in a transaction, into a statement journal. The boot status
// upsert keeps one all the same, for its foreign key; sqlite.Open keeps
// it in memory.

// groupSizes are the rows of the grouped statements, largest first; n
// rows go in as many groups of the largest size as fit, then of the next,
// and the last few, fewer than the smallest, one by one with the
// statements of one row. 64 rows of the widest group (the boot status, 8
// values) are 512 parameters, far below SQLite's 32766 and PostgreSQL's
// 65535.
var groupSizes = [...]int{64, 16, 4}

// groupID names one of the grouped statements.
type groupID int

const (
	// The devices' booted flag and last sign of life, as stmtSetBootedSeen.
	groupSetBootedSeen groupID = iota
	// The boot statuses, as stmtUpsertBootStatus.
	groupUpsertBootStatus
	// The reboots' boot times, as stmtSetRebootBooted.
	groupSetRebootBooted
	// Platform log lines, as stmtInsertLogLine.
	groupInsertLogLine
	numGroups
)

// groupText returns the text of grouped statement id for rows rows in
// dialect d. The values of an UPDATE come in a VALUES list (columns
// column1, column2... on both backends) whose parameters are cast:
// PostgreSQL would take them for text.
func groupText(d Dialect, id groupID, rows int) string {
	list := func(row string) string {
		return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
	}
	orFail := ""
	if d.OrFail {
		orFail = "OR FAIL "
	}
	switch id {
	case groupSetBootedSeen:
		return `UPDATE ` + orFail + `devices SET booted = v.column2, last_seen = COALESCE(v.column3, devices.last_seen)
			FROM (VALUES ` + list(`(CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT))`) + `) AS v WHERE devices.mac = v.column1`
	case groupUpsertBootStatus:
		return `INSERT ` + orFail + `INTO boot_status (mac, boot_id, booted, since, cause, method, last_method, retries_left) VALUES ` +
			list(`(?, ?, ?, ?, ?, ?, ?, ?)`) + `
			ON CONFLICT (mac) DO UPDATE SET boot_id = excluded.boot_id, booted = excluded.booted, since = excluded.since,
			cause = excluded.cause, method = excluded.method, last_method = excluded.last_method, retries_left = excluded.retries_left`
	case groupSetRebootBooted:
		return `UPDATE ` + orFail + `reboots SET booted_at = v.column2, boot_id = v.column3
			FROM (VALUES ` + list(`(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT))`) + `) AS v WHERE reboots.id = v.column1`
	case groupInsertLogLine:
		return `INSERT ` + orFail + `INTO platform_log (seq, at, stream, node, line) VALUES ` + list(`(?, ?, ?, ?, ?)`)
	}
	return ""
}

// prepareGroups prepares every grouped statement on db (see prepareAll
// for why before the Store is used).
func prepareGroups(ctx context.Context, db *sql.DB, d Dialect) ([numGroups][len(groupSizes)]*sql.Stmt, error) {
	var out [numGroups][len(groupSizes)]*sql.Stmt
	for id := range groupID(numGroups) {
		for k, rows := range groupSizes {
			q := groupText(d, id, rows)
			if q == "" {
				closeGroups(&out)
				return out, fmt.Errorf("no text for grouped query %d", id)
			}
			st, err := db.PrepareContext(ctx, d.rebind(q))
			if err != nil {
				closeGroups(&out)
				return out, fmt.Errorf("prepare %q: %w", q, err)
			}
			out[id][k] = st
		}
	}
	return out, nil
}

func closeGroups(g *[numGroups][len(groupSizes)]*sql.Stmt) error {
	var errs []error
	for i := range g {
		errs = append(errs, closeAll(g[i][:]))
	}
	return errors.Join(errs...)
}

// inGroups writes rows in consecutive groups of the sizes of groupSizes:
// group(g, k) for a group of groupSizes[k] rows; each(g) for the last
// few rows, one at a time, and for a group in which key (if not nil) gives
// two rows the same value: row by row the last of them wins, where a
// multi-row UPDATE would take either.
func inGroups[T any](rows []T, key func(T) string, group func(g []T, k int) error, each func(g []T) error) error {
	seen := map[string]bool{}
	distinct := func(g []T) bool {
		if key == nil {
			return true
		}
		clear(seen)
		for _, r := range g {
			if seen[key(r)] {
				return false
			}
			seen[key(r)] = true
		}
		return true
	}
	lo := 0
	for k, size := range groupSizes {
		for ; len(rows)-lo >= size; lo += size {
			g := rows[lo : lo+size]
			write := func() error { return group(g, k) }
			if !distinct(g) {
				write = func() error { return each(g) }
			}
			if err := write(); err != nil {
				return err
			}
		}
	}
	if lo < len(rows) {
		return each(rows[lo:])
	}
	return nil
}

// group returns grouped statement id for groupSizes[k] rows, in tx.
func (s *Store) group(ctx context.Context, tx *sql.Tx, id groupID, k int) *sql.Stmt {
	return tx.StmtContext(ctx, s.groups[id][k])
}

// A groupError is the failure of a grouped statement, which does not say
// which of its rows failed.
type groupError struct{ err error }

func (e groupError) Error() string { return e.err.Error() }
func (e groupError) Unwrap() error { return e.err }

// inGroupedTx runs fn(tx, true) in a transaction, as inTx does; if a
// grouped statement failed, it runs fn(tx, false), row by row, in a new
// transaction, whose error names the row that failed (or which succeeds,
// if what failed has gone meanwhile).
func (s *Store) inGroupedTx(ctx context.Context, what string, fn func(tx *sql.Tx, grouped bool) error) error {
	err := s.inTx(ctx, what, func(tx *sql.Tx) error { return fn(tx, true) })
	if ge := (groupError{}); !errors.As(err, &ge) || ctx.Err() != nil {
		return err
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error { return fn(tx, false) })
}
