package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/postgres"
	"github.com/walt-testbed/walt/internal/store/postgres/pgtest"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
	"github.com/walt-testbed/walt/internal/store/storetest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	var err error
	cluster, err = pgtest.Start()
	if err != nil {
		// CI installs PostgreSQL: there, a missing server is a failure.
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "postgres tests:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "skipping postgres tests:", err)
		os.Exit(0)
	}
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

func newSchema(t *testing.T) string {
	t.Helper()
	u, err := cluster.NewSchema(t.Context(), "t")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		u := newSchema(t)
		s, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		cur := store.Store(s)
		t.Cleanup(func() { cur.Close() })
		reopen := func() store.Store {
			cur.Close()
			s, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			cur = s
			return s
		}
		return s, reopen
	})
}

// Servers sharing one database may start together: the migration lock
// makes one of them migrate and the others find the schema ready.
func TestConcurrentOpens(t *testing.T) {
	u := newSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), u)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	ms, err := sqlstore.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != sqlstore.Newest(ms) {
		t.Errorf("schema version = %d, %v; want %d", v, err, sqlstore.Newest(ms))
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"postgres://walt:s3cret-pw@127.0.0.1:1/walt?connect_timeout=2", "postgres database walt on 127.0.0.1"},
		{"postgres://walt:s3cret-pw@[::1/x", "postgres database"},
	} {
		_, err := postgres.Open(ctx, tc.url)
		if err == nil {
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %q, want it to contain %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open(%q) error shows the password: %q", tc.url, err)
		}
	}
}

func TestIsURL(t *testing.T) {
	for s, want := range map[string]bool{
		"postgres://h/db": true, "postgresql://h/db": true, "/var/lib/walt/walt.db": false, "sqlite": false,
	} {
		if got := postgres.IsURL(s); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestUpgrade(t *testing.T) {
	storetest.Upgrade(t, postgres.Dialect, func(t *testing.T) (*sql.DB, func() store.Store) {
		u := newSchema(t)
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		return db, func() store.Store {
			db.Close()
			s, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatalf("open after upgrade: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}
