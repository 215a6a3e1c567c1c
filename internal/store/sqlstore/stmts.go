package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/walt-testbed/walt/internal/store"
)

// stmtID names one of the Store's fixed queries. Each is prepared once, on
// the pool, when the Store is made, and reused: a query run as text is
// parsed again at every use (modernc's SQLite driver keeps a parsed
// statement only as long as its *sql.Stmt), and parsing was the largest
// cost of a node report. Queries built at run time (filters, limits) stay
// text.
type stmtID int

const (
	stmtDeviceByMAC stmtID = iota
	stmtDeviceByName
	stmtInsertDevice
	stmtReportDevice
	stmtSetBooted
	stmtSetBootedSeen
	stmtDevices
	stmtSettings
	stmtLinks
	stmtPoEOffs
	stmtInsertReboot
	stmtInsertAttempt
	stmtFinishReboot
	stmtDeleteAttempts
	stmtRebootState
	stmtUpsertBootStatus
	stmtBootStatuses
	stmtSetRebootBooted
	stmtInsertLogLine
	stmtUpsertCampaignNode
	stmtUpsertCampaignBoot
	stmtUserByToken
	numStmts
)

// stmtText holds the queries, with "?" placeholders.
var stmtText = [numStmts]string{
	stmtDeviceByMAC:  `SELECT ` + deviceColumns + ` FROM devices WHERE mac = ?`,
	stmtDeviceByName: `SELECT ` + deviceColumns + ` FROM devices WHERE name = ?`,
	stmtInsertDevice: `INSERT INTO devices (` + deviceColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	// A report of a known device in one statement, returning what a
	// report does not change (see ReportDevice).
	// Only a node keeping its name and virtual flag, or a device of
	// unknown type, matches (ReportDevice's contract).
	stmtReportDevice: `UPDATE devices SET name = ?, ip = ?, type = ?, model = ?, is_virtual = ?, boot_mode = ?, booted = ?, last_seen = ?
		WHERE mac = ? AND (type = 'unknown' OR (type = 'node' AND name = ? AND is_virtual = ?)) RETURNING owner, created_at`,
	stmtSetBooted:     `UPDATE devices SET booted = ? WHERE mac = ?`,
	stmtSetBootedSeen: `UPDATE devices SET booted = ?, last_seen = COALESCE(?, last_seen) WHERE mac = ?`,
	stmtDevices:       `SELECT ` + deviceColumns + ` FROM devices ORDER BY name`,
	stmtSettings:      `SELECT mac, name, value FROM settings`,
	stmtLinks:         `SELECT node_mac, switch_mac, port FROM links ORDER BY node_mac`,
	stmtPoEOffs:       `SELECT switch_mac, port, reason, at FROM poe_off ORDER BY switch_mac, port`,
	stmtInsertReboot:  `INSERT INTO reboots (` + rebootColumns + `) VALUES ` + rebootRow,
	stmtInsertAttempt: `INSERT INTO reboot_attempts (` + attemptColumns + `) VALUES ` + attemptRow,
	// A record's outcome, if it is not complete already, returning
	// whether it has attempts to replace (rarely: a running record is
	// added without). No row tells an unknown or complete record, which
	// FinishReboots tells apart with stmtRebootState, on that rare path.
	stmtFinishReboot: `UPDATE reboots SET method = ?, ok = ?, requested_at = ?, ack_at = ?, finished_at = ?, state = ?
		WHERE id = ? AND state IN ('` + string(store.RebootRunning) + `', '` + string(store.RebootInterrupted) + `')
		RETURNING EXISTS (SELECT 1 FROM reboot_attempts WHERE reboot_id = reboots.id)`,
	stmtDeleteAttempts: `DELETE FROM reboot_attempts WHERE reboot_id = ?`,
	stmtRebootState:    `SELECT state FROM reboots WHERE id = ?`,
	// SQLite (3.24 and later) and PostgreSQL spell an upsert alike.
	stmtUpsertBootStatus: `INSERT INTO boot_status (mac, boot_id, booted, since, cause, method, last_method, retries_left) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (mac) DO UPDATE SET boot_id = excluded.boot_id, booted = excluded.booted, since = excluded.since,
		cause = excluded.cause, method = excluded.method, last_method = excluded.last_method, retries_left = excluded.retries_left`,
	stmtBootStatuses:    `SELECT mac, boot_id, booted, since, cause, method, last_method, retries_left FROM boot_status ORDER BY mac`,
	stmtSetRebootBooted: `UPDATE reboots SET booted_at = ?, boot_id = ? WHERE id = ?`,
	stmtInsertLogLine:   `INSERT INTO platform_log (seq, at, stream, node, line) VALUES (?, ?, ?, ?, ?)`,
	stmtUpsertCampaignNode: `INSERT INTO campaign_nodes (campaign, mac, name, model, state, iteration, booted, failed, failed_in_row, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (campaign, mac) DO UPDATE SET state = excluded.state, iteration = excluded.iteration, booted = excluded.booted,
		failed = excluded.failed, failed_in_row = excluded.failed_in_row, reason = excluded.reason`,
	stmtUpsertCampaignBoot: `INSERT INTO campaign_boots (campaign, mac, name, iteration, reboot_id, prev_boot_id,
		requested_at, ack_at, down_at, booted_at, done_at, method, node_method, fallback, rescued, boot_id, status, metrics, outcome, error, code)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (campaign, mac, iteration) DO UPDATE SET reboot_id = excluded.reboot_id, prev_boot_id = excluded.prev_boot_id,
		requested_at = excluded.requested_at, ack_at = excluded.ack_at, down_at = excluded.down_at, booted_at = excluded.booted_at,
		done_at = excluded.done_at, method = excluded.method, node_method = excluded.node_method, fallback = excluded.fallback,
		rescued = excluded.rescued, boot_id = excluded.boot_id, status = excluded.status, metrics = excluded.metrics,
		outcome = excluded.outcome, error = excluded.error, code = excluded.code`,
	stmtUserByToken: `SELECT u.name, u.is_admin, u.created_at, t.hash, t.created_at, t.expires_at
		FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.hash = ?`,
}

// prepareAll prepares every fixed query on db. It runs before the Store is
// used: preparing on the pool later, inside a transaction, could wait for
// the very connection the transaction holds (SQLite has one).
func prepareAll(ctx context.Context, db *sql.DB, d Dialect) ([numStmts]*sql.Stmt, error) {
	var out [numStmts]*sql.Stmt
	for id, q := range stmtText {
		if q == "" {
			closeAll(out[:id])
			return out, fmt.Errorf("no text for query %d", id)
		}
		st, err := db.PrepareContext(ctx, d.rebind(q))
		if err != nil {
			closeAll(out[:id])
			return out, fmt.Errorf("prepare %q: %w", q, err)
		}
		out[id] = st
	}
	return out, nil
}

func closeAll(sts []*sql.Stmt) error {
	var errs []error
	for _, st := range sts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// stmt returns the prepared statement id for q: the Store's own outside a
// transaction; inside one, a copy bound to the transaction's connection,
// which reuses the statement already prepared there (and is closed with
// the transaction).
func (s *Store) stmt(ctx context.Context, q querier, id stmtID) *sql.Stmt {
	if tx, ok := q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, s.stmts[id])
	}
	return s.stmts[id]
}
