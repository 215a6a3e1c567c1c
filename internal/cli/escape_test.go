package cli

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"rpi-3", "rpi-3"},
		{"KO \x1b[2Jgone", `KO \x1b[2Jgone`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"bell\a del\x7f c1\u009b", `bell\x07 del\x7f c1\x9b`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"rlo \u202eevil", `rlo \u202eevil`},
		{`C:\path "quoted" é 日本`, `C:\path "quoted" é 日本`},
	} {
		if got := escape(tc.in); got != tc.want {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := escapeLines("two\nlines\x1b\r"), "two\nlines\\x1b\\r"; got != want {
		t.Errorf("escapeLines = %q, want %q", got, want)
	}
	var b strings.Builder
	printf(&b, "%s|%v|%s|%d\n", "x\x1by\n", errors.New("e\x1b\nf"), []string{"a\x1b"}, 7)
	if got, want := b.String(), "x\\x1by\\n|e\\x1b\nf|[a\\x1b]|7\n"; got != want {
		t.Errorf("printf = %q, want %q", got, want)
	}
}

// FuzzEscape: whatever the input, the output is valid UTF-8 made of
// printable runes only, and printable input is kept as it is.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "rpi", "KO \x1b[2J", "\xff", "\u202e", "é\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("escape(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("escape(%q) = %q: holds %U", s, out, r)
			}
		}
		if printable := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0; printable && utf8.ValidString(s) && out != s {
			t.Errorf("escape(%q) = %q: printable text changed", s, out)
		}
	})
}
