package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The server's TLS certificate: generated at first start in the data
// directory (self-signed, ECDSA P-256, ten years), or given by the admin.
// Clients pin a self-signed certificate by its fingerprint.

// File names of the generated certificate and key in the data directory.
const (
	CertFile = "tls-cert.pem"
	KeyFile  = "tls-key.pem"
)

// certValidity is how long a generated certificate is valid: pinned
// certificates are not renewed (a new one would be refused by every CLI
// that pinned the old).
const certValidity = 10 * 365 * 24 * time.Hour

// Fingerprint is the SHA-256 of a certificate's DER, "SHA256:" and 64 hex
// digits: what walt login shows and pins, and walt-server logs at start.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// ErrBadFingerprint: a text is not a fingerprint.
var ErrBadFingerprint = errors.New("malformed certificate fingerprint")

// ParseFingerprint reads a fingerprint as Fingerprint writes it (hex in
// either case, colons between bytes allowed) and returns it normalized.
func ParseFingerprint(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.TrimSpace(s), "SHA256:")
	if !ok {
		return "", fmt.Errorf("%w: want SHA256: and 64 hex digits", ErrBadFingerprint)
	}
	h = strings.ToLower(strings.ReplaceAll(h, ":", ""))
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%w: want SHA256: and 64 hex digits", ErrBadFingerprint)
	}
	return "SHA256:" + h, nil
}

// LoadOrCreateCert returns the certificate and key in dir, generating
// them first if neither exists (the key written mode 0600), with hosts as
// subject alternative names beside localhost and the loopback addresses.
func LoadOrCreateCert(dir string, hosts []string, now time.Time) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) {
		if err := createCert(certPath, keyPath, hosts, now); err != nil {
			return tls.Certificate{}, err
		}
	}
	return LoadCert(certPath, keyPath)
}

// LoadCert reads a certificate and its key (PEM), refusing a key file
// that others may read.
func LoadCert(certPath, keyPath string) (tls.Certificate, error) {
	fi, err := os.Stat(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, fmt.Errorf("TLS key %s can be read by other users (mode %04o): chmod 600 %s", keyPath, fi.Mode().Perm(), keyPath)
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		// The error of LoadX509KeyPair names files and PEM blocks, never
		// the key's bytes.
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s and key %s: %w", certPath, keyPath, err)
	}
	return c, nil
}

func createCert(certPath, keyPath string, hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate the TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("generate the TLS certificate: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "walt-server " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range append(hosts, host) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("generate the TLS certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the TLS key: %w", err)
	}
	// The key first, exclusively: two servers starting at once do not mix
	// two keys and certificates.
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("write the TLS key: %w", err)
	}
	if err := writeNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyPath)
		return fmt.Errorf("write the TLS certificate: %w", err)
	}
	return nil
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
