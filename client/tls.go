package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/walt-testbed/walt/internal/auth"
)

// ErrCertChanged: the server's certificate is not the one pinned for it.
var ErrCertChanged = errors.New("server certificate changed")

// TLSConfig returns the TLS configuration for a server: with pin (a
// fingerprint, walt login's known_servers), the server's certificate must
// be that one, whatever signed it; else it must verify against the CAs of
// caFile, or without one the system's.
func TLSConfig(pin, caFile string) (*tls.Config, error) {
	if pin != "" {
		want, err := auth.ParseFingerprint(pin)
		if err != nil {
			return nil, err
		}
		return &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Verification is the pin's, in VerifyConnection: a
			// self-signed certificate has no chain to check.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return fmt.Errorf("%w: the server sent no certificate", ErrCertChanged)
				}
				if got := auth.Fingerprint(cs.PeerCertificates[0].Raw); got != want {
					return fmt.Errorf("%w: it is now %s, pinned %s", ErrCertChanged, got, want)
				}
				return nil
			},
		}, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
	}
	return cfg, nil
}

// HTTPClient returns an HTTP client using cfg for TLS.
func HTTPClient(cfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}
}

// ServerCertificate connects to an https server URL and returns its
// certificate, and whether it verifies against cfg's CAs (nil: the
// system's) for the URL's host: an admin-given certificate needs no pin.
func ServerCertificate(ctx context.Context, serverURL string, cfg *tls.Config) (*x509.Certificate, bool, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, false, fmt.Errorf("server URL %q: expected https://HOST:PORT", serverURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, fmt.Errorf("%w at %s: %w", ErrServerUnreachable, host, err)
	}
	defer c.Close()
	certs := c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, false, fmt.Errorf("%s sent no certificate", host)
	}
	opts := x509.VerifyOptions{DNSName: u.Hostname(), Intermediates: x509.NewCertPool()}
	if cfg != nil {
		opts.Roots = cfg.RootCAs
	}
	for _, ic := range certs[1:] {
		opts.Intermediates.AddCert(ic)
	}
	_, verr := certs[0].Verify(opts)
	return certs[0], verr == nil, nil
}
