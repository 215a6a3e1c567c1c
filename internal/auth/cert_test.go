package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c1, err := LoadOrCreateCert(dir, []string{"10.0.0.1", "walt.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	c2, err := LoadOrCreateCert(dir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(c1.Certificate[0]) != Fingerprint(c2.Certificate[0]) {
		t.Error("a second start made another certificate")
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCert(dir, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("key readable by others: %v, want refused", err)
	}
	// A certificate without its key is an error, not a new pair.
	half := t.TempDir()
	os.WriteFile(filepath.Join(half, CertFile), []byte("x"), 0o644)
	if _, err := LoadOrCreateCert(half, nil, time.Now()); err == nil {
		t.Error("certificate without key: no error")
	}
}

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	fp := Fingerprint([]byte("der"))
	for _, s := range []string{fp, strings.ToUpper(fp[:7]) + strings.ToUpper(fp[7:]), " " + fp + "\n"} {
		if got, err := ParseFingerprint(s); err != nil || got != fp {
			t.Errorf("ParseFingerprint(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "SHA256:", fp[:len(fp)-1], "MD5:" + fp[7:], fp + "00", "SHA256:" + strings.Repeat("g", 64)} {
		if _, err := ParseFingerprint(s); !errors.Is(err, ErrBadFingerprint) {
			t.Errorf("ParseFingerprint(%q) = %v, want ErrBadFingerprint", s, err)
		}
	}
}
