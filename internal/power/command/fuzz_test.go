package command_test

import (
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/power/command"
)

// FuzzParse: a template Parse accepts has 1 to MaxWords words, an
// absolute program path, and prints back (String) to a template that
// parses to the same words; a value given to a placeholder never adds or
// removes an argument.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`/usr/bin/pdu -o {name} {action}`, `/bin/x "a b" "c\"d" \\`, `/x {mac}{ip}`, `/x "`, `x`, `/x {nope}`, `/x ""`} {
		f.Add(s, "pc1 ; rm -rf /")
	}
	f.Fuzz(func(t *testing.T, s, value string) {
		tpl, err := command.Parse(s)
		if err != nil {
			return
		}
		n := command.Node{Name: value, MAC: value, IP: value}
		argv := tpl.Argv(n, "on")
		if len(argv) == 0 || len(argv) > command.MaxWords || !strings.HasPrefix(argv[0], "/") {
			t.Fatalf("Parse(%q): argv %q", s, argv)
		}
		again, err := command.Parse(tpl.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, tpl.String(), err)
		}
		if a, b := strings.Join(again.Argv(n, "on"), "\x00"), strings.Join(argv, "\x00"); a != b {
			t.Fatalf("Parse(%q) round trip: %q, want %q", s, again.Argv(n, "on"), argv)
		}
		if len(tpl.Argv(command.Node{}, "")) != len(argv) {
			t.Fatal("the values changed the number of arguments")
		}
	})
}
