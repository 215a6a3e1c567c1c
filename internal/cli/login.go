package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/auth"
)

// Credentials (docs/cli.md, "Logging in"): walt login stores a server's
// token in <config dir>/walt/tokens, mode 0600; WALT_TOKEN wins over it.
// A token is never a command-line argument (process lists show those):
// walt login reads it from stdin or a prompt that does not echo.

func init() {
	register(&command{
		noun: "server", verb: "login",
		summary: "check a token (read from stdin or a prompt) and store it for the server (also: walt login)",
		maxArgs: 0, run: login,
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.StringVar(&o.fingerprint, "fingerprint", "", "expected `SHA256:...` fingerprint of an https server's self-signed certificate (walt-server logs it at start)")
		},
	})
}

// tokensFile is the name of the token file in the configuration
// directory; knownServersFile holds the pinned certificate fingerprints.
const (
	tokensFile       = "tokens"
	knownServersFile = "known_servers"
)

// pinKey is how known_servers names a server: host:port, as ssh's
// known_hosts names hosts.
func pinKey(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return server
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return u.Host
}

// pinnedFingerprint returns the fingerprint pinned for server, or "".
func pinnedFingerprint(getenv func(string) string, server string) (string, error) {
	dir := configDir(getenv)
	if dir == "" {
		return "", nil
	}
	m, err := readKeyFile(filepath.Join(dir, knownServersFile))
	if err != nil {
		return "", err
	}
	return m[pinKey(server)], nil
}

// serverHTTPClient returns the HTTP client for server: nil (the default)
// for http://; for https://, one checking the pinned certificate, else the
// CAs of WALT_CA_FILE, else the system's.
func serverHTTPClient(getenv func(string) string, server string) (*http.Client, error) {
	if !strings.HasPrefix(server, "https://") {
		return nil, nil
	}
	pin, err := pinnedFingerprint(getenv, server)
	if err != nil {
		return nil, err
	}
	cfg, err := client.TLSConfig(pin, getenv("WALT_CA_FILE"))
	if err != nil {
		return nil, err
	}
	return client.HTTPClient(cfg), nil
}

// checkServerCert is walt login's look at an https server never pinned:
// a certificate the CAs verify needs no pin; a self-signed one is shown,
// compared with --fingerprint if given, and returned to be pinned (the
// first use is trusted, as ssh's StrictHostKeyChecking=accept-new).
func (e *env) checkServerCert(ctx context.Context) (pin string, err error) {
	caCfg, err := client.TLSConfig("", e.Getenv("WALT_CA_FILE"))
	if err != nil {
		return "", err
	}
	cert, trusted, err := client.ServerCertificate(ctx, e.server, caCfg)
	if err != nil {
		return "", err
	}
	fp := auth.Fingerprint(cert.Raw)
	if trusted && e.o.fingerprint == "" {
		return "", nil
	}
	if e.o.fingerprint != "" {
		want, err := auth.ParseFingerprint(e.o.fingerprint)
		if err != nil {
			return "", fmt.Errorf("--fingerprint: %w", err)
		}
		if want != fp {
			return "", fmt.Errorf("%w: the server's certificate is %s, not the --fingerprint %s: nothing stored", client.ErrCertChanged, fp, want)
		}
	}
	fmt.Fprintf(e.Stderr, "The certificate of %s is not signed by a known CA; its fingerprint is\n    %s\n(walt-server logs it at start: compare). walt will accept this certificate only.\n", pinKey(e.server), fp)
	return fp, nil
}

// configDir is the directory of the user's configuration file: <XDG
// config dir>/walt; "" without one.
func configDir(getenv func(string) string) string {
	p := userConfigPath(getenv)
	if p == "" {
		return ""
	}
	return filepath.Dir(p)
}

// serverKey is how the key files name a server: its URL without a
// trailing slash.
func serverKey(server string) string { return strings.TrimRight(server, "/") }

// readKeyFile reads a key file of the configuration directory; a missing
// file is empty.
func readKeyFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, auth.MaxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m, err := auth.ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// writeKeyFile replaces a key file atomically, mode 0600, in a directory
// made 0700 if missing.
func writeKeyFile(path, header string, m map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(auth.FormatKeyFile(header, m)); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// storedToken returns the token walt login stored for server, or "".
func storedToken(getenv func(string) string, server string) (string, error) {
	dir := configDir(getenv)
	if dir == "" {
		return "", nil
	}
	m, err := readKeyFile(filepath.Join(dir, tokensFile))
	if err != nil {
		return "", err
	}
	return m[serverKey(server)], nil
}

// clientToken is the token a command sends: WALT_TOKEN, else the one
// stored for server; "" if neither.
func clientToken(getenv func(string) string, server string) (string, error) {
	tok, from := getenv("WALT_TOKEN"), "WALT_TOKEN"
	if tok == "" {
		var err error
		if tok, err = storedToken(getenv, server); err != nil || tok == "" {
			return "", err
		}
		from = filepath.Join(configDir(getenv), tokensFile)
	}
	t, err := auth.ParseToken(tok)
	if err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	return t.Reveal(), nil
}

func login(ctx context.Context, e *env, _ []string) int {
	dir := configDir(e.Getenv)
	if dir == "" {
		e.errorf("no configuration directory to store the token in (set HOME or XDG_CONFIG_HOME)")
		return ExitUsage
	}
	if e.prompt {
		fmt.Fprintf(e.Stderr, "Token for %s (walt-server user add prints it): ", e.server)
	}
	line, err := readSecretLine(e.Stdin, e.prompt)
	if e.prompt {
		fmt.Fprintln(e.Stderr)
	}
	if err != nil {
		e.errorf("read the token: %v", err)
		return ExitFailure
	}
	tok, err := auth.ParseToken(line)
	if err != nil {
		e.errorf("%v", err)
		fmt.Fprintf(e.Stderr, "Try: echo \"$TOKEN\" | walt login (the token walt-server user add printed)\n")
		return ExitUsage
	}
	c := e.c
	var pin string
	if strings.HasPrefix(e.server, "https://") {
		if old, err := pinnedFingerprint(e.Getenv, e.server); err != nil {
			e.errorf("%v", err)
			return ExitFailure
		} else if old == "" {
			if pin, err = e.checkServerCert(ctx); err != nil {
				return e.fail(err)
			}
			if pin != "" {
				cfg, _ := client.TLSConfig(pin, "")
				if c, err = client.New(e.server, client.HTTPClient(cfg)); err != nil {
					return e.fail(err)
				}
			}
		}
	}
	who, err := c.WithToken(tok.Reveal()).WhoAmI(ctx)
	if err != nil {
		return e.fail(err)
	}
	if pin != "" {
		kpath := filepath.Join(dir, knownServersFile)
		known, err := readKeyFile(kpath)
		if err != nil {
			e.errorf("%v", err)
			return ExitFailure
		}
		known[pinKey(e.server)] = pin
		if err := writeKeyFile(kpath, "walt login: pinned certificate fingerprints by server (as ssh's known_hosts)", known); err != nil {
			e.errorf("pin the certificate: %v", err)
			return ExitFailure
		}
	}
	path := filepath.Join(dir, tokensFile)
	m, err := readKeyFile(path)
	if err != nil {
		e.errorf("%v", err)
		return ExitFailure
	}
	m[serverKey(e.server)] = tok.Reveal()
	if err := writeKeyFile(path, "walt login: API tokens by server (keep this file private)", m); err != nil {
		e.errorf("store the token: %v", err)
		return ExitFailure
	}
	role := ""
	if who.Admin {
		role = " (admin)"
	}
	printf(e.Stdout, "Logged in to %s as %s%s; token stored in %s.\n", e.server, who.User, role, path)
	return ExitOK
}

// readSecretLine reads one line from in, without echo when it is a
// terminal.
func readSecretLine(in io.Reader, terminal bool) (string, error) {
	if f, ok := in.(*os.File); ok && terminal {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			if unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &quiet) == nil {
				defer unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
			}
		}
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if errors.Is(err, io.EOF) && line != "" {
		err = nil
	}
	return strings.TrimSpace(line), err
}

// me returns the user walt acts as: WALT_USER (or user in the
// configuration file) if set, which the server checks against the token,
// else the token's user, as the server says.
func (e *env) me(ctx context.Context) (string, error) {
	if e.user != "" {
		return e.user, nil
	}
	who, err := e.c.WhoAmI(ctx)
	if err != nil {
		return "", err
	}
	e.user = who.User
	return e.user, nil
}
