package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/config"
)

// printConfig runs walt-server --print-config and returns what it printed.
func printConfig(t *testing.T) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--print-config"}, &out, io.Discard); err != nil {
		t.Fatalf("walt-server --print-config: %v", err)
	}
	return out.String()
}

// help returns what walt-server --help prints, and the flags it lists.
func help(t *testing.T) (string, []string) {
	t.Helper()
	var help bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, io.Discard, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("walt-server --help = %v, want flag.ErrHelp", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(help.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("walt-server --help lists %d flags: %q", len(names), help.String())
	}
	return help.String(), names
}

// The configuration file walt-server writes (the one the Debian package
// ships) names every flag --help lists but --config, --version and
// --print-config, once, commented out; as written it sets nothing, and
// with every line uncommented it parses and leaves each flag at its
// default.
func TestPrintConfig(t *testing.T) {
	t.Setenv("WALT_CONFIG", "")
	text := printConfig(t)
	if got := printConfig(t); got != text {
		t.Fatalf("two --print-config runs differ:\n%s\n---\n%s", text, got)
	}
	commented := regexp.MustCompile(`(?m)^#([a-z][a-z0-9-]*) = (.*)$`)
	keys := map[string]string{}
	for _, m := range commented.FindAllStringSubmatch(text, -1) {
		if _, dup := keys[m[1]]; dup {
			t.Errorf("key %s written twice", m[1])
		}
		keys[m[1]] = m[2]
	}
	helpText, flags := help(t)
	var want []string
	for _, name := range flags {
		if name != "config" && name != "version" && name != "print-config" && name != "cpuprofile" {
			want = append(want, name)
		}
	}
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys of the file %q, want the flags of --help %q", got, want)
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			t.Errorf("line %q is not a comment", line)
		}
		if len(line) > 80 {
			t.Errorf("line %q is over 80 columns", line)
		}
	}
	if !strings.Contains(text, "\n# directory holding the database") {
		t.Errorf("no explanation above data:\n%s", text)
	}

	known := func(k string) bool { _, ok := keys[k]; return ok }
	if set, err := config.Parse("server.conf", []byte(text), known); err != nil || len(set) != 0 {
		t.Errorf("the file as written: %v, %v; want nothing set", set, err)
	}
	uncommented := commented.ReplaceAllString(text, "$1 = $2")
	set, err := config.Parse("server.conf", []byte(uncommented), known)
	if err != nil {
		t.Fatalf("the file uncommented: %v\n%s", err, uncommented)
	}
	// Each value, as the file gives it to the flag, is the flag's default
	// (data's as root has it).
	for k, s := range set {
		def, ok := helpDefault(helpText, k)
		if k == "data" {
			def, ok = "/var/lib/walt", true
		}
		if !ok {
			def = "" // --help leaves out zero defaults
			if s.Value == "false" || s.Value == "0" {
				def = s.Value
			}
		}
		if s.Value != def {
			t.Errorf("%s = %q in the file, default %q in --help", k, s.Value, def)
		}
	}
}

// helpDefault returns the default --help gives a flag, if it gives one.
func helpDefault(help, name string) (string, bool) {
	re := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(name) + `\b[^\n]*\n((?:    [^\n]*\n)*)`)
	m := re.FindStringSubmatch(help)
	if m == nil {
		return "", false
	}
	d := regexp.MustCompile(`\(default "?([^")]*)"?\)`).FindStringSubmatch(m[1])
	if d == nil {
		return "", false
	}
	return d[1], true
}
