// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb in a
// temporary directory, a server listening only on a Unix socket there, and
// one schema per test so that tests run in parallel on one cluster.
//
// WALT_TEST_POSTGRES, when set, names an existing server to use instead
// (a postgres:// URL whose user may create schemas).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// ErrNoPostgres means no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("no PostgreSQL server found (install Debian's postgresql package, or set WALT_TEST_POSTGRES)")

// Cluster is a running PostgreSQL server.
type Cluster struct {
	base  string // URL of the cluster's default database
	dir   string // temporary directory; empty for WALT_TEST_POSTGRES
	pgCtl string
	cred  *syscall.Credential
	n     atomic.Int64
}

// Start starts a cluster (or uses WALT_TEST_POSTGRES). Stop it when done.
func Start() (*Cluster, error) {
	if u := os.Getenv("WALT_TEST_POSTGRES"); u != "" {
		return &Cluster{base: u}, nil
	}
	bin, err := serverBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		c.cred, err = credential("postgres")
		if err != nil {
			return nil, err
		}
	}
	if c.dir, err = os.MkdirTemp("", "walt-pg-"); err != nil {
		return nil, err
	}
	if err := c.prepareDir(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	data := filepath.Join(c.dir, "data")
	if err := c.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "walt", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=off -c full_page_writes=off -c max_connections=200", c.dir)
	if err := c.run(c.pgCtl, "-D", data, "-w", "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "start"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	c.base = "postgres:///postgres?" + url.Values{"host": {c.dir}, "user": {"walt"}}.Encode()
	return c, nil
}

// serverBin returns the bin directory of the newest PostgreSQL installed
// the Debian way.
func serverBin() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", ErrNoPostgres
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return filepath.Dir(found[len(found)-1]), nil
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs the %q user: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *Cluster) prepareDir() error {
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid))
	}
	return nil
}

func (c *Cluster) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, out)
	}
	return nil
}

// NewSchema creates an empty schema and returns a URL whose connections
// use it.
func (c *Cluster) NewSchema(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), c.n.Add(1))
	db, err := sql.Open("pgx", c.base)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", fmt.Errorf("create schema %s: %w", name, err)
	}
	u, err := url.Parse(c.base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Stop stops the cluster and removes its files.
func (c *Cluster) Stop() {
	if c.dir == "" {
		return
	}
	c.run(c.pgCtl, "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "stop")
	os.RemoveAll(c.dir)
}
