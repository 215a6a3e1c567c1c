package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
)

// Where walt-node writes the boot context for the experiment.
const (
	DefaultDir  = "/run/walt"
	ContextJSON = "boot-context.json" // api.BootContext as JSON
	ContextEnv  = "boot-context.env"  // KEY='value' lines (ShellForm)
)

// maxContextFile bounds a boot context file read back.
const maxContextFile = 64 << 10

// ErrNoContext: no boot context was written yet.
var ErrNoContext = errors.New("no boot context yet")

// WriteContext writes bc to dir/ContextJSON and dir/ContextEnv, each
// atomically (a temporary file renamed over the old one), mode 0644,
// creating dir with mode 0755 if it does not exist.
func WriteContext(dir string, bc api.BootContext) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write the boot context: %w", err)
		}
		if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
			return fmt.Errorf("write the boot context: %w", err)
		}
	}
	js, err := json.MarshalIndent(bc, "", "  ")
	if err != nil {
		return fmt.Errorf("write the boot context: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, ContextJSON), append(js, '\n')); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ContextEnv), ShellForm(bc))
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// RemoveContext removes the boot context files from dir, if there are
// any: an agent starting a boot removes those of an earlier one.
func RemoveContext(dir string) error {
	var errs []error
	for _, name := range []string{ContextJSON, ContextEnv} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReadContext reads the boot context walt-node wrote in dir; ErrNoContext
// (wrapped, naming the file) if there is none.
func ReadContext(dir string) (api.BootContext, error) {
	path := filepath.Join(dir, ContextJSON)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return api.BootContext{}, fmt.Errorf("%w in %s", ErrNoContext, path)
	}
	if err != nil {
		return api.BootContext{}, fmt.Errorf("read the boot context: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxContextFile+1))
	if err != nil {
		return api.BootContext{}, fmt.Errorf("read the boot context: %w", err)
	}
	if len(b) > maxContextFile {
		return api.BootContext{}, fmt.Errorf("read the boot context: %s is over %d bytes", path, maxContextFile)
	}
	var bc api.BootContext
	if err := json.Unmarshal(b, &bc); err != nil {
		return api.BootContext{}, fmt.Errorf("read the boot context: %s: %w", path, err)
	}
	return bc, nil
}

// ShellForm is the boot context as shell assignments, one a line, every
// key always present (empty, or 0 for numbers, when unknown):
//
//	WALT_BOOT_ID='…'
//	WALT_BOOT_CAUSE='reboot requested'
//	…
//
// Every value is single-quoted (a quote in it ends the quotes, is escaped
// with a backslash and reopens them), and control
// characters and invalid UTF-8 are replaced by '?', so that no value can
// end its quotes or its line: the file may be sourced by sh (set -a to
// export) or read as a systemd EnvironmentFile.
func ShellForm(bc api.BootContext) []byte {
	at := ""
	if bc.RequestedAt != nil {
		at = bc.RequestedAt.UTC().Format(time.RFC3339Nano)
	}
	var b bytes.Buffer
	for _, kv := range [][2]string{
		{"WALT_BOOT_ID", bc.BootID},
		{"WALT_BOOT_CAUSE", bc.Cause},
		{"WALT_BOOT_REQUESTER", bc.Requester},
		{"WALT_BOOT_METHOD", bc.Method},
		{"WALT_BOOT_NODE_METHOD", bc.NodeMethod},
		{"WALT_BOOT_REBOOT_ID", bc.RebootID},
		{"WALT_BOOT_REBOOT_OUTCOME", bc.RebootOutcome},
		{"WALT_BOOT_REQUESTED_AT", at},
		{"WALT_BOOT_WATCHDOG_TRY", strconv.Itoa(bc.WatchdogTry)},
		{"WALT_BOOT_WATCHDOG_TRIES", strconv.Itoa(bc.WatchdogTries)},
		{"WALT_CAMPAIGN", bc.Campaign},
		{"WALT_CAMPAIGN_NAME", bc.CampaignName},
		{"WALT_CAMPAIGN_ITERATION", strconv.Itoa(bc.Iteration)},
		{"WALT_CAMPAIGN_ITERATIONS", strconv.Itoa(bc.Iterations)},
	} {
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(ShellQuote(kv[1]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ShellQuote single-quotes s for sh, after replacing control characters
// and invalid UTF-8 by '?'.
func ShellQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"), r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			b.WriteByte('?')
		case r == '\'':
			b.WriteString(`'\''`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
