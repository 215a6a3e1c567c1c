package auth

import (
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	f.Add(NewToken().Reveal())
	f.Add("walt_")
	f.Add("walt_" + strings.Repeat("A", 43))
	f.Add("walt_" + strings.Repeat("_", 42) + "B")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if len(s) >= TokenLen && strings.Contains(err.Error(), strings.TrimSpace(s)) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		again, err := ParseToken(tok.Reveal())
		if err != nil || again != tok || len(tok.Reveal()) != TokenLen {
			t.Fatalf("ParseToken(%q) accepted, but its result does not parse back: %v", s, err)
		}
	})
}

func FuzzParseBearer(f *testing.F) {
	f.Add("Bearer " + NewToken().Reveal())
	f.Add("bearer x")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := ParseBearer(h)
		if err != nil {
			if !tok.IsZero() {
				t.Fatal("error with a token")
			}
			return
		}
		if got, err := ParseBearer(Bearer(tok)); err != nil || got != tok {
			t.Fatalf("Bearer(ParseBearer(%q)) does not parse back: %v", h, err)
		}
	})
}

func FuzzCheckUserName(f *testing.F) {
	for _, s := range []string{"alice", "walt", "", "a.b-c_d", "Ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckUserName(name) != nil {
			return
		}
		if len(name) > MaxUserName || name == ReservedUser || strings.ContainsAny(name, " \t\n/:@\x00") {
			t.Fatalf("CheckUserName(%q) accepted", name)
		}
	})
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("# walt\nhttps://h:12345 walt_x\n\n127.0.0.1:12345 sha256/00ff\n"))
	f.Add([]byte("a b c\n"))
	f.Add([]byte("a b\na c\n"))
	f.Add([]byte("\x00 \xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		for k, v := range m {
			if err := CheckKeyEntry(k, v); err != nil {
				t.Fatalf("parsed entry %q %q does not check: %v", k, v, err)
			}
		}
		again, err := ParseKeyFile(FormatKeyFile("header\nline two", m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("formatted file does not parse back: %v", err)
		}
		for k, v := range m {
			if again[k] != v {
				t.Fatalf("entry %q: %q after a round trip, want %q", k, again[k], v)
			}
		}
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(Fingerprint([]byte("x")))
	f.Add("SHA256:ab:cd")
	f.Add("sha256:00")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if again, err := ParseFingerprint(fp); err != nil || again != fp || len(fp) != len("SHA256:")+64 {
			t.Fatalf("ParseFingerprint(%q) = %q, which does not parse back: %v", s, fp, err)
		}
	})
}
