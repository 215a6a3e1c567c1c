// Command walt-server is the WalT testbed server: node inventory, settings,
// ownership and the reboot engine, served as an HTTP/JSON API under /api/v1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/walt-testbed/walt/internal/bound"
	"github.com/walt-testbed/walt/internal/config"
	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/poe"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/bmcreboot"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/postgres"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/store/sqlstore"
	"github.com/walt-testbed/walt/internal/version"
	"github.com/walt-testbed/walt/internal/wiring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "walt-server: %v\n", err)
		os.Exit(1)
	}
}

// maxMaxConns bounds --max-conns: each connection holds a file descriptor.
const maxMaxConns = 1 << 20

// defaultDataDir is /var/lib/walt for root, else the XDG data directory.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/walt"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "walt")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "walt")
	}
	return "walt-data"
}

// defaultConfigFile is read at start if it exists and no other is chosen.
const defaultConfigFile = "/etc/walt/server.conf"

// isSetting tells the flags that are also settings (in the configuration
// file and the environment) from those only for a command line.
func isSetting(flag string) bool {
	return flag != "config" && flag != "version" && flag != "print-config" && flag != "cpuprofile"
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("walt-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rc := reboot.DefaultConfig()
	configFile := fs.String("config", "", "configuration `file` (TOML, keys as flag names; default $WALT_CONFIG, else "+defaultConfigFile+" if it exists)")
	dataDir := fs.String("data", defaultDataDir(), "`directory` holding the database (created if missing)")
	dbURL := fs.String("db", "", "PostgreSQL `URL` (postgres://user@host/db) instead of the SQLite file in the data directory")
	listen := fs.String("listen", ":12345", "`address` of the HTTP API")
	fs.DurationVar(&rc.ConnectTimeout, "connect-timeout", rc.ConnectTimeout, "soft reboot: deadline to connect to a node's agent")
	fs.DurationVar(&rc.ReplyTimeout, "reply-timeout", rc.ReplyTimeout, "soft reboot: deadline for the agent's reply")
	fs.IntVar(&rc.Fanout, "fanout", rc.Fanout, "most nodes rebooted at once")
	powersave := fs.Duration("powersave", server.DefaultPowersave, "idle `time` after which free nodes on switches with poe.reboots=true are powered off (0: never)")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "most API `connections` open at once; beyond, the one idle the longest is closed, or new ones wait until one closes")
	maxConnsPerPeer := fs.Int("max-conns-per-peer", server.DefaultMaxConnsPerPeer, "most API `connections` open at once from one address other than this host's 127.0.0.1 and ::1; beyond, new ones are closed")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	logJSON := fs.Bool("log-json", false, "deprecated: same as --log-format json")
	debug := fs.Bool("debug", false, "log debug messages (one line per node rebooted)")
	var to tlsOptions
	fs.StringVar(&to.mode, "tls", "auto", "serve the API over TLS: `auto` (unless --listen is loopback), on, or off (plain HTTP beyond loopback, logged)")
	fs.StringVar(&to.cert, "tls-cert", "", "TLS certificate `file` (PEM; default: one generated in the data directory)")
	fs.StringVar(&to.key, "tls-key", "", "TLS key `file` of --tls-cert (PEM, mode 0600)")
	var vo vnodeOptions
	vo.register(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (Go pprof) of the server's run to `file`, for developers (docs/bench.md; a flag only)")
	printConfig := fs.Bool("print-config", false, "print a configuration file with every setting commented out at its default, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: walt-server [flags]\n       walt-server [flags] user add|list|remove|token|revoke ... (walt-server user --help)\n\nEvery flag but --config, --version, --print-config and --cpuprofile may also be set as WALT_<FLAG> (e.g. WALT_REPLY_TIMEOUT)\nor in the configuration file; a flag wins over the environment, which wins over the file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		version.Print(stdout, "walt-server")
		return nil
	}
	if *printConfig {
		return writeConfFile(stdout, fs)
	}
	userCmd := fs.NArg() > 0 && fs.Arg(0) == "user" // walt-server [flags] user ... (user.go)
	if fs.NArg() > 0 && !userCmd {
		return fmt.Errorf("unexpected argument %q (walt-server takes flags, or user COMMAND: walt-server user --help)", fs.Arg(0))
	}
	if *configFile == "" {
		*configFile = os.Getenv("WALT_CONFIG")
	}
	src, err := config.Loader{Default: defaultConfigFile, Getenv: os.Getenv, Skip: func(f string) bool { return !isSetting(f) }}.Fill(fs, *configFile)
	if err != nil {
		return err
	}
	if *logJSON {
		*logFormat = "json"
	}
	if err := errors.Join(
		bound.Duration{Name: src.Name("powersave"), Min: 0, Max: 30 * 24 * time.Hour}.Check(*powersave),
		bound.Duration{Name: src.Name("connect-timeout"), Min: time.Millisecond, Max: 10 * time.Minute}.Check(rc.ConnectTimeout),
		bound.Duration{Name: src.Name("reply-timeout"), Min: time.Millisecond, Max: 10 * time.Minute}.Check(rc.ReplyTimeout),
		bound.Int{Name: src.Name("fanout"), Min: 1, Max: 1 << 20}.Check(int64(rc.Fanout)),
		bound.Int{Name: src.Name("max-conns"), Min: 1, Max: maxMaxConns}.Check(int64(*maxConns)),
		bound.Int{Name: src.Name("max-conns-per-peer"), Min: 1, Max: maxMaxConns}.Check(int64(*maxConnsPerPeer)),
		checkLogFormat(src.Name("log-format"), *logFormat),
	); err != nil {
		return err
	}
	if err := vo.validate(src.Name); err != nil {
		return err
	}
	if *dbURL != "" && !postgres.IsURL(*dbURL) {
		return fmt.Errorf("%s %q: want a postgres:// URL (without it, the SQLite file in --data is used)", src.Name("db"), redactURL(*dbURL))
	}
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if *debug {
		opts.Level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if *logFormat == "json" {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	if src.File != "" {
		log.Info("configuration file read", "file", src.File)
	}

	if err := prepareDataDir(*dataDir); err != nil {
		return err
	}
	if userCmd {
		st, _, err := openStore(ctx, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), *dbURL, *dataDir)
		if err != nil {
			return err
		}
		defer st.Close()
		return runUser(ctx, st, fs.Args()[1:], stdout, stderr)
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Listen first: a port in use is the first thing a new user meets, and
	// from here on the API takes connections, which it answers once the
	// store is open (milliseconds); nothing slow comes before Serve.
	ln, err := listenAPI(*listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	tlsCfg, err := serverTLS(log, to, src.Name, *dataDir, *listen)
	if err != nil {
		return err
	}
	serverID, err := loadServerID(*dataDir)
	if err != nil {
		return err
	}
	st, storeName, err := openStore(ctx, log, *dbURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()

	sup, err := newSupervisor(&vo, *dataDir, *listen, log)
	if err != nil {
		return err
	}
	cfg := server.Config{Store: st, ServerID: serverID, Reboot: rc, ShutdownGrace: 10 * time.Second, Logger: log,
		Version: version.String(), StoreName: storeName, TLS: tlsCfg,
		// A PostgreSQL database may be shared by several servers: another
		// server's device writes are not seen by this one's cache.
		SharedStore: storeName == "postgres"}
	cfg.Powersave, cfg.MaxConns, cfg.MaxConnsPerPeer = *powersave, *maxConns, min(*maxConnsPerPeer, *maxConns)
	// Hard-reboot drivers, as the test harnesses build them. PoE: switches
	// reached over SNMP, their settings and the ports the server turned
	// off kept in the store.
	poeDriver, journal, err := wiring.Drivers(&cfg, poe.DefaultConfig(), sup)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}

	// Start-up work that can take seconds runs while the API serves; GET
	// /api/v1/health lists what is still running. Serve owns it, with the
	// vnode supervisor: when Serve returns, no VM outlives the server.
	restore := server.Task{Starting: "restore PoE", Run: func(ctx context.Context) {
		restorePower(ctx, log, journal, poeDriver, func(mac string) string {
			if d, err := st.Device(ctx, mac); err == nil {
				return d.Name
			}
			return mac
		})
	}}
	// Nodes whose BMC or power.command the server had switched off.
	restoreBMC := server.Task{Starting: "restore node power", Run: func(ctx context.Context) {
		restoreNodePower(ctx, log, st, cfg.Reboot.Methods)
	}}
	return srv.Serve(ctx, ln, append([]server.Task{restore, restoreBMC}, vnodeTasks(srv, sup, log)...)...)
}

// startCPUProfile starts profiling the process's CPU into a new file at
// path (mode 0600) and returns what stops it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// checkLogFormat checks the value of --log-format, named name.
func checkLogFormat(name, format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("%s %s: want text or json", name, config.Quote(format))
	}
	return nil
}

// prepareDataDir creates the data directory if needed, readable by the
// server's user only (whoever created it: it holds the database, with
// SNMP communities, and the vnodes' consoles), and checks that the server
// can write in it.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, errors.Unwrap(err))
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: cannot make it private (mode 0700): %w", dir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w (choose another with --data)", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// listenAPI opens the API's listener, saying what to do when the address is
// taken.
func listenAPI(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen on %s: address already in use (another walt-server running? choose another address with --listen)", addr)
	case err != nil:
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// openStore opens the PostgreSQL database at dbURL, or by default the
// SQLite file in the data directory, and names the backend.
func openStore(ctx context.Context, log *slog.Logger, dbURL, dataDir string) (*sqlstore.Store, string, error) {
	switch {
	case dbURL == "":
		path := filepath.Join(dataDir, sqlite.FileName)
		st, err := sqlite.Open(ctx, path)
		if err == nil {
			log.Info("store opened", "sqlite", path)
		}
		return st, "sqlite", err
	case postgres.IsURL(dbURL):
		st, err := postgres.Open(ctx, dbURL)
		if err == nil {
			log.Info("store opened", "postgres", redactURL(dbURL))
		}
		return st, "postgres", err
	default:
		return nil, "", fmt.Errorf("--db %q: want a postgres:// URL (without --db, the SQLite file in --data is used)", redactURL(dbURL))
	}
}

// redactURL hides the password of a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// restorePower switches back on every port the server turned off and did
// not switch on again, as when it was killed in the middle of a power-cycle.
// name gives a switch's name from its journal key (its MAC).
func restorePower(ctx context.Context, log *slog.Logger, j power.Journal, s power.Switcher, name func(string) string) {
	restored, err := power.Restore(ctx, j, s)
	if err != nil {
		log.Error("cannot read the ports turned off", "err", err)
		return
	}
	for _, r := range restored {
		o := r.Record.Outlet
		if r.Err != nil {
			log.Warn("failed to restore PoE", "switch", name(o.Switch), "mac", o.Switch, "port", o.Port, "reason", r.Record.Reason, "err", r.Err)
		} else {
			log.Info("PoE restored", "switch", name(o.Switch), "mac", o.Switch, "port", o.Port, "reason", r.Record.Reason)
		}
	}
}

// restoreNodePower powers on every node whose own power (BMC,
// power.command) the server cut and did not restore.
func restoreNodePower(ctx context.Context, log *slog.Logger, st store.Store, methods map[string]reboot.HardRebooter) {
	restored, err := bmcreboot.Restore(ctx, st, methods)
	if err != nil {
		log.Error("cannot read the nodes powered off", "err", err)
		return
	}
	for _, r := range restored {
		if r.Err != nil {
			log.Warn("failed to restore power", "node", r.Node, "mac", r.MAC, "reason", r.Reason, "err", r.Err)
		} else {
			log.Info("power restored", "node", r.Node, "mac", r.MAC, "reason", r.Reason)
		}
	}
}
