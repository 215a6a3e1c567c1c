package sqlstore

import (
	"context"
	"database/sql"

	"fmt"
	"strconv"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// SetBootStatuses implements store.Store.
func (s *Store) SetBootStatuses(ctx context.Context, bs []store.BootStatus) error {
	if len(bs) == 0 {
		return nil
	}
	return s.inGroupedTx(ctx, "record boot status", func(tx *sql.Tx, grouped bool) error { return s.setBootStatuses(ctx, tx, bs, grouped) })
}

// setBootStatuses writes bs, in groups (see group.go) if grouped. A group
// is written row by row if it names a device twice (the last must win, as
// row by row) or if a device of it was forgotten (its status is skipped).
func (s *Store) setBootStatuses(ctx context.Context, tx *sql.Tx, bs []store.BootStatus, grouped bool) error {
	if !grouped {
		return s.setBootStatusesEach(ctx, tx, bs)
	}
	var args []any
	mac := func(b store.BootStatus) string { return b.MAC }
	return inGroups(s.d, bs, mac, func(g []store.BootStatus) error {
		args = args[:0]
		for _, b := range g {
			args = append(args, b.MAC, boolInt(b.Booted), nullMicros(b.LastSeen))
		}
		res, err := s.groupExec(s.short(ctx), tx, groupSetBootedSeen, len(g), args)
		if err != nil {
			return groupError{fmt.Errorf("record boot statuses: %w", err)}
		}
		if n, err := res.RowsAffected(); err != nil {
			return groupError{fmt.Errorf("record boot statuses: %w", err)}
		} else if n != int64(len(g)) {
			return s.setBootStatusesEach(ctx, tx, g) // some forgotten meanwhile
		}
		args = args[:0]
		for _, b := range g {
			args = append(args, b.MAC, b.BootID, boolInt(b.Booted), micros(b.Since), b.Cause, b.Method, b.LastMethod, b.RetriesLeft)
		}
		if _, err := s.groupExec(s.short(ctx), tx, groupUpsertBootStatus, len(g), args); err != nil {
			return groupError{fmt.Errorf("record boot statuses: %w", err)}
		}
		return nil
	}, func(g []store.BootStatus) error { return s.setBootStatusesEach(ctx, tx, g) })
}

func (s *Store) setBootStatusesEach(ctx context.Context, tx *sql.Tx, bs []store.BootStatus) error {
	flag, upsert := s.stmt(ctx, tx, stmtSetBootedSeen), s.stmt(ctx, tx, stmtUpsertBootStatus)
	for _, b := range bs {
		// The flag first: that it matched no row says that the
		// device was forgotten meanwhile, without a query of its own.
		res, err := flag.ExecContext(s.short(ctx), boolInt(b.Booted), nullMicros(b.LastSeen), b.MAC)
		if err != nil {
			return fmt.Errorf("record boot status of %s: %w", b.MAC, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("record boot status of %s: %w", b.MAC, err)
		} else if n == 0 {
			continue // forgotten meanwhile
		}
		if _, err := upsert.ExecContext(s.short(ctx), b.MAC, b.BootID, boolInt(b.Booted), micros(b.Since), b.Cause, b.Method, b.LastMethod, b.RetriesLeft); err != nil {
			return fmt.Errorf("record boot status of %s: %w", b.MAC, err)
		}
	}
	return nil
}

// BootStatuses implements store.Store.
func (s *Store) BootStatuses(ctx context.Context) ([]store.BootStatus, error) {
	rows, err := s.stmts[stmtBootStatuses].QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read boot status: %w", err)
	}
	defer rows.Close()
	var out []store.BootStatus
	for rows.Next() {
		var b store.BootStatus
		var booted int
		var since int64
		if err := rows.Scan(&b.MAC, &b.BootID, &booted, &since, &b.Cause, &b.Method, &b.LastMethod, &b.RetriesLeft); err != nil {
			return nil, fmt.Errorf("read boot status: %w", err)
		}
		b.Booted = booted != 0
		b.Since = time.UnixMicro(since).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read boot status: %w", err)
	}
	return out, nil
}

// SetRebootsBooted implements store.Store.
func (s *Store) SetRebootsBooted(ctx context.Context, bs []store.RebootBoot) error {
	if len(bs) == 0 {
		return nil
	}
	return s.inGroupedTx(ctx, "record reboot boot times", func(tx *sql.Tx, grouped bool) error { return s.setRebootsBooted(ctx, tx, bs, grouped) })
}

// setRebootsBooted writes bs, in groups (see group.go) if grouped; a group
// naming a reboot twice is written row by row (the last must win).
func (s *Store) setRebootsBooted(ctx context.Context, tx *sql.Tx, bs []store.RebootBoot, grouped bool) error {
	for _, b := range bs {
		if b.At.IsZero() {
			return fmt.Errorf("record boot time of reboot %s: %w: no time", b.ID, vocab.ErrInvalid)
		}
	}
	if !grouped {
		return s.setRebootsBootedEach(ctx, tx, bs)
	}
	var args []any
	id := func(b store.RebootBoot) string { return b.ID }
	return inGroups(s.d, bs, id, func(g []store.RebootBoot) error {
		args = args[:0]
		for _, b := range g {
			args = append(args, b.ID, micros(b.At), b.BootID)
		}
		if _, err := s.groupExec(s.short(ctx), tx, groupSetRebootBooted, len(g), args); err != nil {
			return groupError{fmt.Errorf("record reboot boot times: %w", err)}
		}
		return nil
	}, func(g []store.RebootBoot) error { return s.setRebootsBootedEach(ctx, tx, g) })
}

func (s *Store) setRebootsBootedEach(ctx context.Context, tx *sql.Tx, bs []store.RebootBoot) error {
	stmt := s.stmt(ctx, tx, stmtSetRebootBooted)
	for _, b := range bs {
		if _, err := stmt.ExecContext(s.short(ctx), micros(b.At), b.BootID, b.ID); err != nil {
			return fmt.Errorf("record boot time of reboot %s: %w", b.ID, err)
		}
	}
	return nil
}

// AddLogLines implements store.Store.
func (s *Store) AddLogLines(ctx context.Context, ls []store.LogLine) error {
	if len(ls) == 0 {
		return nil
	}
	return s.inGroupedTx(ctx, "record platform log", func(tx *sql.Tx, grouped bool) error { return s.addLogLines(ctx, tx, ls, grouped) })
}

// addLogLines writes ls, in groups (see group.go) if grouped.
func (s *Store) addLogLines(ctx context.Context, tx *sql.Tx, ls []store.LogLine, grouped bool) error {
	if !grouped {
		return s.addLogLinesEach(ctx, tx, ls)
	}
	var args []any
	return inGroups(s.d, ls, nil, func(g []store.LogLine) error {
		args = args[:0]
		for _, l := range g {
			args = append(args, l.Seq, micros(l.At), l.Stream, l.Node, l.Line)
		}
		if _, err := s.groupExec(s.short(ctx), tx, groupInsertLogLine, len(g), args); err != nil {
			return groupError{fmt.Errorf("record platform log: %w", err)}
		}
		return nil
	}, func(g []store.LogLine) error { return s.addLogLinesEach(ctx, tx, g) })
}

func (s *Store) addLogLinesEach(ctx context.Context, tx *sql.Tx, ls []store.LogLine) error {
	stmt := s.stmt(ctx, tx, stmtInsertLogLine)
	for _, l := range ls {
		if _, err := stmt.ExecContext(s.short(ctx), l.Seq, micros(l.At), l.Stream, l.Node, l.Line); err != nil {
			if s.d.IsUniqueViolation != nil && s.d.IsUniqueViolation(err) {
				return fmt.Errorf("record log line %d: %w: sequence number already used", l.Seq, vocab.ErrConflict)
			}
			return fmt.Errorf("record log line %d: %w", l.Seq, err)
		}
	}
	return nil
}

// LogLines implements store.Store.
func (s *Store) LogLines(ctx context.Context, after int64, limit int) ([]store.LogLine, error) {
	if limit < 0 {
		return nil, fmt.Errorf("read platform log: limit %d: %w: must be >= 0", limit, vocab.ErrInvalid)
	}
	q := `SELECT seq, at, stream, node, line FROM platform_log WHERE seq > ? ORDER BY seq DESC`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), after)
	if err != nil {
		return nil, fmt.Errorf("read platform log: %w", err)
	}
	defer rows.Close()
	var out []store.LogLine
	for rows.Next() {
		var l store.LogLine
		var at int64
		if err := rows.Scan(&l.Seq, &at, &l.Stream, &l.Node, &l.Line); err != nil {
			return nil, fmt.Errorf("read platform log: %w", err)
		}
		l.At = time.UnixMicro(at).UTC()
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read platform log: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// SetBootState does SetBootStatuses, SetRebootsBooted and AddLogLines in
// one transaction, all or nothing: the boot tracker's flush.
func (s *Store) SetBootState(ctx context.Context, bs []store.BootStatus, rb []store.RebootBoot, ls []store.LogLine) error {
	if len(bs)+len(rb)+len(ls) == 0 {
		return nil
	}
	return s.inGroupedTx(ctx, "record boot state", func(tx *sql.Tx, grouped bool) error {
		if err := s.setBootStatuses(ctx, tx, bs, grouped); err != nil {
			return err
		}
		if err := s.setRebootsBooted(ctx, tx, rb, grouped); err != nil {
			return err
		}
		return s.addLogLines(ctx, tx, ls, grouped)
	})
}
