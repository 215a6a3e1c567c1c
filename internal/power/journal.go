package power

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Restored is the outcome of restoring power to one journalled outlet.
type Restored struct {
	Record OffRecord
	Err    error // nil: the outlet is on and its record is cleared
}

// Restore switches on every outlet recorded in j, through s, and reports
// each result, in journal order. The server calls it at start-up, so that a
// server killed between "off" and "on" leaves no node dark, and reports
// each failure (WalT: "Failed to restore PoE on switch S port P"). The error
// is for a failure to read the journal.
func Restore(ctx context.Context, j Journal, s Switcher) ([]Restored, error) {
	recs, err := j.ListOff(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore power: read the power journal: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	changes := make([]Change, len(recs))
	for i, r := range recs {
		changes[i] = Change{Outlet: r.Outlet, State: On}
	}
	errs := s.Switch(ctx, changes)
	out := make([]Restored, len(recs))
	for i, r := range recs {
		out[i] = Restored{Record: r, Err: errs[i]}
	}
	return out, nil
}

// MemJournal is a Journal in memory, for the lab and tests: it survives a
// driver, not a process. Its zero value is empty and ready.
type MemJournal struct {
	mu   sync.Mutex
	recs map[Outlet]OffRecord // +checklocks:mu
	// Fail, when not nil, is returned by RecordOff (fault injection).
	fail error // +checklocks:mu
}

// FailRecords makes RecordOff fail with err (nil: succeed again).
func (m *MemJournal) FailRecords(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// RecordOff implements Journal.
func (m *MemJournal) RecordOff(ctx context.Context, records []OffRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.recs == nil {
		m.recs = map[Outlet]OffRecord{}
	}
	for _, r := range records {
		if r.Reason == "" {
			return errors.New("record power-off: empty reason")
		}
		m.recs[r.Outlet] = r
	}
	return nil
}

// ClearOff implements Journal.
func (m *MemJournal) ClearOff(ctx context.Context, outlets []Outlet) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range outlets {
		delete(m.recs, o)
	}
	return nil
}

// ListOff implements Journal; records come sorted by switch and port.
func (m *MemJournal) ListOff(ctx context.Context) ([]OffRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]OffRecord, 0, len(m.recs))
	for _, r := range m.recs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b OffRecord) int {
		return cmp.Or(strings.Compare(a.Outlet.Switch, b.Outlet.Switch), cmp.Compare(a.Outlet.Port, b.Outlet.Port))
	})
	return out, nil
}

var _ Journal = (*MemJournal)(nil)
