package auth

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Key files are the CLI's per-server records in the user's configuration
// directory: the tokens walt login stored (tokens) and the certificate
// fingerprints it pinned (known_servers, as ssh's known_hosts). One record
// a line, "KEY VALUE" (the server, then its token or fingerprint); blank
// lines and lines starting with '#' are skipped.

// Bounds of a key file.
const (
	MaxKeyFile  = 1 << 20 // bytes
	maxKeyLines = 10000
	maxKey      = 512 // a server URL or host:port
	maxValue    = 256 // a token or a fingerprint
)

// ErrBadKeyFile: a key file is malformed.
var ErrBadKeyFile = errors.New("malformed file")

// ParseKeyFile reads a key file. Errors name the line, never its value
// (a token). A key given twice is refused: which one would count?
func ParseKeyFile(data []byte) (map[string]string, error) {
	if len(data) > MaxKeyFile {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadKeyFile, len(data), MaxKeyFile)
	}
	out := map[string]string{}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > maxKeyLines {
		return nil, fmt.Errorf("%w: %d lines, at most %d", ErrBadKeyFile, len(lines), maxKeyLines)
	}
	for i, raw := range lines {
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"SERVER VALUE\", got %d fields", ErrBadKeyFile, i+1, len(fields))
		}
		k, v := fields[0], fields[1]
		if len(k) > maxKey || len(v) > maxValue {
			return nil, fmt.Errorf("%w: line %d: too long (server at most %d bytes, value at most %d)", ErrBadKeyFile, i+1, maxKey, maxValue)
		}
		if !printableASCII(k) || !printableASCII(v) {
			return nil, fmt.Errorf("%w: line %d: not printable ASCII", ErrBadKeyFile, i+1)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: line %d: %.64s given twice", ErrBadKeyFile, i+1, k)
		}
		out[k] = v
	}
	return out, nil
}

// FormatKeyFile writes records in the format ParseKeyFile reads, sorted
// by key, after a header comment. Keys and values must be single printable
// words (CheckKeyEntry).
func FormatKeyFile(header string, m map[string]string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(header, "\n") {
		b.WriteString("# " + l + "\n")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + " " + m[k] + "\n")
	}
	return b.Bytes()
}

// CheckKeyEntry refuses a key or value FormatKeyFile could not write back
// as it is.
func CheckKeyEntry(k, v string) error {
	if k == "" || v == "" || len(k) > maxKey || len(v) > maxValue || !printableASCII(k) || !printableASCII(v) || k[0] == '#' {
		return fmt.Errorf("%w: server %.64q: not a single printable word of at most %d bytes", ErrBadKeyFile, k, maxKey)
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
