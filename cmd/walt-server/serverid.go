package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// serverIDFile, in the data directory, holds the id of the server that
// runs from it: its reboot records carry it, so that on a database shared
// by several servers a start marks interrupted only the records its own
// previous instance left running (docs/storage.md).
const serverIDFile = "server-id"

// serverIDLen is the length of an id: 16 random bytes in hex.
const serverIDLen = 32

// loadServerID returns the server id kept in dir, creating it at first
// start (mode 0600). Two servers starting at once on one new directory
// get the same id: the file is created whole, under its final name, by
// one of them only.
func loadServerID(dir string) (string, error) {
	path := filepath.Join(dir, serverIDFile)
	id, err := readServerID(path)
	if !errors.Is(err, os.ErrNotExist) {
		return id, err
	}
	var b [serverIDLen / 2]byte
	rand.Read(b[:])
	tmp, err := os.CreateTemp(dir, ".server-id-")
	if err != nil {
		return "", fmt.Errorf("server id: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(b[:]) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600) // CreateTemp's mode already, whatever the umask
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("server id %s: %w", tmp.Name(), err)
	}
	// A link never replaces a file: a server that lost the race reads the
	// winner's id.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("server id: %w", err)
	}
	return readServerID(path)
}

// readServerID reads the id file at path.
func readServerID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("server id: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, serverIDLen+2))
	if err != nil {
		return "", fmt.Errorf("server id %s: %w", path, err)
	}
	id, err := parseServerID(b)
	if err != nil {
		return "", fmt.Errorf("server id %s: %w (walt-server makes a new one if the file is removed)", path, err)
	}
	return id, nil
}

// parseServerID checks the content of an id file: serverIDLen lower-case
// hex digits, then an optional newline.
func parseServerID(b []byte) (string, error) {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if len(b) > serverIDLen {
		return "", fmt.Errorf("longer than %d bytes, want %d hex digits", serverIDLen, serverIDLen)
	}
	if len(b) < serverIDLen {
		return "", fmt.Errorf("%d bytes, want %d hex digits", len(b), serverIDLen)
	}
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("byte %d is %q, want a hex digit (0-9, a-f)", i, c)
		}
	}
	return string(b), nil
}
