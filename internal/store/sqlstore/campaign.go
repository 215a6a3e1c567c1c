package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// campaignSeq parses a campaign ID: the decimal number the store gave it.
func campaignSeq(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return 0, fmt.Errorf("campaign %q: %w: campaign ids are numbers such as 12", id, vocab.ErrNotFound)
	}
	return n, nil
}

// AddCampaign implements store.Store.
func (s *Store) AddCampaign(ctx context.Context, c store.Campaign, nodes []store.CampaignNode) (string, error) {
	if c.Repeat <= 0 || c.Mode == "" || c.State == "" || c.CreatedAt.IsZero() {
		return "", fmt.Errorf("add campaign: %w: repeat, mode, state and creation time are required", vocab.ErrInvalid)
	}
	var seq int64
	err := s.inTx(ctx, "add campaign", func(tx *sql.Tx) error {
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM campaigns`).Scan(&last); err != nil {
			return fmt.Errorf("add campaign: %w", err)
		}
		seq = last.Int64 + 1
		if _, err := s.exec(ctx, tx, `INSERT INTO campaigns (seq, name, requester, node_set, mode, repeat_count, hard, until_done,
			hold, done_timeout, boot_timeout, quarantine, state, round, created_at, finished_at, force_owners) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			seq, c.Name, c.Requester, c.Set, c.Mode, c.Repeat, boolInt(c.Hard), boolInt(c.UntilDone),
			c.Hold.Microseconds(), c.DoneTimeout.Microseconds(), c.BootTimeout.Microseconds(), c.Quarantine,
			c.State, c.Round, micros(c.CreatedAt), nullMicros(c.FinishedAt), boolInt(c.Force)); err != nil {
			return fmt.Errorf("add campaign: %w", err)
		}
		for _, n := range nodes {
			n.Campaign = strconv.FormatInt(seq, 10)
			if err := s.upsertCampaignNode(ctx, tx, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(seq, 10), nil
}

func (s *Store) upsertCampaignNode(ctx context.Context, tx *sql.Tx, n store.CampaignNode) error {
	seq, err := campaignSeq(n.Campaign)
	if err != nil {
		return err
	}
	if _, err := s.stmt(ctx, tx, stmtUpsertCampaignNode).ExecContext(s.short(ctx),
		seq, n.MAC, n.Name, n.Model, n.State, n.Iteration, n.Booted, n.Failed, n.FailedInRow, n.Reason); err != nil {
		if s.isForeignKey(err) {
			return fmt.Errorf("record campaign %s node %s: %w", n.Campaign, n.Name, vocab.ErrNotFound)
		}
		return fmt.Errorf("record campaign %s node %s: %w", n.Campaign, n.Name, err)
	}
	return nil
}

// isForeignKey reports whether err is a foreign key violation (the
// referenced campaign or node does not exist).
func (s *Store) isForeignKey(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "foreign key")
}

// UpdateCampaign implements store.Store.
func (s *Store) UpdateCampaign(ctx context.Context, c store.Campaign) error {
	seq, err := campaignSeq(c.ID)
	if err != nil {
		return err
	}
	res, err := s.exec(s.short(ctx), s.db, `UPDATE campaigns SET state = ?, round = ?, finished_at = ? WHERE seq = ?`,
		c.State, c.Round, nullMicros(c.FinishedAt), seq)
	if err != nil {
		return fmt.Errorf("update campaign %s: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update campaign %s: %w", c.ID, err)
	} else if n == 0 {
		return fmt.Errorf("update campaign %s: %w", c.ID, vocab.ErrNotFound)
	}
	return nil
}

// Campaigns implements store.Store.
func (s *Store) Campaigns(ctx context.Context, f store.CampaignFilter) ([]store.Campaign, error) {
	q := `SELECT seq, name, requester, node_set, mode, repeat_count, hard, until_done, hold, done_timeout, boot_timeout,
		quarantine, state, round, created_at, finished_at, force_owners FROM campaigns`
	var where []string
	var args []any
	if f.ID != "" {
		seq, err := campaignSeq(f.ID)
		if err != nil {
			return nil, nil // no campaign has that id
		}
		where, args = append(where, "seq = ?"), append(args, seq)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC"
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	defer rows.Close()
	var out []store.Campaign
	for rows.Next() {
		var c store.Campaign
		var seq, hold, doneTimeout, bootTimeout, created int64
		var hard, untilDone, force int
		var finished sql.NullInt64
		if err := rows.Scan(&seq, &c.Name, &c.Requester, &c.Set, &c.Mode, &c.Repeat, &hard, &untilDone, &hold, &doneTimeout, &bootTimeout,
			&c.Quarantine, &c.State, &c.Round, &created, &finished, &force); err != nil {
			return nil, fmt.Errorf("read campaigns: %w", err)
		}
		c.ID = strconv.FormatInt(seq, 10)
		c.Hard, c.UntilDone, c.Force = hard != 0, untilDone != 0, force != 0
		c.Hold, c.DoneTimeout, c.BootTimeout = time.Duration(hold)*time.Microsecond, time.Duration(doneTimeout)*time.Microsecond, time.Duration(bootTimeout)*time.Microsecond
		c.CreatedAt, c.FinishedAt = time.UnixMicro(created).UTC(), fromMicros(finished)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	return out, nil
}

// CampaignNodes implements store.Store.
func (s *Store) CampaignNodes(ctx context.Context, id string) ([]store.CampaignNode, error) {
	seq, err := campaignSeq(id)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT mac, name, model, state, iteration, booted, failed, failed_in_row, reason
		FROM campaign_nodes WHERE campaign = ? ORDER BY name`), seq)
	if err != nil {
		return nil, fmt.Errorf("read campaign %s nodes: %w", id, err)
	}
	defer rows.Close()
	var out []store.CampaignNode
	for rows.Next() {
		n := store.CampaignNode{Campaign: id}
		if err := rows.Scan(&n.MAC, &n.Name, &n.Model, &n.State, &n.Iteration, &n.Booted, &n.Failed, &n.FailedInRow, &n.Reason); err != nil {
			return nil, fmt.Errorf("read campaign %s nodes: %w", id, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read campaign %s nodes: %w", id, err)
	}
	return out, nil
}

// SaveCampaignProgress implements store.Store.
func (s *Store) SaveCampaignProgress(ctx context.Context, nodes []store.CampaignNode, boots []store.CampaignBoot) error {
	if len(nodes)+len(boots) == 0 {
		return nil
	}
	return s.inTx(ctx, "record campaign progress", func(tx *sql.Tx) error {
		for _, n := range nodes {
			if err := s.upsertCampaignNode(ctx, tx, n); err != nil {
				return err
			}
		}
		for _, b := range boots {
			if err := s.upsertCampaignBoot(ctx, tx, b); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) upsertCampaignBoot(ctx context.Context, tx *sql.Tx, b store.CampaignBoot) error {
	seq, err := campaignSeq(b.Campaign)
	if err != nil {
		return err
	}
	if b.RequestedAt.IsZero() || b.Iteration <= 0 || b.Outcome == "" {
		return fmt.Errorf("record campaign %s boot %d of %s: %w: iteration, request time and outcome are required", b.Campaign, b.Iteration, b.Name, vocab.ErrInvalid)
	}
	metrics := "{}"
	if len(b.Metrics) > 0 {
		m, err := json.Marshal(b.Metrics)
		if err != nil {
			return fmt.Errorf("record campaign %s boot %d of %s: %w: metrics: %v", b.Campaign, b.Iteration, b.Name, vocab.ErrInvalid, err)
		}
		metrics = string(m)
	}
	if _, err := s.stmt(ctx, tx, stmtUpsertCampaignBoot).ExecContext(s.short(ctx),
		seq, b.MAC, b.Name, b.Iteration, b.RebootID, b.PrevBootID, micros(b.RequestedAt), nullMicros(b.AckAt), nullMicros(b.DownAt),
		nullMicros(b.BootedAt), nullMicros(b.DoneAt), b.Method, b.NodeMethod, boolInt(b.Fallback), boolInt(b.Rescued), b.BootID,
		b.Status, metrics, b.Outcome, b.Error, b.Code); err != nil {
		if s.isForeignKey(err) {
			return fmt.Errorf("record campaign %s boot %d of %s: %w: no such campaign node", b.Campaign, b.Iteration, b.Name, vocab.ErrNotFound)
		}
		return fmt.Errorf("record campaign %s boot %d of %s: %w", b.Campaign, b.Iteration, b.Name, err)
	}
	return nil
}

// CampaignBoots implements store.Store.
func (s *Store) CampaignBoots(ctx context.Context, id string) ([]store.CampaignBoot, error) {
	seq, err := campaignSeq(id)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT mac, name, iteration, reboot_id, prev_boot_id, requested_at, ack_at, down_at,
		booted_at, done_at, method, node_method, fallback, rescued, boot_id, status, metrics, outcome, error, code
		FROM campaign_boots WHERE campaign = ? ORDER BY iteration, name`), seq)
	if err != nil {
		return nil, fmt.Errorf("read campaign %s boots: %w", id, err)
	}
	defer rows.Close()
	var out []store.CampaignBoot
	for rows.Next() {
		b := store.CampaignBoot{Campaign: id}
		var requested int64
		var ack, down, booted, done sql.NullInt64
		var fallback, rescued int
		var metrics string
		if err := rows.Scan(&b.MAC, &b.Name, &b.Iteration, &b.RebootID, &b.PrevBootID, &requested, &ack, &down, &booted, &done,
			&b.Method, &b.NodeMethod, &fallback, &rescued, &b.BootID, &b.Status, &metrics, &b.Outcome, &b.Error, &b.Code); err != nil {
			return nil, fmt.Errorf("read campaign %s boots: %w", id, err)
		}
		b.RequestedAt = time.UnixMicro(requested).UTC()
		b.AckAt, b.DownAt, b.BootedAt, b.DoneAt = fromMicros(ack), fromMicros(down), fromMicros(booted), fromMicros(done)
		b.Fallback, b.Rescued = fallback != 0, rescued != 0
		if metrics != "{}" && metrics != "" {
			if err := json.Unmarshal([]byte(metrics), &b.Metrics); err != nil {
				return nil, fmt.Errorf("read campaign %s boots: metrics of %s iteration %d: %w", id, b.Name, b.Iteration, err)
			}
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read campaign %s boots: %w", id, err)
	}
	return out, nil
}

// UnbootedCampaignBoots implements store.Store: for each node of the
// campaigns in that state, its latest iteration (the end of the primary
// key's range of the node) and that row, by primary key. The CROSS JOIN
// keeps SQLite, without statistics, from scanning every row of the
// campaigns instead (PostgreSQL reads it as a plain join).
func (s *Store) UnbootedCampaignBoots(ctx context.Context, campaignState string, outcomes []string) ([]store.CampaignBoot, error) {
	if len(outcomes) == 0 {
		return nil, nil
	}
	args := []any{campaignState}
	for _, o := range outcomes {
		args = append(args, o)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT b.campaign, b.mac, b.name, b.iteration, b.reboot_id, b.prev_boot_id, b.requested_at,
		b.ack_at, b.down_at, b.method, b.fallback, b.status, b.outcome
		FROM campaigns c JOIN campaign_nodes n ON n.campaign = c.seq
		CROSS JOIN campaign_boots b
		WHERE b.campaign = n.campaign AND b.mac = n.mac
			AND b.iteration = (SELECT MAX(m.iteration) FROM campaign_boots m WHERE m.campaign = n.campaign AND m.mac = n.mac)
			AND c.state = ? AND b.booted_at IS NULL AND b.outcome IN (?`+strings.Repeat(", ?", len(outcomes)-1)+`)
		ORDER BY b.campaign, b.name`), args...)
	if err != nil {
		return nil, fmt.Errorf("read unbooted campaign boots: %w", err)
	}
	defer rows.Close()
	var out []store.CampaignBoot
	for rows.Next() {
		var b store.CampaignBoot
		var seq, requested int64
		var ack, down sql.NullInt64
		var fallback int
		if err := rows.Scan(&seq, &b.MAC, &b.Name, &b.Iteration, &b.RebootID, &b.PrevBootID, &requested, &ack, &down,
			&b.Method, &fallback, &b.Status, &b.Outcome); err != nil {
			return nil, fmt.Errorf("read unbooted campaign boots: %w", err)
		}
		b.Campaign = strconv.FormatInt(seq, 10)
		b.RequestedAt, b.AckAt, b.DownAt = time.UnixMicro(requested).UTC(), fromMicros(ack), fromMicros(down)
		b.Fallback = fallback != 0
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unbooted campaign boots: %w", err)
	}
	return out, nil
}

// SetQuarantines implements store.Store.
func (s *Store) SetQuarantines(ctx context.Context, qs []store.Quarantine) error {
	if len(qs) == 0 {
		return nil
	}
	return s.inTx(ctx, "record quarantine", func(tx *sql.Tx) error {
		for _, q := range qs {
			var one int
			err := tx.QueryRowContext(s.short(ctx), s.d.rebind(`SELECT 1 FROM devices WHERE mac = ?`), q.MAC).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				continue // forgotten meanwhile
			}
			if err != nil {
				return fmt.Errorf("record quarantine of %s: %w", q.MAC, err)
			}
			if _, err := s.exec(s.short(ctx), tx, `INSERT INTO quarantine (mac, campaign, reason, since) VALUES (?, ?, ?, ?)
				ON CONFLICT (mac) DO UPDATE SET campaign = excluded.campaign, reason = excluded.reason, since = excluded.since`,
				q.MAC, q.Campaign, q.Reason, micros(q.Since)); err != nil {
				return fmt.Errorf("record quarantine of %s: %w", q.MAC, err)
			}
		}
		return nil
	})
}

// ClearQuarantine implements store.Store.
func (s *Store) ClearQuarantine(ctx context.Context, mac string) (bool, error) {
	res, err := s.exec(s.short(ctx), s.db, `DELETE FROM quarantine WHERE mac = ?`, mac)
	if err != nil {
		return false, fmt.Errorf("clear quarantine of %s: %w", mac, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("clear quarantine of %s: %w", mac, err)
	}
	return n > 0, nil
}

// Quarantines implements store.Store.
func (s *Store) Quarantines(ctx context.Context) ([]store.Quarantine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT mac, campaign, reason, since FROM quarantine ORDER BY mac`)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	defer rows.Close()
	var out []store.Quarantine
	for rows.Next() {
		var q store.Quarantine
		var since int64
		if err := rows.Scan(&q.MAC, &q.Campaign, &q.Reason, &since); err != nil {
			return nil, fmt.Errorf("read quarantine: %w", err)
		}
		q.Since = time.UnixMicro(since).UTC()
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	return out, nil
}
