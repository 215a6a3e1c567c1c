package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixedNames stands for the server in completion tests of the parser
// alone; TestCompletionShells uses a real server.
func fixedNames(kind argKind, server string) []string {
	switch kind {
	case argNodes:
		return []string{"rpi1", "rpi2", "vn1"}
	case argSwitches:
		return []string{"sw1"}
	}
	return []string{"rpi1", "rpi2", "vn1", "sw1", "pdu"}
}

func TestComplete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"", nil},
		{"walt", []string{"campaign", "completion", "device", "help", "log", "node", "server"}},
		{"walt -", []string{"--help", "--server"}},
		{"walt --server http://x:1 no", []string{"node"}},
		{"walt --server=http://x:1 node sh", []string{"show"}},
		{"walt node --", nil},
		{"walt node reboot -- --", nil}, // after "--", a positional argument
		{"walt node frob ", nil},
		{"walt completion wor", nil}, // hidden
		{"walt device add x --type s", []string{"switch"}},
		{"walt device add x --ip ", nil},
		{"walt device add x --ip 10.0.0.1 --m", []string{"--mac"}},
		{"walt device link ", []string{"rpi1", "rpi2", "vn1"}},
		{"walt device link rpi1 ", []string{"sw1"}},
		{"walt device link rpi1 sw1 ", nil},
		{"walt device config all-s", []string{"all-switches"}},
		{"walt device config p", []string{"pdu"}},
		{"walt node config rpi1 kexec.allow=", nil},
		{"walt node create ", nil},
		{"walt node remove v", []string{"vn1"}},
		{"walt node reboot rpi1,rpi2,", []string{"rpi1,rpi2,all-nodes", "rpi1,rpi2,free-nodes", "rpi1,rpi2,my-nodes",
			"rpi1,rpi2,rpi1", "rpi1,rpi2,rpi2", "rpi1,rpi2,vn1"}},
		{"walt node reboot rpi1 r", nil}, // one set only
		{"walt node wait --timeout ", nil},
		{"walt node wait --timeout 10 v", []string{"vn1"}},
		{"walt help show boot", []string{"boot-modes"}},
	} {
		if diff := cmp.Diff(tc.want, complete(tc.line, fixedNames)); diff != "" {
			t.Errorf("complete(%q) (-want +got):\n%s", tc.line, diff)
		}
	}
}

func TestCompletableName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"rpi1", true}, {"n.1_a-b", true}, {"", false}, {"-rf", false}, {".x", false}, {"a b", false},
		{"$(id)", false}, {"a`id`", false}, {"a\nb", false}, {"é", false}, {strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
	} {
		if got := completableName(tc.name); got != tc.want {
			t.Errorf("completableName(%q) = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// FuzzComplete: any command line gives sorted candidates, each one line
// without blanks, from bounded work.
func FuzzComplete(f *testing.F) {
	for _, s := range []string{"walt ", "walt node reboot rpi1,", "walt --server", "walt -- --", "walt device add x --type ",
		"walt node reboot --timeout", "walt help show ", "walt\tnode\treb", "walt node reboot ,,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := complete(line, fixedNames)
		if !slices.IsSorted(got) {
			t.Errorf("complete(%q) = %q, not sorted", line, got)
		}
		for _, c := range got {
			if c == "" || strings.ContainsAny(c, " \t\n\r") {
				t.Errorf("complete(%q) gives %q: empty or with blanks", line, c)
			}
		}
	})
}
