package config

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

func anyKey(string) bool { return true }

func TestParseValues(t *testing.T) {
	got, err := Parse("f", []byte("# c\na = \"x y\"\nb = 42\n\n'c-d' = true\ne = 1.5\nf = 'C:\\dir'\n"), anyKey)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Setting{"a": {"x y", 2}, "b": {"42", 3}, "c-d": {"true", 5}, "e": {"1.5", 6}, "f": {`C:\dir`, 7}}
	if len(got) != len(want) {
		t.Errorf("Parse = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %+v, want %+v", k, got[k], w)
		}
	}
}

// Fill: flag > environment > file > default, and Sources names each.
func TestFill(t *testing.T) {
	path := t.TempDir() + "/c.toml"
	if err := writeFile(path, "a = \"file\"\nb = \"file\"\nc = \"file\"\nwait = \"2s\"\n"); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	a, b, c, d := fs.String("a", "def", ""), fs.String("b", "def", ""), fs.String("c", "def", ""), fs.String("d", "def", "")
	wait := fs.Duration("wait", time.Second, "")
	if err := fs.Parse([]string{"-a", "flag"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WALT_A": "env", "WALT_B": "env"}
	src, err := Loader{Getenv: func(k string) string { return env[k] }, Skip: func(string) bool { return false }}.Fill(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	if *a != "flag" || *b != "env" || *c != "file" || *d != "def" || *wait != 2*time.Second {
		t.Errorf("a, b, c, d, wait = %s %s %s %s %s, want flag env file def 2s", *a, *b, *c, *d, *wait)
	}
	if src.File != path {
		t.Errorf("File = %q, want %q", src.File, path)
	}
	for k, w := range map[string]string{"a": "--a", "b": "WALT_B", "c": path + ":3: c", "d": "--d"} {
		if src.Name(k) != w {
			t.Errorf("Name(%s) = %q, want %q", k, src.Name(k), w)
		}
	}
}

func TestQuote(t *testing.T) {
	if q := Quote(strings.Repeat("\x00", 100)); len(q) > 64 || !strings.HasSuffix(q, `"...`) {
		t.Errorf("Quote = %s (%d bytes), want at most 64 bytes ending in ...", q, len(q))
	}
	if q := Quote("ok"); q != `"ok"` {
		t.Errorf("Quote(ok) = %s", q)
	}
}

// FuzzServerConfig: any document is parsed or refused with one error line
// naming the file; settings have lines within the document.
func FuzzServerConfig(f *testing.F) {
	for _, s := range []string{
		"fanout = 4\nlisten = \":12345\"\n",
		"reply-timeout = '10s'\n# comment\ndebug = true\n",
		"[table]\nx = 1\n",
		"a.b = 1",
		"x = [1, 2]\ny = {z = 1}\n",
		"x = 1979-05-27T07:32:00Z",
		"\"quoted key\" = \"\\u00e9\"\n",
		"x = \"\"\"\nmulti\nline\"\"\"\n",
		"x = 1\nx = 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse("server.conf", data, anyKey)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "server.conf") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line starting with the file name", err)
			}
			return
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for k, s := range got {
			if s.Line < 1 || s.Line > lines {
				t.Fatalf("%s at line %d of a %d-line document", k, s.Line, lines)
			}
		}
	})
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
