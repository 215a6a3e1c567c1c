package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/walt-testbed/walt/internal/store"
)

// Multi-row statements, for the writes of many rows at once: the boot
// tracker's flush (SetBootState and its parts) and the completion of
// history records (FinishReboots). A flush writes tens of boots at once,
// five rows each; a prepared statement per row costs more in
// database/sql, the driver and SQLite's start and end of each statement
// than in the row's own B-tree work. So rows go in groups, each group one
// statement. On SQLite each is prepared for that many rows when the Store
// is made (a statement built for each group would be parsed each time,
// which costs more than it saves); on PostgreSQL a group is as large as
// what there is to write, up to maxExactRows (Dialect.ExactGroups).
//
// A grouped statement that fails does not say which row made it fail: the
// transaction is then rolled back and run again row by row, whose error
// names the row (inGroupedTx). As a failure rolls back the whole
// transaction, what a failed statement wrote before failing need not be
// taken back on its own: on SQLite the grouped statements say OR FAIL,
// without which SQLite copies each page a statement of several rows
// changes, in a transaction, into a statement journal. The boot status
// upsert and the attempts' insert keep one all the same, for their
// foreign keys; sqlite.Open keeps it in memory.

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
	// The reboots' outcomes, as stmtFinishReboot, returning the id of
	// each record completed beside whether it has attempts.
	groupFinishReboot
	// The reboots' attempts, as stmtInsertAttempt.
	groupInsertAttempt
	// New reboot records, as stmtInsertReboot.
	groupInsertReboot
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
	case groupFinishReboot:
		return `UPDATE ` + orFail + `reboots SET method = v.column2, ok = v.column3, requested_at = v.column4, ack_at = v.column5,
			finished_at = v.column6, state = v.column7
			FROM (VALUES ` + list(`(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT))`) + `) AS v
			WHERE reboots.id = v.column1 AND reboots.state IN ('` + string(store.RebootRunning) + `', '` + string(store.RebootInterrupted) + `')
			RETURNING reboots.id, EXISTS (SELECT 1 FROM reboot_attempts WHERE reboot_id = reboots.id)`
	case groupInsertAttempt:
		return `INSERT ` + orFail + `INTO reboot_attempts (` + attemptColumns + `) VALUES ` + list(attemptRow)
	case groupInsertReboot:
		return `INSERT ` + orFail + `INTO reboots (` + rebootColumns + `) VALUES ` + list(rebootRow)
	}
	return ""
}

// prepareGroups prepares every grouped statement on db (see prepareAll
// for why before the Store is used), unless d.ExactGroups.
func prepareGroups(ctx context.Context, db *sql.DB, d Dialect) ([numGroups][len(groupSizes)]*sql.Stmt, error) {
	var out [numGroups][len(groupSizes)]*sql.Stmt
	if d.ExactGroups {
		return out, nil
	}
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

// maxExactRows bounds the rows of a group built for its size (see
// Dialect.ExactGroups): 500 rows of the widest (the boot status, 8
// values) are 4000 parameters.
const maxExactRows = 500

// inGroups writes rows in consecutive groups: group(g) for a group of
// rows of one statement; each(g) for rows to write one at a time. In
// dialect d's groups of any size up to maxExactRows if d.ExactGroups;
// else of the sizes of groupSizes, the last few rows (fewer than the
// smallest) to each. A group in which key (if not nil) gives two rows
// the same value goes to each too: row by row the last of them wins,
// where a multi-row UPDATE would take either.
func inGroups[T any](d Dialect, rows []T, key func(T) string, group func(g []T) error, each func(g []T) error) error {
	seen := map[string]bool{}
	write := func(g []T) error {
		if key == nil {
			return group(g)
		}
		clear(seen)
		for _, r := range g {
			if seen[key(r)] {
				return each(g)
			}
			seen[key(r)] = true
		}
		return group(g)
	}
	if d.ExactGroups {
		for lo := 0; lo < len(rows); lo += maxExactRows {
			if err := write(rows[lo:min(lo+maxExactRows, len(rows))]); err != nil {
				return err
			}
		}
		return nil
	}
	lo := 0
	for _, size := range groupSizes {
		for ; len(rows)-lo >= size; lo += size {
			if err := write(rows[lo : lo+size]); err != nil {
				return err
			}
		}
	}
	if lo < len(rows) {
		return each(rows[lo:])
	}
	return nil
}

// groupExec runs grouped statement id for n rows with args, in tx.
func (s *Store) groupExec(ctx context.Context, tx *sql.Tx, id groupID, n int, args []any) (sql.Result, error) {
	if s.d.ExactGroups {
		return tx.ExecContext(ctx, s.d.rebind(groupText(s.d, id, n)), args...)
	}
	return s.group(ctx, tx, id, n).ExecContext(ctx, args...)
}

// groupQuery is groupExec for a statement returning rows.
func (s *Store) groupQuery(ctx context.Context, tx *sql.Tx, id groupID, n int, args []any) (*sql.Rows, error) {
	if s.d.ExactGroups {
		return tx.QueryContext(ctx, s.d.rebind(groupText(s.d, id, n)), args...)
	}
	return s.group(ctx, tx, id, n).QueryContext(ctx, args...)
}

// group returns prepared grouped statement id for n rows (one of
// groupSizes), in tx.
func (s *Store) group(ctx context.Context, tx *sql.Tx, id groupID, n int) *sql.Stmt {
	for k, size := range groupSizes {
		if size == n {
			return tx.StmtContext(ctx, s.groups[id][k])
		}
	}
	panic(fmt.Sprintf("no grouped statement for %d rows", n))
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
