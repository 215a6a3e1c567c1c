package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/postgres"
)

// The server id is made once, kept in the data directory (mode 0600), and
// read back at every start; another directory has another.
func TestServerIDKeptInDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id, err := loadServerID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseServerID([]byte(id)); err != nil {
		t.Errorf("new server id %q: %v", id, err)
	}
	fi, err := os.Stat(filepath.Join(dir, serverIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", serverIDFile, fi.Mode().Perm())
	}
	again, err := loadServerID(dir)
	if err != nil || again != id {
		t.Errorf("server id at the second start = %q, %v; want %q", again, err, id)
	}
	if other, err := loadServerID(t.TempDir()); err != nil || other == id {
		t.Errorf("server id of another directory = %q, %v; want one other than %q", other, err, id)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".server-id-*")); len(left) != 0 {
		t.Errorf("temporary files left in the data directory: %v", left)
	}
}

// A damaged id file is refused, naming the file and what is wrong, and
// left as it is.
func TestServerIDRefusesDamagedFile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ content, want string }{
		{"", "0 bytes, want 32 hex digits"},
		{"0123456789abcdef\n", "16 bytes, want 32 hex digits"},
		{strings.Repeat("a", 33), "longer than 32 bytes"},
		{strings.Repeat("a", 4096), "longer than 32 bytes"},
		{strings.Repeat("A", 32), `byte 0 is 'A', want a hex digit`},
		{strings.Repeat("a", 31) + "\n\n", `byte 31 is '\n', want a hex digit`},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, serverIDFile)
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		id, err := loadServerID(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("loadServerID(%q) = %q, %v; want an error naming %s and saying %q", c.content, id, err, path, c.want)
		}
		if b, _ := os.ReadFile(path); string(b) != c.content {
			t.Errorf("id file %q rewritten as %q", c.content, b)
		}
	}
}

func FuzzParseServerID(f *testing.F) {
	for _, s := range []string{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef\n", "", "\n", "xyz", strings.Repeat("f", 33)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseServerID(b)
		if err != nil {
			return
		}
		if len(id) != serverIDLen || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("parseServerID(%q) = %q, want %d hex digits", b, id, serverIDLen)
		}
		if string(b) != id && string(b) != id+"\n" {
			t.Fatalf("parseServerID(%q) = %q: not the file's content", b, id)
		}
	})
}

// Two walt-servers, from two data directories, share a PostgreSQL
// database: the start of one leaves the running reboot records of the
// other, which is still running them, alone, and marks interrupted those
// of no server (written before schema version 8); the restart of the
// first, from its data directory, marks its own.
func TestServersSharingADatabaseInterruptOnlyTheirOwnReboots(t *testing.T) {
	u := postgresSchema(t, "shared")
	dirA, dirB := t.TempDir(), t.TempDir()
	_, _, stopA := startServer(t, "127.39.0.3:12345", "--data", dirA, "--db", u)
	idA, err := readServerID(filepath.Join(dirA, serverIDFile))
	if err != nil {
		t.Fatal(err)
	}
	// Records as server A writes them when it starts reboots, and one of
	// an older walt-server.
	st, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	ids, err := st.AddReboots(t.Context(), []store.Reboot{
		{Batch: "a", NodeMAC: "52:54:00:00:39:01", NodeName: "rpi1", State: store.RebootRunning, Server: idA, RequestedAt: now, FinishedAt: now},
		{Batch: "old", NodeMAC: "52:54:00:00:39:02", NodeName: "rpi2", State: store.RebootRunning, RequestedAt: now, FinishedAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	states := func() map[string]store.RebootState {
		t.Helper()
		out := map[string]store.RebootState{}
		for _, b := range []string{"a", "old"} {
			rs, err := st.Reboots(t.Context(), store.RebootFilter{Batch: b})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				out[r.NodeName] = r.State
			}
		}
		return out
	}

	_, _, stopB := startServer(t, "127.39.0.4:12345", "--data", dirB, "--db", u)
	if got := states(); got["rpi1"] != store.RebootRunning || got["rpi2"] != store.RebootInterrupted {
		t.Errorf("after server B's start: %v, want rpi1 (server A's) running, rpi2 (no server's) interrupted", got)
	}
	if idB, err := readServerID(filepath.Join(dirB, serverIDFile)); err != nil || idB == idA {
		t.Errorf("server B's id = %q, %v; want one other than A's %q", idB, err, idA)
	}
	stopB()
	stopA()

	_, _, stopA = startServer(t, "127.39.0.3:12345", "--data", dirA, "--db", u)
	defer stopA()
	if got := states(); got["rpi1"] != store.RebootInterrupted {
		t.Errorf("after server A's restart: %v, want rpi1 interrupted (record %s)", got, ids[0])
	}
}
