package cli_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// serveTLS serves e's API over TLS with cert on addr ("": any port).
func serveTLS(t *testing.T, e *env, cert tls.Certificate, addr string) (*httptest.Server, string) {
	t.Helper()
	if addr == "" {
		// An address of its own: a test that closes this server and
		// listens again on the same port must not find it taken by
		// the ephemeral source port of another test's connection to
		// 127.0.0.1 (seen in CI: "bind: address already in use").
		addr = "127.0.94.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(e.Server.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes, on purpose
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return hs, ln.Addr().String()
}

// walt login pins a self-signed certificate (known_servers, 0600);
// commands then accept that certificate only, and a changed one is
// refused with a message saying what to do.
func TestLoginPinsTheCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "rpi1")
	certA, err := auth.LoadOrCreateCert(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certB, err := auth.LoadOrCreateCert(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fpA, fpB := auth.Fingerprint(certA.Certificate[0]), auth.Fingerprint(certB.Certificate[0])
	hsA, addr := serveTLS(t, e, certA, "")
	home := t.TempDir()
	env := map[string]string{"HOME": home, "WALT_SERVER": "https://" + addr}
	tok := e.token(t, "dave")
	login := func(stdin string, args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := cli.Run(t.Context(), cli.Options{Args: append([]string{"login"}, args...), Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
			Getenv: func(k string) string { return env[k] }, IsTerminal: func(any) bool { return false }})
		return out.String(), errOut.String(), code
	}
	known := filepath.Join(home, ".config", "walt", "known_servers")
	// A --fingerprint that is not the server's: refused, nothing stored.
	if _, errOut, code := login(tok+"\n", "--fingerprint", fpB); code != cli.ExitFailure || !strings.Contains(errOut, fpA) {
		t.Errorf("login --fingerprint of another certificate: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(known); err == nil {
		t.Fatal("a refused login pinned a certificate")
	}
	out, errOut, code := login(tok+"\n", "--fingerprint", fpA)
	if code != cli.ExitOK || !strings.Contains(errOut, fpA) || !strings.Contains(out, "as dave") {
		t.Fatalf("login over TLS: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	fi, err := os.Stat(known)
	if b, _ := os.ReadFile(known); err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(string(b), addr+" "+fpA) {
		t.Fatalf("known_servers %v %v:\n%s", fi, err, b)
	}
	if out, errOut, code := runWith(t, env, "node", "show", "--all"); code != cli.ExitOK || !strings.Contains(out, "rpi1") {
		t.Fatalf("node show over the pinned TLS: exit %d, %s%s", code, out, errOut)
	}
	// The same address now serves another certificate.
	hsA.Close()
	serveTLS(t, e, certB, addr)
	_, errOut, code = runWith(t, env, "node", "show", "--all")
	if code != cli.ExitFailure || !strings.Contains(errOut, "server certificate changed") || !strings.Contains(errOut, fpB) ||
		!strings.Contains(errOut, known) {
		t.Errorf("node show with a changed certificate: exit %d, stderr %q; want refused naming the new fingerprint and %s", code, errOut, known)
	}
	if _, errOut, code := login(tok + "\n"); code == cli.ExitOK || !strings.Contains(errOut, "server certificate changed") {
		t.Errorf("login again with a changed certificate: exit %d, %s", code, errOut)
	}
}
