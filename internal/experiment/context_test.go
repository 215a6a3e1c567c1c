package experiment

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
)

// hostile is a boot context whose every text tries to break out of its
// quotes or its line.
func hostile(t *testing.T) api.BootContext {
	marker := filepath.Join(t.TempDir(), "pwned")
	at := time.Date(2026, 12, 2, 1, 2, 3, 4, time.UTC)
	return api.BootContext{
		BootID: "b'; touch " + marker + "; '", Cause: "it's $(touch " + marker + ")", Requester: "`touch " + marker + "`",
		Method: "a\nWALT_BOOT_CAUSE=evil", NodeMethod: "back\\slash", RebootID: "nul\x00byte", RebootOutcome: "fail'; id'", RequestedAt: &at,
		WatchdogTry: 2, WatchdogTries: 3, Campaign: "c1", CampaignName: "émoji ✓ \x1b[31m", Iteration: 4, Iterations: 10,
	}
}

// TestContextFilesSourced writes a hostile boot context and sources the
// shell form with sh: every value comes back as written (control
// characters as '?'), nothing runs, and the JSON form reads back whole.
func TestContextFilesSourced(t *testing.T) {
	bc := hostile(t)
	dir := filepath.Join(t.TempDir(), "run", "walt")
	if _, err := ReadContext(dir); !errors.Is(err, ErrNoContext) {
		t.Fatalf("ReadContext before any write = %v, want ErrNoContext", err)
	}
	if err := WriteContext(dir, bc); err != nil {
		t.Fatal(err)
	}
	if err := WriteContext(dir, bc); err != nil { // again: replaces
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{dir: 0o755 | os.ModeDir, filepath.Join(dir, ContextJSON): 0o644, filepath.Join(dir, ContextEnv): 0o644} {
		if fi, err := os.Stat(name); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%s holds %d files, want 2 (no temporary file left)", dir, len(ents))
	}
	got, err := ReadContext(dir)
	if err != nil || !reflect.DeepEqual(got.RequestedAt.UTC(), bc.RequestedAt.UTC()) {
		t.Fatalf("ReadContext = %+v, %v", got, err)
	}
	got.RequestedAt = bc.RequestedAt
	if !reflect.DeepEqual(got, bc) {
		t.Errorf("ReadContext = %+v, want %+v", got, bc)
	}
	keys := []string{"WALT_BOOT_ID", "WALT_BOOT_CAUSE", "WALT_BOOT_REQUESTER", "WALT_BOOT_METHOD", "WALT_BOOT_NODE_METHOD", "WALT_BOOT_REBOOT_ID",
		"WALT_BOOT_REBOOT_OUTCOME", "WALT_BOOT_REQUESTED_AT", "WALT_BOOT_WATCHDOG_TRY", "WALT_BOOT_WATCHDOG_TRIES", "WALT_CAMPAIGN", "WALT_CAMPAIGN_NAME", "WALT_CAMPAIGN_ITERATION", "WALT_CAMPAIGN_ITERATIONS"}
	script := "set -eu; . " + filepath.Join(dir, ContextEnv)
	for _, k := range keys {
		script += `; printf '%s\n' "$` + k + `"`
	}
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	want := []string{bc.BootID, bc.Cause, bc.Requester, "a?WALT_BOOT_CAUSE=evil", `back\slash`, "nul?byte", bc.RebootOutcome, "2026-12-02T01:02:03.000000004Z",
		"2", "3", "c1", "émoji ✓ ?[31m", "4", "10"}
	if lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !reflect.DeepEqual(lines, want) {
		t.Errorf("sourced values:\n%q\nwant\n%q", lines, want)
	}
	if _, err := os.Stat(strings.TrimSuffix(strings.TrimPrefix(bc.Requester, "`touch "), "`")); err == nil {
		t.Error("sourcing the boot context ran a command")
	}
	if err := RemoveContext(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadContext(dir); !errors.Is(err, ErrNoContext) {
		t.Errorf("ReadContext after RemoveContext = %v", err)
	}
	if err := RemoveContext(dir); err != nil {
		t.Errorf("RemoveContext of no files = %v", err)
	}
}

// unquote reads back one single-quoted shell word; ok is false if q is not
// exactly one.
func unquote(q string) (string, bool) {
	var b strings.Builder
	for len(q) > 0 {
		if q[0] == '\\' && len(q) > 1 && q[1] == '\'' {
			b.WriteByte('\'')
			q = q[2:]
			continue
		}
		if q[0] != '\'' {
			return "", false
		}
		end := strings.IndexByte(q[1:], '\'')
		if end < 0 {
			return "", false
		}
		b.WriteString(q[1 : 1+end])
		q = q[2+end:]
	}
	return b.String(), true
}

// FuzzShellQuote: a quoted value is one sh word of printable text that
// reads back as the value, control characters and invalid UTF-8 as '?'.
func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "it's", "'''", "a\nb", "\x00", "\xff\xfe", "$(id)", "`id`", "\\'", "é\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := ShellQuote(s)
		if !utf8.ValidString(q) || strings.ContainsFunc(q, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }) {
			t.Fatalf("ShellQuote(%q) = %q holds control characters", s, q)
		}
		v, ok := unquote(q)
		if !ok || !strings.HasPrefix(q, "'") || !strings.HasSuffix(q, "'") {
			t.Fatalf("ShellQuote(%q) = %q is not one single-quoted word", s, q)
		}
		var want bytes.Buffer
		for i, r := range s {
			if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") || r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
				r = '?'
			}
			want.WriteRune(r)
		}
		if v != want.String() {
			t.Fatalf("ShellQuote(%q) = %q reads back %q, want %q", s, q, v, want.String())
		}
	})
}
