package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/accounts"
	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

// remoteListener makes its connections say they come from a host on the
// LAN, 192.0.2.X for a peer at 127.0.0.X, while they stay on loopback.
type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

type remoteConn struct{ net.Conn }

func (c remoteConn) RemoteAddr() net.Addr {
	real := c.Conn.RemoteAddr().(*net.TCPAddr)
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, real.IP.To4()[3]), Port: real.Port}
}

// tlsServer serves a server with a generated certificate on loopback;
// remote makes every peer look like another host's.
func tlsServer(t *testing.T, remote bool) (url string, cert tls.Certificate, token string, log *testutil.Buffer) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cert, err = auth.LoadOrCreateCert(dir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, auth.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v, %v; want mode 0600", fi, err)
	}
	tok, err := accounts.Add(t.Context(), st, "alice", false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	log = &testutil.Buffer{}
	srv, err := New(t.Context(), Config{Store: st, Reboot: reboot.DefaultConfig(), Logger: slog.New(slog.NewTextHandler(log, nil)),
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if remote {
		l = remoteListener{ln}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String(), cert, tok.Reveal(), log
}

// Over real TLS on loopback: a client pinning the certificate is served;
// one pinning another is refused before it sends its token; plain HTTP
// still serves the server's own host.
func TestTLSPinned(t *testing.T) {
	t.Parallel()
	addr, cert, token, log := tlsServer(t, false)
	fp := auth.Fingerprint(cert.Certificate[0])
	cfg, err := client.TLSConfig(fp, "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New("https://"+addr, client.HTTPClient(cfg))
	if who, err := c.WithToken(token).WhoAmI(t.Context()); err != nil || who.User != "alice" {
		t.Fatalf("WhoAmI over TLS, pinned = %+v, %v", who, err)
	}
	other, err := client.TLSConfig("SHA256:"+strings.Repeat("ab", 32), "")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := client.New("https://"+addr, client.HTTPClient(other))
	if _, err := c2.WithToken(token).WhoAmI(t.Context()); !errors.Is(err, client.ErrCertChanged) || !strings.Contains(err.Error(), fp) {
		t.Errorf("WhoAmI with another pin = %v, want ErrCertChanged naming %s", err, fp)
	}
	// Unpinned, the self-signed certificate does not verify.
	c3, _ := client.New("https://"+addr, nil)
	if _, err := c3.Health(t.Context()); err == nil {
		t.Error("Health over TLS without a pin nor CA: no error")
	}
	if cert, trusted, err := client.ServerCertificate(t.Context(), "https://"+addr, nil); err != nil || trusted || auth.Fingerprint(cert.Raw) != fp {
		t.Errorf("ServerCertificate = trusted %t, %v", trusted, err)
	}
	plain, _ := client.New("http://"+addr, nil)
	if who, err := plain.WithToken(token).WhoAmI(t.Context()); err != nil || who.User != "alice" {
		t.Errorf("WhoAmI over plain HTTP from loopback = %+v, %v", who, err)
	}
	if !strings.Contains(log.String(), "fingerprint="+fp) {
		t.Errorf("the log does not give the certificate's fingerprint:\n%s", log)
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("the log shows the token:\n%s", log)
	}
}

// From another host, plain HTTP serves the open routes (node agents
// report so) and refuses a call needing a token; TLS serves it.
func TestPlainHTTPFromAnotherHost(t *testing.T) {
	t.Parallel()
	addr, cert, token, _ := tlsServer(t, true)
	plain, _ := client.New("http://"+addr, nil)
	if _, err := plain.Health(t.Context()); err != nil {
		t.Errorf("Health over plain HTTP from another host = %v, want served", err)
	}
	if _, err := plain.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:77:01", IP: "192.0.2.1", Name: "lan1", Model: "rpi-b"}); err != nil {
		t.Errorf("node report over plain HTTP from another host = %v, want served", err)
	}
	if _, err := plain.WithToken(token).Devices(t.Context()); !errors.Is(err, api.ErrForbidden) || !strings.Contains(err.Error(), "https") {
		t.Errorf("Devices over plain HTTP from another host = %v, want forbidden saying https", err)
	}
	cfg, _ := client.TLSConfig(auth.Fingerprint(cert.Certificate[0]), "")
	c, _ := client.New("https://"+addr, client.HTTPClient(cfg))
	if list, err := c.WithToken(token).Devices(t.Context()); err != nil || list.NumDevices != 1 {
		t.Errorf("Devices over TLS from another host = %+v, %v", list, err)
	}
}
