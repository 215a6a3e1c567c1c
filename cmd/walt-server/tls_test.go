package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/client"
	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/testutil"
)

// With --tls on, walt-server generates a key (0600) and a certificate in
// its data directory at first start, logs the fingerprint, serves TLS
// with that certificate, and keeps it at the next start.
func TestTLSCertificateGenerated(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	token := userToken(t, "alice", "--data", data)
	start := func() (string, *testutil.Buffer, func()) {
		addr := "127.64.0.8:" + freePort(t, "127.64.0.8")
		ctx, cancel := context.WithCancel(t.Context())
		log := &testutil.Buffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"--data", data, "--listen", addr, "--tls", "on", "--vnode-backend", "none"}, io.Discard, log)
		}()
		return addr, log, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("walt-server: %v\n%s", err, log)
			}
		}
	}
	addr, log, stop := start()
	testutil.Eventually(t, 10*time.Second, "the TLS certificate's fingerprint in the log", func() bool {
		return strings.Contains(log.String(), "fingerprint=SHA256:")
	})
	fi, err := os.Stat(filepath.Join(data, auth.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v, %v; want mode 0600", fi, err)
	}
	cert, err := auth.LoadCert(filepath.Join(data, auth.CertFile), filepath.Join(data, auth.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	fp := auth.Fingerprint(cert.Certificate[0])
	if !strings.Contains(log.String(), fp) {
		t.Errorf("log lacks the fingerprint %s:\n%s", fp, log)
	}
	cfg, _ := client.TLSConfig(fp, "")
	c, _ := client.New("https://"+addr, client.HTTPClient(cfg))
	c = c.WithToken(token)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.WaitHealthy(ctx, 5*time.Millisecond); err != nil {
		t.Fatalf("health over TLS: %v\n%s", err, log)
	}
	if who, err := c.WhoAmI(ctx); err != nil || who.User != "alice" {
		t.Errorf("WhoAmI over TLS = %+v, %v", who, err)
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("the log shows the token:\n%s", log)
	}
	stop()
	addr, log, stop = start()
	// Served with the pinned certificate after a restart.
	c, _ = client.New("https://"+addr, client.HTTPClient(cfg))
	if _, err := c.WaitHealthy(ctx, 5*time.Millisecond); err != nil {
		t.Fatalf("health over TLS after a restart, same pin: %v\n%s", err, log)
	}
	stop()
	if !strings.Contains(log.String(), fp) {
		t.Errorf("a restart changed the certificate:\n%s", log)
	}
}

func TestTLSFlagErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls", "maybe"}, "want auto, on or off"},
		{[]string{"--tls-cert", "/nonexistent"}, "go together"},
		{[]string{"--tls", "off", "--tls-cert", "/a", "--tls-key", "/b"}, "choose one"},
		{[]string{"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, "TLS key"},
	} {
		if got := runErr(t, c.args...); !strings.Contains(got, c.want) {
			t.Errorf("walt-server %v = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestIsLoopbackListen(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{":12345": false, "0.0.0.0:1": false, "[::]:1": false, "127.0.0.1:1": true,
		"127.9.8.7:1": true, "[::1]:1": true, "localhost:1": true, "10.0.0.1:1": false, "walt.example:1": false, "junk": false} {
		if got := isLoopbackListen(addr); got != want {
			t.Errorf("isLoopbackListen(%q) = %t, want %t", addr, got, want)
		}
	}
}
