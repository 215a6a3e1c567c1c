package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
)

// Fresh returns an empty database, and a function that closes it and opens
// the same database as a Store (which migrates it to the newest schema).
type Fresh func(t *testing.T) (db *sql.DB, open func() store.Store)

// Upgrade checks that a database left at each older schema version, holding
// data, opens with the newest schema and keeps every row: what a server
// upgrade does to a testbed's inventory and history.
func Upgrade(t *testing.T, d sqlstore.Dialect, fresh Fresh) {
	ms, err := sqlstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Skip("one schema version only: nothing to upgrade from")
	}
	for _, m := range ms[:len(ms)-1] {
		v := m.Version
		t.Run(fmt.Sprintf("from%d", v), func(t *testing.T) {
			db, open := fresh(t)
			if err := sqlstore.MigrateTo(t.Context(), db, d, v); err != nil {
				t.Fatalf("migrate to %d: %v", v, err)
			}
			seedVersion1(t, db, d)
			if v >= stateVersion {
				seedRunning(t, db, d)
			}
			s := open()
			checkVersion1Data(t, s)
			if v >= stateVersion {
				checkRunningInterrupted(t, s)
			}
		})
	}
}

// stateVersion is the schema version that added reboots.state (records
// running, done or interrupted).
const stateVersion = 3

// seedRunning writes a running record of a schema from stateVersion on,
// without the server that runs it (a column of version 8).
func seedRunning(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	at := t0.UnixMicro()
	if _, err := db.ExecContext(t.Context(), sqlstore.Rebind(d, `INSERT INTO reboots (id, batch, requester, cause, node_mac, node_name, method, ok, requested_at, ack_at, finished_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`),
		"r-running", "b-running", "alice", "reboot requested", "52:54:00:00:00:02", "rpi2", "", 0, at, at, "running"); err != nil {
		t.Fatalf("seed a running record: %v", err)
	}
}

// checkRunningInterrupted checks that the running record seedRunning
// wrote, which names no server, is marked interrupted by the start of any
// server.
func checkRunningInterrupted(t *testing.T, s store.Store) {
	t.Helper()
	if n, err := s.InterruptReboots(t.Context(), "some-server"); err != nil || n != 1 {
		t.Errorf("InterruptReboots(some-server) after upgrade = %d, %v; want 1 (the running record of no server), nil", n, err)
	}
	rs, err := s.Reboots(t.Context(), store.RebootFilter{Batch: "b-running"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].State != store.RebootInterrupted || rs[0].Server != "" {
		t.Errorf("running record after upgrade and a start = %+v, want interrupted, of no server", rs)
	}
}

// seedVersion1 writes rows with the columns of schema version 1, which later
// versions must keep.
func seedVersion1(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	t.Helper()
	at := t0.UnixMicro()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO devices (mac, name, ip, type, model, is_virtual, owner, boot_mode, booted, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"52:54:00:00:00:01", "rpi1", "127.0.0.1", "node", "rpi-b", 0, "alice", "network", 1, at, at}},
		{`INSERT INTO devices (mac, name, ip, type, model, is_virtual, owner, boot_mode, booted, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			[]any{"52:54:00:00:00:ff", "sw1", "127.0.0.255", "switch", "", 0, "", "", 0, at}},
		{`INSERT INTO settings (mac, name, value) VALUES (?, ?, ?)`, []any{"52:54:00:00:00:01", "kexec.allow", "false"}},
		{`INSERT INTO links (node_mac, switch_mac, port) VALUES (?, ?, ?)`, []any{"52:54:00:00:00:01", "52:54:00:00:00:ff", 7}},
		{`INSERT INTO reboots (id, batch, requester, cause, node_mac, node_name, method, ok, requested_at, ack_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{"r1", "b1", "alice", "reboot requested", "52:54:00:00:00:01", "rpi1", "PoE-reboot", 1, at, at + 2000, at + 3000}},
		{`INSERT INTO reboot_attempts (reboot_id, seq, method, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)`,
			[]any{"r1", 0, "soft-reboot", "connection refused", at, at + 1000}},
		{`INSERT INTO reboot_attempts (reboot_id, seq, method, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)`,
			[]any{"r1", 1, "PoE-reboot", "", at + 1000, at + 3000}},
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(t.Context(), sqlstore.Rebind(d, st.q), st.args...); err != nil {
			t.Fatalf("seed: %s: %v", st.q, err)
		}
	}
}

func checkVersion1Data(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	dev, err := s.Device(ctx, "52:54:00:00:00:01")
	if err != nil {
		t.Fatal(err)
	}
	want := store.Device{MAC: "52:54:00:00:00:01", Name: "rpi1", IP: "127.0.0.1", Type: store.TypeNode, Model: "rpi-b",
		Owner: "alice", BootMode: "network", Booted: true, CreatedAt: t0, LastSeen: t0}
	if diff := cmp.Diff(want, dev); diff != "" {
		t.Errorf("device after upgrade (-want +got):\n%s", diff)
	}
	settings, err := s.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := settings["52:54:00:00:00:01"]["kexec.allow"]; got != "false" {
		t.Errorf("setting kexec.allow after upgrade = %q, want false", got)
	}
	links, err := s.Links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Link{{NodeMAC: "52:54:00:00:00:01", SwitchMAC: "52:54:00:00:00:ff", Port: 7}}, links); diff != "" {
		t.Errorf("links after upgrade (-want +got):\n%s", diff)
	}
	rs, err := s.Reboots(ctx, store.RebootFilter{NodeMAC: "52:54:00:00:00:01"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("reboots after upgrade: %d records, want 1", len(rs))
	}
	r := rs[0]
	if r.State != store.RebootDone {
		t.Errorf("reboot after upgrade has state %q, want %q (rows before version 3 are complete)", r.State, store.RebootDone)
	}
	if r.ID != "r1" || r.Method != "PoE-reboot" || !r.OK || !r.AckAt.Equal(t0.Add(2*time.Millisecond)) || len(r.Attempts) != 2 ||
		r.Attempts[0].Error != "connection refused" || r.Attempts[1].Method != "PoE-reboot" {
		t.Errorf("reboot after upgrade = %+v", r)
	}
}
