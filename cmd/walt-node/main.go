// Command walt-node is the agent that runs on every WalT node. It serves
// WalT's node protocol on TCP port 12346 and reboots the node when the server
// asks, with the procedure of the node's boot mode. See docs/node-agent.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/internal/agent"
	"github.com/walt-testbed/walt/internal/experiment"
	"github.com/walt-testbed/walt/internal/netservice"
	"github.com/walt-testbed/walt/internal/version"
)

// Exit statuses; agent.ExitRebooted (10) is the fourth.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// defaultConfigFile is read, when it exists, for settings not given as
// flags or WALT_* environment variables. A node image enables real reboots
// by holding "reboot-action = system" there.
const defaultConfigFile = "/etc/walt/node.conf"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if isKexecHook(os.Args) {
		// Started as a reboot hook of the image (or by hand, for a check).
		os.Exit(agent.RunKexecHook(os.Getenv, agent.SystemKexec{}, os.Stderr))
	}
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// isKexecHook reports whether walt-node was started as the kexec reboot
// hook: under one of the hook names, or as "walt-node kexec-reboot".
func isKexecHook(args []string) bool {
	if len(args) > 1 && args[1] == "kexec-reboot" {
		return true
	}
	return slices.Contains(agent.KexecHookNames, filepath.Base(args[0]))
}

type options struct {
	listen, root, bootMode, virtual, action, logLevel string
	logFormat                                         string
	allowShell                                        bool
	server, mac, ip, name, model                      string // reporting to walt-server
	contextDir                                        string // where the boot context is written
	serverIPs                                         string
	allowFrom                                         string
	maxConns, maxConnsPerPeer                         int
	hookTimeout, shutdownGrace                        time.Duration
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "context":
			return runContext(args[1:], getenv, stdout, stderr)
		case "done":
			return runDone(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	var o options
	fs, config := newFlags(&o, stderr)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *showVersion {
		version.Print(stdout, "walt-node")
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walt-node: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if err := fillUnset(fs, *config, getenv); err != nil {
		fmt.Fprintf(stderr, "walt-node: %v\n", err)
		return exitUsage
	}
	cfg, err := o.agentConfig(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "walt-node: %v\n", err)
		return exitUsage
	}
	cfg.Servers = o.serverAddrs(ctx, cfg.Servers, cfg.Logger)
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "walt-node: %v\n", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintf(stderr, "walt-node: %v\n", err)
		return exitError
	}
	cfg.Logger.Info("walt-node serving", "version", version.String(), "listen", ln.Addr().String(), "boot_mode", cfg.BootMode,
		"virtual", cfg.Virtual, "reboot_action", cfg.Action.String(), "shell", cfg.AllowShell,
		"servers", cfg.Servers, "obeys_servers_only", cfg.ObeyServers, "allow_from", cfg.AllowFrom, "max_conns", o.maxConns, "max_conns_per_peer", o.maxConnsPerPeer)
	if o.server != "" {
		go report(ctx, &o, ln.Addr(), string(cfg.BootMode), cfg.Virtual, cfg.Action.Kind == agent.ActionSystem, cfg.Logger)
	}
	switch err := a.Serve(ctx, ln); {
	case errors.Is(err, agent.ErrRebooted):
		return agent.ExitRebooted
	case err != nil:
		cfg.Logger.Error("serve failed", "err", err)
		return exitError
	}
	return exitOK
}

// newFlags defines walt-node's flags, which are also its settings, on a
// new FlagSet that fills o; it also returns the --config value.
func newFlags(o *options, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("walt-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "settings file (key = value lines, keys as flag names; default "+defaultConfigFile+" if it exists)")
	fs.StringVar(&o.listen, "listen", "0.0.0.0:12346", "address to serve WalT's node protocol on")
	fs.StringVar(&o.root, "root", "/", "image root, where reboot hooks and /bin/blink are looked up")
	fs.StringVar(&o.bootMode, "boot-mode", "auto", "auto, network, hybrid-volatile or hybrid-persistent")
	fs.StringVar(&o.virtual, "virtual", "auto", "auto (DMI vendor is QEMU), true or false; virtual nodes never run hooks")
	fs.StringVar(&o.action, "reboot-action", "", "what REBOOT does: system (really reboot), exit (exit with status 10), log:FILE (record the procedure); unset: refuse")
	fs.BoolVar(&o.allowShell, "allow-shell", false, "enable the unauthenticated SHELL request (debugging only)")
	fs.DurationVar(&o.hookTimeout, "hook-timeout", agent.DefaultHookTimeout, "deadline of a reboot hook, then the reboot is forced")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", agent.DefaultShutdownGrace, "time an orderly shutdown may take before the reboot is forced")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json (one JSON object a line)")
	fs.StringVar(&o.server, "server", "", "walt-server URL to report this node to, e.g. http://192.168.152.1:12345 (unset: no report)")
	fs.StringVar(&o.mac, "mac", "", "MAC address to report (default: that of the interface used to reach the server)")
	fs.StringVar(&o.ip, "ip", "", "IP address to report, where the server reaches this agent (default: that of the interface used to reach the server; give it behind NAT, e.g. a VM on QEMU user networking with a port forward)")
	fs.StringVar(&o.name, "name", "", "node name to report (default: host name)")
	fs.StringVar(&o.model, "model", "", "node model to report (default: unknown)")
	fs.StringVar(&o.contextDir, "context-dir", experiment.DefaultDir, "directory where the boot context the server gives is written for the experiment ("+experiment.ContextJSON+", "+experiment.ContextEnv+")")
	fs.StringVar(&o.serverIPs, "server-ip", "", "comma-separated addresses of the WalT server(s), whose connections are never refused because of other peers' (always added: the host of --server and walt_server_ip of <root>/bin/walt-env)")
	fs.StringVar(&o.allowFrom, "allow-from", "", "with --server: comma-separated `CIDRs` whose peers may send REBOOT, BLINK, DMESG and SHELL besides the server's addresses")
	fs.IntVar(&o.maxConns, "max-conns", netservice.DefaultMaxConns, "connections served at once from peers other than the server")
	fs.IntVar(&o.maxConnsPerPeer, "max-conns-per-peer", netservice.DefaultMaxConnsPerPeer, "connections served at once from one IP address other than the server's")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	return fs, config
}

func (o *options) agentConfig(stderr io.Writer) (agent.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return agent.Config{}, fmt.Errorf("invalid log level %q: want debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, hopts)
	case "json":
		h = slog.NewJSONHandler(stderr, hopts)
	default:
		return agent.Config{}, fmt.Errorf("invalid log format %s: want text or json", quoteCut(o.logFormat))
	}
	cfg := agent.Config{
		Root:            o.root,
		AllowShell:      o.allowShell,
		HookTimeout:     o.hookTimeout,
		ShutdownGrace:   o.shutdownGrace,
		MaxConns:        o.maxConns,
		MaxConnsPerPeer: o.maxConnsPerPeer,
		Logger:          slog.New(h),
	}
	if fi, err := os.Stat(o.root); err != nil || !fi.IsDir() {
		return cfg, fmt.Errorf("invalid root %q: not a directory", o.root)
	}
	var err error
	if cfg.Action, err = agent.ParseAction(o.action); err != nil {
		return cfg, err
	}
	if o.bootMode == "auto" {
		cfg.BootMode = agent.DetectBootMode(o.root, agent.MountsFile)
	} else if cfg.BootMode, err = agent.ParseBootMode(o.bootMode); err != nil {
		return cfg, err
	}
	switch o.virtual {
	case "auto":
		cfg.Virtual = agent.DetectVirtual(agent.SysVendorFile)
	case "true", "false":
		cfg.Virtual = o.virtual == "true"
	default:
		return cfg, fmt.Errorf("invalid value %q for --virtual: want auto, true or false", o.virtual)
	}
	if o.hookTimeout <= 0 || o.shutdownGrace <= 0 {
		return cfg, errors.New("--hook-timeout and --shutdown-grace must be positive")
	}
	if o.maxConns <= 0 || o.maxConnsPerPeer <= 0 {
		return cfg, fmt.Errorf("--max-conns and --max-conns-per-peer must be positive (got %d and %d)", o.maxConns, o.maxConnsPerPeer)
	}
	if o.ip != "" {
		if _, err := netip.ParseAddr(o.ip); err != nil {
			return cfg, fmt.Errorf("invalid address %s for --ip: want an IP address", quoteCut(o.ip))
		}
	}
	for _, s := range strings.Split(o.serverIPs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, fmt.Errorf("invalid address %q in --server-ip: want IP addresses separated by commas", s)
		}
		cfg.Servers = append(cfg.Servers, a.Unmap())
	}
	if cfg.AllowFrom, err = parseAllowFrom(o.allowFrom); err != nil {
		return cfg, err
	}
	if len(cfg.AllowFrom) > 0 && o.server == "" {
		return cfg, errors.New("--allow-from needs --server: without it, every peer may send every request (as with WalT's agent)")
	}
	// With --server, the node obeys its server only; without, as WalT's.
	cfg.ObeyServers = o.server != ""
	return cfg, nil
}

// serverAddrs returns the server addresses to reserve connection slots
// for: those of --server-ip (already in cfg), the host of --server
// (resolved, at most for resolveTimeout) and walt_server_ip of the image's
// walt-env.
func (o *options) serverAddrs(ctx context.Context, known []netip.Addr, log *slog.Logger) []netip.Addr {
	addrs := slices.Clone(known)
	if a, ok := agent.ServerAddrFromEnvFile(o.root); ok {
		addrs = append(addrs, a)
	}
	if o.server != "" {
		u, err := url.Parse(o.server)
		host := ""
		if err == nil {
			host = u.Hostname()
		}
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, a.Unmap())
		} else if host != "" {
			rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
			found, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
			cancel()
			if err != nil {
				log.Warn("cannot resolve the server's host name: no connection slots reserved for it", "server", o.server, "err", err)
			}
			for _, a := range found {
				addrs = append(addrs, a.Unmap())
			}
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

// resolveTimeout bounds the look-up of the server's host name at start.
const resolveTimeout = 2 * time.Second

// fillUnset gives each flag not set on the command line its value from the
// environment (WALT_<NAME>, dashes as underscores) or, failing that, from the
// settings file.
func fillUnset(fs *flag.FlagSet, configFile string, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if configFile == "" {
		configFile = getenv("WALT_CONFIG")
	}
	required := configFile != ""
	if !required {
		configFile = defaultConfigFile
	}
	file, err := readSettings(fs, configFile, required)
	if err != nil {
		return err
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || !isSetting(f.Name) {
			return
		}
		env := "WALT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%s: %w", env, quoteCut(v), err))
			}
		} else if s, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, s.value); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %s = %s: %w", configFile, s.line, f.Name, quoteCut(s.value), err))
			}
		}
	})
	return errors.Join(errs...)
}

// usageText heads walt-node --help.
const usageText = `Usage: walt-node [flags]
       walt-node context [--json|--shell] [flags]
       walt-node done [--status N] [--metric KEY=VALUE ...] [flags]
       walt-node kexec-reboot   (the kexec reboot hook; see docs/node-agent.md)

Serves WalT's node protocol and reboots the node on request.
context prints why this boot happened, as the server told (JSON, or shell
assignments with --shell); done tells the server that this boot's experiment
finished, with an exit status (0 to 255) and up to 32 metrics. See
docs/node-agent.md, "The experiment's side: boot context and done".
Every flag may also be set as WALT_<FLAG> (e.g. WALT_REBOOT_ACTION) or in the settings file.

Flags:
`

// commandLineOnly are the flags that are not settings (in the file and
// the environment): they only make sense on a command line.
var commandLineOnly = map[string]bool{"config": true, "version": true, "json": true, "shell": true, "status": true, "metric": true}

// isSetting tells the flags that are also settings (in the file and the
// environment) from those that only make sense on a command line.
func isSetting(flag string) bool { return !commandLineOnly[flag] }

type setting struct {
	value string
	line  int
}

// maxSettingsFile bounds the size of a settings file.
const maxSettingsFile = 64 << 10

// readSettings reads the settings file at path; a missing file is no error
// unless required.
func readSettings(fs *flag.FlagSet, path string, required bool) (map[string]setting, error) {
	f, err := os.Open(path)
	if err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("settings file: %w", err)
	}
	defer f.Close()
	return parseSettings(fs, path, f)
}

// parseSettings reads "key = value" lines, keys being the names of fs's
// flags but config; blank lines and lines starting with # are ignored, a
// value may be quoted, and the last line setting a key wins. Unknown keys,
// lines without "=", and a file over maxSettingsFile bytes are errors
// naming the file (as name) and the line.
func parseSettings(fs *flag.FlagSet, name string, r io.Reader) (map[string]setting, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSettingsFile+1))
	if err != nil {
		return nil, fmt.Errorf("settings file %s: %w", name, err)
	}
	if len(b) > maxSettingsFile {
		return nil, fmt.Errorf("settings file %s: over %d bytes", name, maxSettingsFile)
	}
	out := map[string]setting{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"'`)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want key = value, got %s", name, n+1, quoteCut(line))
		}
		if fs.Lookup(k) == nil || !isSetting(k) {
			return nil, fmt.Errorf("%s:%d: unknown setting %s", name, n+1, quoteCut(k))
		}
		out[k] = setting{value: v, line: n + 1}
	}
	return out, nil
}

// quoteCut quotes s for an error message, cut so that the quoted text,
// escapes included, stays within 64 bytes.
func quoteCut(s string) string {
	const max = 64
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		q := strconv.Quote(s[i : i+w])
		q = q[1 : len(q)-1]
		if b.Len()+len(q) > max {
			return b.String() + `"...`
		}
		b.WriteString(q)
		i += w
	}
	b.WriteByte('"')
	return b.String()
}

// maxAllowFrom bounds the prefixes of --allow-from.
const maxAllowFrom = 64

// parseAllowFrom reads --allow-from: prefixes (a bare address is its /32
// or /128) separated by commas.
func parseAllowFrom(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if len(out) == maxAllowFrom {
			return nil, fmt.Errorf("--allow-from: more than %d prefixes", maxAllowFrom)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("invalid prefix %.64q in --allow-from: want CIDRs such as 192.168.152.0/24, separated by commas", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
